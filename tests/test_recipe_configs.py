"""The training-recipe tricks' config components (docs/tricks.md,
"Training recipe"): the SGDR schedule's learning-rate curve."""
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import PARAM_SCHEDULERS

from mmnas_tricks.testing import config_dir


def _lr_curve(schedulers, epochs, epoch_length, base_lr=0.01):
    """The learning rate of every iteration under ``schedulers`` (configs),
    stepped as mmengine's Runner steps them."""
    param = torch.nn.Parameter(torch.zeros(1))
    wrapper = OptimWrapper(torch.optim.SGD([param], lr=base_lr))
    built = []
    for cfg in schedulers:
        cfg = dict(cfg)
        cls = PARAM_SCHEDULERS.get(cfg.pop('type'))
        if cfg.pop('convert_to_iter_based', False):
            built.append(
                cls.build_iter_from_epoch(
                    wrapper, **cfg, epoch_length=epoch_length))
        else:
            built.append(cls(wrapper, **cfg))
    curve = []
    for _ in range(epochs):
        for _ in range(epoch_length):
            curve.append(wrapper.param_groups[0]['lr'])
            for s in built:
                if not s.by_epoch:
                    s.step()
        for s in built:
            if s.by_epoch:
                s.step()
    return curve


@pytest.mark.parametrize('name,periods', [('sgdr_12e_param_scheduler', (4, 7)),
                                          ('sgdr_6e_param_scheduler', (2, 3))])
def test_sgdr_warms_up_then_restarts_at_each_period(name, periods):
    cfg = Config.fromfile(
        osp.join(config_dir(), '_base_', 'schedules', 'digits_sgdr.py'))
    length = 500  # iterations per epoch
    curve = _lr_curve(cfg[name], 1 + sum(periods), length)
    assert len(curve) == (1 + sum(periods)) * length
    # the warm-up: linear from 0.001 x the base over the first epoch
    assert curve[0] == pytest.approx(1e-5)
    assert curve[length // 2] == pytest.approx(0.005, rel=0.01)
    start = length
    for period in periods:
        n = period * length
        assert curve[start] == pytest.approx(0.01)  # (re)started at base
        for t in (n // 4, n // 2, 3 * n // 4, n - 1):
            want = 0.01 * 0.5 * (1 + math.cos(math.pi * t / n))
            assert curve[start + t] == pytest.approx(
                want, rel=1e-6, abs=1e-9), (start, t)
        assert curve[start + n - 1] < 1e-5  # annealed to ~0
        start += n
    assert max(curve) == pytest.approx(0.01)  # never past the base lr


def test_an_overlapping_warm_up_is_what_sgdr_avoids():
    """Why the warm-up ends before the restarts: mmengine's
    CosineRestartLR under a warm-up that overlaps it climbs far past the
    base learning rate (the reason written in the config)."""
    overlapping = [
        dict(
            type='LinearLR',
            start_factor=0.001,
            by_epoch=False,
            begin=0,
            end=300),
        dict(
            type='CosineRestartLR',
            periods=[4, 8],
            restart_weights=[1.0, 1.0],
            eta_min=0.0,
            by_epoch=True,
            begin=0,
            end=12,
            convert_to_iter_based=True)
    ]
    assert max(_lr_curve(overlapping, 12, 500)) > 100 * 0.01


def test_the_sgdr_pipeline_uses_it_for_the_supernet_and_the_retraining():
    from mmnas_tricks.engine.pipeline import stage_configs
    from mmnas_tricks.utils import load_config
    path = osp.join(config_dir(), 'nas',
                    'ablation_nsga2_fcos_whole-elastic_sgdr_digits.py')
    stages = stage_configs(load_config(path), path)
    supernet = stages['supernet']
    assert [s['type'] for s in supernet.param_scheduler
            ] == ['LinearLR', 'CosineRestartLR']
    assert supernet.param_scheduler[1]['end'] == supernet.train_cfg.max_epochs
    retrain = stages['search'].train_cfg.retrain
    assert retrain.param_scheduler[1]['periods'] == [4, 7]
    assert retrain.param_scheduler[1]['end'] == retrain.train_cfg.max_epochs
    # the rest of the main job's recipe is unchanged
    main = stage_configs(
        load_config(
            osp.join(config_dir(), 'nas',
                     'nsga2_fcos_whole-elastic_r18w16_digits.py')), path)
    assert retrain.optim_wrapper == main[
        'search'].train_cfg.retrain.optim_wrapper
    assert supernet.custom_hooks == main['supernet'].custom_hooks
