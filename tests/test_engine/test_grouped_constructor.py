import copy

import pytest
import torch
import torch.nn as nn
from mmengine.optim import DefaultOptimWrapperConstructor

from mmnas_tricks.engine.optim import (GroupedOptimWrapperConstructor,
                                       merge_param_groups)

CFG = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=0.01))
PARAMWISE = dict(bias_lr_mult=2., bias_decay_mult=0., norm_decay_mult=0.)


def _build(constructor, model):
    return constructor(copy.deepcopy(CFG), copy.deepcopy(PARAMWISE))(model)


def _model():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 1))


def _train(model, wrapper, steps=3):
    torch.manual_seed(1)
    for _ in range(steps):
        loss = model(torch.randn(2, 3, 8, 8)).pow(2).mean()
        wrapper.update_params(loss)


def test_merged_groups_make_the_same_updates_as_per_tensor_groups():
    plain, grouped = _model(), _model()
    per_tensor = _build(DefaultOptimWrapperConstructor, plain)
    merged = _build(GroupedOptimWrapperConstructor, grouped)
    assert len(per_tensor.optimizer.param_groups) == 6  # one per tensor
    # conv weights (lr 0.1, decay 0.01), BN weight and bias (lr 0.1, decay
    # 0: mmengine exempts norm biases from bias_lr_mult), conv biases (lr
    # 0.2, decay 0)
    groups = merged.optimizer.param_groups
    assert sorted((g['lr'], g['weight_decay'], len(g['params']))
                  for g in groups) == [(0.1, 0.0, 2), (0.1, 0.01, 2),
                                       (0.2, 0.0, 2)]
    assert all(type(g) is dict for g in groups)
    _train(plain, per_tensor)
    _train(grouped, merged)
    for a, b in zip(plain.parameters(), grouped.parameters()):
        assert torch.equal(a, b)


def test_merge_keeps_every_parameter_once_and_in_order_of_groups():
    model = _model()
    wrapper = _build(DefaultOptimWrapperConstructor, model)
    before = [p for g in wrapper.optimizer.param_groups for p in g['params']]
    assert merge_param_groups(wrapper.optimizer) == 3
    after = [p for g in wrapper.optimizer.param_groups for p in g['params']]
    assert sorted(map(id, after)) == sorted(map(id, before))
    assert after[0] is before[0]  # the first group stays first


@pytest.mark.parametrize('digits_config', [
    'configs/baselines/fcos_r18w16_fpn_gn-head_12e_digits.py',
])
def test_digits_configs_use_it(digits_config, repo_root):
    from mmengine.config import Config
    cfg = Config.fromfile(f'{repo_root}/{digits_config}')
    assert cfg.optim_wrapper.constructor == \
        'mmnas_tricks.GroupedOptimWrapperConstructor'
