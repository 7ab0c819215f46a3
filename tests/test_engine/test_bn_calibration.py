"""BN calibration recomputes BatchNorm statistics for the current subnet."""
import os.path as osp
import random

import pytest
import torch
from mmdet.testing import demo_mm_inputs
from torch.nn.modules.batchnorm import _BatchNorm

from mmnas_tricks.engine import calibrate_bn
from mmnas_tricks.models.mutables import sample_subnet, set_subnet
from mmnas_tricks.testing import config_dir
from mmnas_tricks.utils import build_model, load_config

MBV2 = osp.join(config_dir(), 'supernets',
                'fcos_mbv2-search_fpn_gn-head_12e_digits.py')


@pytest.fixture(scope='module')
def supernet():
    torch.manual_seed(0)
    return build_model(load_config(MBV2))


def raw_batches(n, batch=4, size=64, seed=0):
    torch.manual_seed(seed)
    return [
        demo_mm_inputs(
            batch, [[3, size, size]] * batch, num_classes=10, with_mask=False)
        for _ in range(n)
    ]


def test_statistics_equal_the_average_of_the_batch_statistics(supernet):
    bn = supernet.backbone.stem[0].bn
    supernet.eval()
    seen = []
    handle = bn.register_forward_pre_hook(
        lambda m, args: seen.append(args[0].detach().clone()))
    try:
        used = calibrate_bn(supernet, raw_batches(3), num_batches=3)
    finally:
        handle.remove()
    assert used == 3 and len(seen) == 3
    means = torch.stack([x.mean((0, 2, 3)) for x in seen])
    vars_ = torch.stack([x.var((0, 2, 3), unbiased=True) for x in seen])
    assert torch.allclose(bn.running_mean, means.mean(0), atol=1e-5)
    assert torch.allclose(bn.running_var, vars_.mean(0), rtol=1e-4, atol=1e-5)
    assert bn.momentum == 0.1 and not bn.training  # restored (eval model)


def test_calibration_changes_the_scores_of_a_subnet(supernet):
    """Running statistics left by other subnets (the supernet's) against
    the subnet's own: different outputs."""
    supernet.train()
    with torch.no_grad():
        for seed, data in enumerate(raw_batches(4, seed=1)):
            sample_subnet(supernet, random.Random(seed))
            data = supernet.data_preprocessor(data, True)
            supernet(data['inputs'], data['data_samples'], mode='tensor')
    subnet = sample_subnet(supernet, random.Random(99))
    supernet.eval()
    probe = supernet.data_preprocessor(raw_batches(1, seed=5)[0], False)
    with torch.no_grad():
        before = supernet(probe['inputs'], mode='tensor')[0][0]
        calibrate_bn(supernet, raw_batches(3, seed=2), num_batches=3)
        set_subnet(supernet, subnet)  # unchanged by calibration
        after = supernet(probe['inputs'], mode='tensor')[0][0]
    assert (before - after).abs().max() > 1e-3


def test_remainder_batches_are_skipped_not_fatal(supernet):
    batches = raw_batches(2) + raw_batches(1, batch=1) + raw_batches(1)
    assert calibrate_bn(supernet, batches, num_batches=10) == 3
    with pytest.raises(RuntimeError, match='no batch of at least 2'):
        calibrate_bn(supernet, raw_batches(2, batch=1), num_batches=2)
    with pytest.raises(ValueError, match='num_batches=0'):
        calibrate_bn(supernet, [], num_batches=0)
    assert all(m.momentum == 0.1 for m in supernet.modules()
               if isinstance(m, _BatchNorm))


def test_calibration_spares_frozen_bns_and_keeps_drop_path_off():
    """docs/tricks.md, T3.2 pitfalls: a frozen backbone's BatchNorms (mmdet's
    norm_eval) keep their statistics; dropout / drop path stay off while
    the other BatchNorms are recomputed."""
    from mmnas_tricks.models.mutables import named_mutables
    from mmnas_tricks.testing import config_dir as cdir
    cfg = load_config(
        osp.join(cdir(), 'supernets',
                 'fcos_r18w16_fpn-elastic_gn-head-elastic_12e_digits.py'))
    cfg.model.backbone.frozen_stages = 1
    cfg.model.backbone.norm_eval = True
    cfg.model.neck.norm_cfg = dict(type='BN')
    torch.manual_seed(0)
    model = build_model(cfg)
    frozen = {
        n: {k: v.clone()
            for k, v in m.state_dict().items()}
        for n, m in model.backbone.named_modules()
        if isinstance(m, _BatchNorm)
    }
    batches = raw_batches(2, seed=5)
    calibrate_bn(model, batches, num_batches=2)
    for n, m in model.backbone.named_modules():
        if isinstance(m, _BatchNorm):  # all of them: norm_eval
            assert all(
                torch.equal(v, frozen[n][k])
                for k, v in m.state_dict().items()), n
    neck_bn = next(m for m in model.neck.modules()
                   if isinstance(m, _BatchNorm))
    clean = neck_bn.running_mean.clone()
    assert int(neck_bn.num_batches_tracked) == 2
    # with drop path set on every mutable, calibration gives the same
    # statistics: it never drops
    from mmnas_tricks.engine.hooks import DropPathHook
    drop = DropPathHook()
    drop.attach(named_mutables(model).values())
    drop.drop_path_prob = 0.9
    calibrate_bn(model, batches, num_batches=2)
    assert torch.allclose(neck_bn.running_mean, clean, atol=1e-6)


@pytest.mark.parametrize('neck_bn', [False, True])
def test_only_the_part_reaching_the_last_bn_runs(neck_bn):
    """The FCOS head (GroupNorm) does not run to calibrate a backbone's
    BatchNorms, nor the neck unless it has some; the statistics equal those
    of a whole-model forward."""
    from mmnas_tricks.engine.bn_calibration import bn_forward
    cfg = load_config(MBV2)
    if neck_bn:
        cfg.model.neck.norm_cfg = dict(type='BN')
    torch.manual_seed(0)
    model = build_model(cfg)
    set_subnet(model, sample_subnet(model, random.Random(3), apply=False))
    batches = raw_batches(2, seed=7)
    ran = []
    # (mmdet calls bbox_head.forward directly: its classifier is hooked)
    parts = dict(
        backbone=model.backbone,
        neck=model.neck,
        bbox_head=model.bbox_head.conv_cls)
    handles = [
        module.register_forward_hook(
            lambda m, i, o, part=part: ran.append(part))
        for part, module in parts.items()
    ]

    def statistics():
        return {
            n: (m.running_mean.clone(), m.running_var.clone())
            for n, m in model.named_modules() if isinstance(m, _BatchNorm)
        }

    try:
        calibrate_bn(model, batches, num_batches=2)
        prefix, ran_prefix = statistics(), list(ran)
        ran.clear()
        calibrate_bn(model, batches, num_batches=2, whole_model=True)
        whole, ran_whole = statistics(), list(ran)
    finally:
        for h in handles:
            h.remove()
    expected = ['backbone', 'neck'] if neck_bn else ['backbone']
    assert ran_prefix == expected * 2
    assert ran_whole == ['backbone', 'neck'] + ['bbox_head'] * 3 + [
        'backbone', 'neck'
    ] + ['bbox_head'] * 3  # the head's classifier runs once per level
    assert prefix.keys() == whole.keys() and prefix
    for name in prefix:
        for a, b in zip(prefix[name], whole[name]):
            assert torch.equal(a, b), name
    # BatchNorms in the head: the whole model runs
    head_bn = torch.nn.BatchNorm2d(4)
    model.bbox_head.add_module('probe_bn', head_bn)
    calls = []
    model.forward = lambda *a, **k: calls.append(k.get('mode'))
    bn_forward(model, [head_bn])(None, None)
    assert calls == ['tensor']
