"""tools/install.sh's decisions, checked with --dry-run (nothing installed)."""
import os
import subprocess
import sys

import pytest


def _dry_run(repo_root, python, path_prefix=None):
    env = dict(os.environ, PYTHON=python)
    if path_prefix:
        env['PATH'] = path_prefix + os.pathsep + env['PATH']
    out = subprocess.run(['bash', 'tools/install.sh', '--dry-run'],
                         cwd=repo_root,
                         env=env,
                         capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


def _torch_lines(log):
    return [
        line for line in log.splitlines()
        if line.startswith('[install] + ') and ' torch' in line
    ]


def test_installed_torch_is_kept(repo_root):
    log = _dry_run(repo_root, sys.executable)
    assert 'torch already installed' in log and ': kept' in log
    assert _torch_lines(log) == []  # never reinstalls torch
    assert 'mmcv 2.1.0 with ops already installed: kept' in log
    assert '--no-build-isolation --no-deps -e' in log


@pytest.fixture(scope='module')
def bare_python(tmp_path_factory):
    venv = tmp_path_factory.mktemp('venv') / 'v'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip',
                    str(venv)],
                   check=True)
    return str(venv / 'bin' / 'python')


def test_no_torch_no_gpu_takes_the_cpu_build(repo_root, bare_python, tmp_path):
    # a PATH entry whose nvidia-smi fails: no GPU visible
    fake = tmp_path / 'bin'
    fake.mkdir()
    (fake / 'nvidia-smi').write_text('#!/bin/sh\nexit 9\n')
    (fake / 'nvidia-smi').chmod(0o755)
    log = _dry_run(repo_root, bare_python, str(fake))
    lines = _torch_lines(log)
    assert len(lines) == 1 and lines[0].endswith(' torch==2.13.0'), lines
    assert 'building mmcv 2.1.0 from source' in log
    assert '--no-build-isolation -r' in log


def test_no_torch_with_gpu_takes_the_cuda_build(repo_root, bare_python,
                                                tmp_path):
    fake = tmp_path / 'bin'
    fake.mkdir()
    (fake / 'nvidia-smi'
     ).write_text('#!/bin/sh\necho "GPU 0: NVIDIA H100 (UUID: GPU-x)"\n')
    (fake / 'nvidia-smi').chmod(0o755)
    log = _dry_run(repo_root, bare_python, str(fake))
    lines = _torch_lines(log)
    assert len(lines) == 1 and lines[0].endswith(' torch'), lines
    assert 'NVIDIA GPU visible' in log


def test_bad_argument(repo_root):
    out = subprocess.run(['bash', 'tools/install.sh', '--fast'],
                         cwd=repo_root,
                         capture_output=True,
                         text=True)
    assert out.returncode == 2
    assert "unknown argument '--fast'" in out.stderr
    assert '--dry-run' in out.stderr
