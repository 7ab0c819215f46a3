"""Proxy configs (docs/tricks.md, T4.1) and tools/proxy_rank.py (rank
consistency, resumable)."""
import json
import os.path as osp
import subprocess
import sys

import pytest
import torch

from mmnas_tricks.engine.proxy import proxy_config, proxy_tag
from mmnas_tricks.testing import config_dir, shrink_digits_cfg
from mmnas_tricks.utils import build_model, load_config, rank_consistency
from ..conftest import TINY_SPEC

FCOS = osp.join(config_dir(), 'baselines',
                'fcos_r18w16_fpn_gn-head_12e_digits.py')
SEG = osp.join(config_dir(), 'baselines', 'fpn_r18w16_12e_digits-seg.py')
ELASTIC = osp.join(config_dir(), 'supernets',
                   'fcos_r18w16_fpn-elastic_gn-head-elastic_12e_digits.py')


def test_proxy_has_the_documented_channels_resolution_epochs_and_images():
    cfg = load_config(FCOS)
    proxy = proxy_config(
        cfg, width_div=2, resolution_div=2, max_epochs=3, data_fraction=0.5)
    full, small = build_model(cfg), build_model(proxy)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert [f.shape[1] for f in full.extract_feat(x)] == [64] * 3
        assert [f.shape[1] for f in small.extract_feat(x)] == [32] * 3
    assert small.backbone.conv1.out_channels == 8  # base_channels 16 / 2
    pipeline = proxy.train_dataloader.dataset.pipeline
    assert [t['scale'] for t in pipeline
            if t['type'] == 'Resize'] == [(64, 64)]
    assert [
        t['scale'] for t in proxy.val_dataloader.dataset.pipeline
        if t['type'] == 'Resize'
    ] == [(64, 64)]
    assert (proxy.train_cfg.max_epochs == 3
            and proxy.train_cfg.val_interval == 3)
    cosine = [
        s for s in proxy.param_scheduler if s['type'] == 'CosineAnnealingLR'
    ][0]
    assert cosine['T_max'] == 3 and cosine['end'] == 3
    start, stop = cfg.train_dataloader.dataset.get('subset') or (0.0, 1.0)
    assert proxy.train_dataloader.dataset.subset == (start, start +
                                                     (stop - start) * 0.5)
    assert cfg.model.neck.out_channels == 64  # the original is untouched
    assert proxy_tag(2, 2, 3, 0.5) == 'c2r2s5e3'
    assert proxy_tag() == 'c0r0s0e0'
    # segmentation on digits: no Resize to scale (images at their size)
    seg = proxy_config(load_config(SEG), width_div=2)
    build_model(seg)
    with pytest.raises(ValueError, match='no Resize transform'):
        proxy_config(load_config(SEG), resolution_div=2)


@pytest.mark.parametrize('kwargs,message', [
    (dict(width_div=0), 'width_div=0'),
    (dict(width_div=3), 'width_div=3: model.*is not a multiple'),
    (dict(resolution_div=0), 'resolution_div=0'),
    (dict(max_epochs=0), 'max_epochs=0'),
    (dict(data_fraction=1.5), r'data_fraction=1.5 is not in \(0, 1\]'),
])
def test_bad_proxies_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        proxy_config(load_config(FCOS), **kwargs)


def test_rank_consistency():
    r = rank_consistency([1, 2, 3, 4], [10, 30, 20, 40], top_k=2)
    assert r['kendall_tau'] == pytest.approx(2 / 3)
    assert r['spearman_rho'] == pytest.approx(0.8)
    assert r['top_k_overlap'] == 0.5 and r['n'] == 4
    with pytest.raises(ValueError, match='>= 2 scores'):
        rank_consistency([1], [1])


@pytest.mark.heavy
def test_proxy_rank_tool_records_every_training_and_resumes(
        repo_root, tiny_digits, tmp_path, run_tool):
    cfg = shrink_digits_cfg(
        load_config(ELASTIC),
        tiny_digits,
        TINY_SPEC,
        work_dir=str(tmp_path / 'unused'),
        max_epochs=1,
        experiment_name='proxy_rank_cfg')
    cfg.model.bbox_head.stacked_convs = 2
    cfg.model.bbox_head.tower_depths = None
    cfg.model.test_cfg.score_thr = 0.0
    cfg.val_evaluator = dict(
        type='mmnas_tricks.PreciseCocoMetric',
        ann_file=cfg.val_evaluator.ann_file,
        metric='bbox')
    cfg.pop('retrain', None)
    path = str(tmp_path / 'elastic_tiny.py')
    cfg.dump(path)
    work = str(tmp_path / 'rank')
    cmd = [
        sys.executable, 'tools/proxy_rank.py', path, '--num-subnets', '3',
        '--proxy', 'width_div=2', 'max_epochs=1', '--work-dir', work
    ]
    # the trainings in-process, the rerun through the real command line
    run_tool(*cmd[1:])
    with open(osp.join(work, 'proxy_rank.json')) as f:
        state = json.load(f)
    rows = sorted(state['records'].values(), key=lambda r: r['index'])
    assert len(rows) == 3 and all('full' in r and 'proxy' in r for r in rows)
    assert state['proxy_tag'] == 'c2r0s0e1'
    want = rank_consistency([r['proxy'] for r in rows],
                            [r['full'] for r in rows])
    assert state['rank'] == pytest.approx(want, nan_ok=True)
    assert osp.isfile(osp.join(work, 'proxy_rank.png'))
    assert osp.isfile(osp.join(work, 'proxy_rank.csv'))

    # a rerun trains nothing: every training is recorded
    out = subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count('(done)') == 6
    assert 'Kendall tau' in out.stdout
