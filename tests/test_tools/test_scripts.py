"""The launcher scripts build the commands mmdet users expect (a fake srun
stands in for Slurm; dist_train.sh runs for real in test_train_test.py)."""
import os
import subprocess


def _fake_srun(tmp_path):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    srun = bin_dir / 'srun'
    srun.write_text(
        '#!/bin/sh\necho "srun $*"\necho "PYTHONPATH=$PYTHONPATH"\n')
    srun.chmod(0o755)
    return dict(
        os.environ,
        PATH=f'{bin_dir}{os.pathsep}{os.environ["PATH"]}',
        GPUS='16',
        SRUN_ARGS='--quotatype=auto')


def test_slurm_train_command(repo_root, tmp_path):
    out = subprocess.run([
        'bash', 'tools/slurm_train.sh', 'part', 'job', 'cfg.py', 'wd', '--amp'
    ],
                         cwd=repo_root,
                         env=_fake_srun(tmp_path),
                         capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    line = out.stdout.splitlines()[0]
    assert line.startswith('srun -p part --job-name=job --gres=gpu:8 '
                           '--ntasks=16 --ntasks-per-node=8')
    assert '--quotatype=auto' in line
    assert line.endswith('/tools/train.py cfg.py --work-dir=wd --amp '
                         '--launcher=slurm')
    assert f'PYTHONPATH={repo_root}/tools/..' in out.stdout


def test_slurm_test_command(repo_root, tmp_path):
    out = subprocess.run(
        ['bash', 'tools/slurm_test.sh', 'part', 'job', 'cfg.py', 'e.pth'],
        cwd=repo_root,
        env=_fake_srun(tmp_path),
        capture_output=True,
        text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].endswith(
        '/tools/test.py cfg.py e.pth --launcher=slurm')


def test_usage_errors(repo_root):
    for script, n in [('dist_train.sh', 1), ('dist_test.sh', 2),
                      ('slurm_train.sh', 3), ('slurm_test.sh', 3)]:
        out = subprocess.run(
            ['bash', f'tools/{script}'] + ['x'] * n,
            cwd=repo_root,
            capture_output=True,
            text=True)
        assert out.returncode == 2
        assert out.stderr.startswith('usage:')


def test_nas_pipeline_stages_on_slurm(repo_root, tmp_path):
    """tools/nas.py --slurm runs each stage through slurm_train.sh with
    --gpus processes (the fake srun only prints the command)."""
    import sys
    env = _fake_srun(tmp_path)
    out = subprocess.run([
        sys.executable, 'tools/nas.py',
        'configs/nas/spos_fcos_r18w16_fpn-elastic_gn-head-elastic_digits.py',
        '--slurm', 'part', '--gpus', '16', '--stages', 'supernet',
        '--work-dir',
        str(tmp_path / 'nas')
    ],
                         cwd=repo_root,
                         env=env,
                         capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    srun = [
        line for line in out.stdout.splitlines() if line.startswith('srun ')
    ]
    assert len(srun) == 1
    assert srun[0].startswith('srun -p part --job-name=nas_supernet '
                              '--gres=gpu:8 --ntasks=16')
    assert '/configs/supernet.py --work-dir=' in srun[0]
    assert srun[0].endswith('--launcher=slurm')
    assert 'randomness.seed=0' in srun[0]
