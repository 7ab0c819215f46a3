"""The lint gate (.pre-commit-config.yaml, setup.cfg) catches what it is
for: a mis-sorted import, a line over 79 columns, a file yapf would
reformat. Checked on small files with the repository's settings."""
import os.path as osp
import subprocess
import sys


def _tool(repo_root, module, *args):
    return subprocess.run([sys.executable, '-m', module, *args],
                          cwd=repo_root,
                          capture_output=True,
                          text=True)


def test_ci_runs_the_lint_gate(repo_root):
    with open(osp.join(repo_root, '.ci', 'run')) as f:
        ci = f.read()
    assert 'readme_cmd lint' in ci
    with open(osp.join(repo_root, '.pre-commit-config.yaml')) as f:
        hooks = f.read()
    for hook in ('id: flake8', 'id: isort', 'id: yapf'):
        assert hook in hooks


def test_missorted_import_fails_isort(repo_root, tmp_path):
    bad = tmp_path / 'bad.py'
    bad.write_text('import sys\nimport os\n\nprint(os, sys)\n')
    out = _tool(repo_root, 'isort', '--settings-path', repo_root,
                '--check-only', '--diff', str(bad))
    assert out.returncode != 0
    assert 'Imports are incorrectly sorted' in out.stderr + out.stdout
    good = tmp_path / 'good.py'
    good.write_text('import os\nimport sys\n\nprint(os, sys)\n')
    out = _tool(repo_root, 'isort', '--settings-path', repo_root,
                '--check-only', str(good))
    assert out.returncode == 0, out.stderr


def test_long_line_fails_flake8_and_yapf_diff(repo_root, tmp_path):
    bad = tmp_path / 'long.py'
    bad.write_text('x = ["' + 'a' * 80 + '"]\n')
    out = _tool(repo_root, 'flake8', '--config',
                osp.join(repo_root, 'setup.cfg'), str(bad))
    assert out.returncode != 0 and 'E501' in out.stdout
    ugly = tmp_path / 'ugly.py'
    ugly.write_text('x = dict( a=1,b =2 )\n')
    out = _tool(repo_root, 'yapf', '--style', osp.join(repo_root, 'setup.cfg'),
                '--diff', str(ugly))
    assert out.returncode != 0 and '+x = dict(a=1, b=2)' in out.stdout
