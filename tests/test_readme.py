"""The README's commands, as .ci/run reads them."""
import os.path as osp
import subprocess


def _block(repo_root, marker):
    script = (
        'awk -v marker="<!-- ci:%s -->" \'$0 == marker { found = 1; next } '
        'found && /^```bash/ { inblock = 1; next } inblock && /^```/ { exit } '
        'inblock && $0 !~ /^[[:space:]]*#/ && NF { print }\' README.md' %
        marker)
    return subprocess.run(['bash', '-c', script],
                          cwd=repo_root,
                          capture_output=True,
                          text=True).stdout.strip()


def test_ci_reads_the_readme_commands(repo_root):
    assert _block(repo_root, 'setup') == 'bash tools/install.sh'
    assert _block(repo_root, 'test').startswith('python -m pytest tests')
    with open(osp.join(repo_root, '.ci', 'run')) as f:
        ci = f.read()
    assert 'readme_cmd setup' in ci and 'readme_cmd test' in ci


def test_readme_main_job_config_exists(repo_root):
    with open(osp.join(repo_root, 'README.md')) as f:
        readme = f.read()
    commands = [
        line for line in readme.splitlines()
        if line.startswith(('python tools/train.py configs/',
                            'python tools/nas.py configs/'))
    ]
    main_job = readme.split('## Main job', 1)[1].split('\n## ', 1)[0]
    assert 'python tools/nas.py configs/nas/' in main_job
    for line in commands:
        assert osp.isfile(osp.join(repo_root, line.split()[2]))


def test_readme_benchmark_commands_exist(repo_root):
    docs = []
    for name in ('README.md', osp.join('docs', 'benchmarks.md')):
        with open(osp.join(repo_root, name)) as f:
            docs.append(f.read())
    scripts = {
        word.strip('`')
        for text in docs for word in text.split()
        if word.strip('`').startswith('benchmarks/')
        and word.strip('`').endswith(('.py', '.sh'))
    }
    assert len(scripts) >= 6
    missing = sorted(
        s for s in scripts if not osp.isfile(osp.join(repo_root, s)))
    assert not missing, missing


def test_readme_and_configs_readme_links_exist(repo_root):
    """Every relative link of the README and every config that
    configs/README.md names exists."""
    import re
    with open(osp.join(repo_root, 'README.md')) as f:
        readme = f.read()
    links = re.findall(r'\]\(([^)#]+)\)', readme)
    assert len(links) >= 8
    missing = [p for p in links if not osp.exists(osp.join(repo_root, p))]
    assert not missing, missing
    with open(osp.join(repo_root, 'configs', 'README.md')) as f:
        configs = re.findall(
            r'`((?:nas|supernets|search|baselines)/[^`]+'
            r'\.py)`', f.read())
    assert len(configs) >= 6
    missing = [
        c for c in configs
        if not osp.isfile(osp.join(repo_root, 'configs', c))
    ]
    assert not missing, missing
