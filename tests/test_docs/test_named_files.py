"""Every file a doc, docstring, comment or config header names as an
example (``tools/…``, ``benchmarks/…``, ``configs/…``, ``docs/…``) exists:
a renamed config or tool shows here instead of in a reader's shell."""
import glob
import os.path as osp
import re

PATH = re.compile(r'(?<![\w/.-])((?:tools|benchmarks|configs|docs)/'
                  r'[\w./-]+\.(?:py|sh|md|yaml|yml))')
#: what marks a name as a placeholder, not a file
PLACEHOLDER = ('*', '<', '{', '$', '...')
SOURCES = ('README.md', 'docs/**/*.md', 'configs/**/*.md', 'configs/**/*.py',
           'mmnas_tricks/**/*.py', 'tools/**/*.py', 'tools/**/*.sh',
           'benchmarks/*.py')


def test_named_files_exist(repo_root):
    missing, seen = {}, 0
    for pattern in SOURCES:
        for path in glob.glob(osp.join(repo_root, pattern), recursive=True):
            with open(path) as f:
                for line in f:
                    if 'mmdetection' in line:  # a file of mmdet's repository
                        continue
                    for name in PATH.findall(line):
                        if any(p in name for p in PLACEHOLDER):
                            continue
                        seen += 1
                        here = osp.dirname(path)
                        if not (osp.exists(osp.join(repo_root, name))
                                or osp.exists(osp.join(here, name))):
                            missing.setdefault(name, set()).add(
                                osp.relpath(path, repo_root))
    assert seen > 200
    assert not missing, missing


COMMAND = re.compile(r'python ((?:tools|benchmarks)/[\w/]+\.py)'
                     r'((?:[^\n`|]|\\\n)*)')


def _commands(repo_root) -> dict:
    """script -> the ``--flags`` the docs, docstrings and config headers
    give it in an example command (continued lines included)."""
    flags = {}
    for pattern in SOURCES:
        for path in glob.glob(osp.join(repo_root, pattern), recursive=True):
            with open(path) as f:
                text = f.read().replace('\\\n#', ' ').replace('\\\n', ' ')
            for script, rest in COMMAND.findall(text):
                if osp.isfile(osp.join(repo_root, script)):
                    flags.setdefault(script, set()).update(
                        re.findall(r'(?<![\w-])(--[a-z][\w-]*)', rest))
    return flags


def test_example_commands_use_flags_their_scripts_take(repo_root, run_tool):
    """Every ``--flag`` of an example command is in its script's
    ``--help`` (the command lines' own parsers, generated flags
    included)."""
    commands = _commands(repo_root)
    assert len(commands) >= 15
    unknown = {}
    for script, flags in sorted(commands.items()):
        if not flags:
            continue
        help_text = run_tool(script, '--help')
        missing = sorted(f for f in flags if f not in help_text)
        if missing:
            unknown[script] = missing
    assert not unknown, unknown
