"""tools/rank_correlation.py: supernet estimates (with and without BN
calibration) against stand-alone training, Kendall tau, and a rerun that
retrains nothing (TRICKS.md T5.3)."""
import json
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.runner import Runner

from mmnas_tricks.testing import config_dir, tiny_supernet_cfg
from mmnas_tricks.utils import rank_consistency
from ..conftest import TINY_SPEC

ELASTIC = osp.join(config_dir(), 'supernets',
                   'fcos_r18w16_fpn-elastic_gn-head-elastic_12e_digits.py')


@pytest.mark.heavy
def test_rank_correlation_tool_reports_tau_and_resumes(repo_root, tiny_digits,
                                                       tmp_path, run_tool):
    cfg = tiny_supernet_cfg(
        ELASTIC,
        tiny_digits,
        TINY_SPEC,
        str(tmp_path / 'supernet'),
        'rank_supernet',
        tower_depths=None)
    cfg.model.test_cfg.score_thr = 0.0
    cfg.val_evaluator = dict(
        type='mmnas_tricks.PreciseCocoMetric',
        ann_file=cfg.val_evaluator.ann_file,
        metric='bbox')
    Runner.from_cfg(cfg).train()
    ckpt = osp.join(str(tmp_path / 'supernet'), 'epoch_1.pth')
    cfg.pop('retrain', None)
    path = str(tmp_path / 'supernet_tiny.py')
    cfg.dump(path)
    work = str(tmp_path / 'rank')
    cmd = [
        sys.executable, 'tools/rank_correlation.py', path, ckpt,
        '--num-subnets', '3', '--calibrate-bn', '1', '--standalone-epochs',
        '1', '--work-dir', work
    ]
    # the trainings in-process, the rerun through the real command line
    log = run_tool(*cmd[1:])
    with open(osp.join(work, 'rank_correlation.json')) as f:
        state = json.load(f)
    rows = sorted(state['records'].values(), key=lambda r: r['index'])
    assert len(rows) == 3
    assert all({'estimate', 'estimate_calibrated', 'standalone'} <= set(r)
               for r in rows)
    # (a 1-epoch tiny supernet scores 0.0 everywhere, so tau is NaN here;
    # that calibration changes estimates is tested with score_subnet in
    # test_evolution_search_loop)
    assert all(0.0 <= r[f] <= 1.0 for r in rows
               for f in ('estimate', 'estimate_calibrated', 'standalone'))
    truth = [r['standalone'] for r in rows]
    for field in ('estimate', 'estimate_calibrated'):
        want = rank_consistency([r[field] for r in rows], truth)
        assert state['rank'][field] == pytest.approx(want, nan_ok=True)
    assert osp.isfile(osp.join(work, 'rank_correlation.png'))
    assert 'with BN calibration, 3 subnets: Kendall tau' in log

    # rerun: nothing is computed again
    out = subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count('(done)') == 3
    with open(osp.join(work, 'rank_correlation.json')) as f:
        again = json.load(f)
    assert again['records'] == state['records']
