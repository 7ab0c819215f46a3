"""tools/rank_correlation.py: supernet estimates (with and without BN
calibration) against stand-alone training, Kendall tau, and a rerun that
retrains nothing (docs/tricks.md, T5.3)."""
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

    # the same subnets as a rank set, their stand-alone scores taken from
    # the study above (same stand-alone config): nothing is trained, and
    # FLOPs alone and a FLOPs window are ranked too
    first = rows[0]['subnet']
    named = {
        f'n{r["index"]}':
        {k: v
         for k, v in r['subnet'].items() if v != first[k]}
        for r in rows
    }
    rank_set = tmp_path / 'rank_set.yaml'
    rank_set.write_text(json.dumps(dict(named=named)))
    work2 = str(tmp_path / 'rank2')
    log = run_tool('tools/rank_correlation.py', path, ckpt, '--rank-set',
                   str(rank_set), '--truth',
                   osp.join(work, 'rank_correlation.json'), '--window', '0',
                   '10', '--calibrate-bn', '1', '--standalone-epochs', '1',
                   '--finetune-epochs', '1', '--work-dir', work2)
    assert '3 stand-alone scores taken from' in log
    assert not osp.exists(osp.join(work2, 'standalone'))
    with open(osp.join(work2, 'rank_correlation.json')) as f:
        reused = json.load(f)
    got = sorted(reused['records'].values(), key=lambda r: r['index'])
    assert [r['name'] for r in got] == ['n0', 'n1', 'n2']
    assert [r['standalone'] for r in got] == truth
    assert reused['rank']['flops'] == pytest.approx(
        rank_consistency([r['flops_ratio'] for r in got], truth), nan_ok=True)
    assert reused['rank_window']['n'] == 3
    assert 'within 0x-10x FLOPs: FLOPs alone, 3 subnets' in log

    # ... and each subnet fine-tuned 1 epoch from its supernet weights: the
    # exported weights are the plain subnet's (they load strictly), the
    # fine-tuning starts from them, its score is ranked like the others
    import torch

    from mmnas_tricks.engine.rank import finetune_estimate_config
    from mmnas_tricks.utils import build_model, load_config
    assert all(0.0 <= r['estimate_finetuned'] <= 1.0 for r in got)
    assert reused['rank']['estimate_finetuned'] == pytest.approx(
        rank_consistency([r['estimate_finetuned'] for r in got], truth),
        nan_ok=True)
    assert 'fine-tuned 1 epoch(s) from the supernet, 3 subnets' in log
    for r in got:
        folder = osp.join(work2, 'finetune', f'subnet{r["index"]}')
        weights = osp.join(folder, 'supernet_weights.pth')
        ft = finetune_estimate_config(
            load_config(path), r['subnet'], weights, 1, 0.001)
        assert ft.load_from == weights and ft.train_cfg.max_epochs == 1
        # the search's data: the supernet's training subset
        assert ft.train_dataloader == load_config(path).train_dataloader
        state_dict = torch.load(weights, map_location='cpu')['state_dict']
        build_model(ft).load_state_dict(state_dict, strict=True)
        assert osp.isfile(osp.join(folder, 'epoch_1.pth'))
    log = run_tool('tools/rank_correlation.py', path, ckpt, '--rank-set',
                   str(rank_set), '--truth',
                   osp.join(work, 'rank_correlation.json'), '--calibrate-bn',
                   '1', '--standalone-epochs', '1', '--finetune-epochs', '1',
                   '--work-dir', work2)
    assert 'fine-tuned estimate' not in log  # kept, not trained again
