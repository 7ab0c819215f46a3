"""The tricks together: the pairs of hooks that refuse to run together, bad
arguments, tricks that follow a sequential search, one owner of the mixing
weights, and BatchNorm without affine as a norm_cfg switch (docs/tricks.md).
Real-Runner runs are in test_tricks_runner.py."""
import pytest
import torch
import torch.nn as nn

from mmnas_tricks.engine.hooks import (AllOpsWarmupHook, ArchPerturbHook,
                                       ArchWarmupHook, AuxSkipHook, DartsHook,
                                       DropPathHook, PathDropoutHook,
                                       SampleSubnetHook)
from mmnas_tricks.models.mutables import set_mode
from .toy import Toy, mock_runner


# -- composition: the pairs that cannot run together --------------------------
@pytest.mark.parametrize('hook,others,message', [
    (PathDropoutHook(), [DartsHook(arch_dataloader={})],
     'PathDropoutHook cannot be combined with DartsHook'),
    (PathDropoutHook(), [SampleSubnetHook()],
     'PathDropoutHook cannot be combined with SampleSubnetHook'),
    (AllOpsWarmupHook(), [
        SampleSubnetHook(), DartsHook(arch_dataloader={})
    ], 'AllOpsWarmupHook cannot be combined with DartsHook'),
    (AllOpsWarmupHook(), [], 'AllOpsWarmupHook needs a SampleSubnetHook'),
    (ArchPerturbHook(), [SampleSubnetHook()
                         ], 'ArchPerturbHook needs a DartsHook'),
    (AuxSkipHook(), [], 'AuxSkipHook needs a DartsHook'),
    (ArchWarmupHook(), [], 'ArchWarmupHook needs a DartsHook'),
])
def test_hooks_that_cannot_run_together_say_which(hook, others, message):
    runner = mock_runner(Toy(), [hook] + others, name='conflict')
    with pytest.raises(ValueError, match=message):
        hook.before_train(runner)


@pytest.mark.parametrize('cls,kwargs,message', [
    (PathDropoutHook, dict(r_max=1.0), 'r_max=1.0'),
    (AllOpsWarmupHook, dict(warmup_ratio=0), 'warmup_ratio=0'),
    (DropPathHook, dict(p_max=-0.1), 'p_max=-0.1'),
    (DropPathHook, dict(end_offset=2), 'end_offset=2'),
    (ArchPerturbHook, dict(eps_min=0.5, eps_max=0.1), 'eps_min=0.5'),
    (AuxSkipHook, dict(decay='exp'), "decay='exp'.*linear"),
])
def test_bad_arguments_are_named(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)


def test_alpha_tricks_follow_the_mutables_a_sequential_search_opens():
    """SDARTS and DARTS- act on the mutables that are differentiable at
    each iteration, not only on those of the first stage."""
    model = Toy()
    set_mode(model, 'differentiable')
    model.b.set_mode('sampled')  # held by a first stage
    darts = DartsHook(arch_dataloader={})
    perturb, aux = ArchPerturbHook(), AuxSkipHook()
    runner = mock_runner(model, [darts, perturb, aux], name='seq_tricks')
    perturb.before_train(runner)
    aux.before_train(runner)
    for hook in (aux, perturb):
        hook.before_train_iter(runner, 0)
    assert not model.b.weights_overridden and not aux.acts_on(model.b)
    model.b.set_mode('differentiable')  # the next stage opens it
    runner.iter = runner.epoch = 1
    for hook in (aux, perturb):
        hook.before_train_iter(runner, 1)
    assert model.b.weights_overridden
    assert aux.acts_on(model.b)


def test_one_owner_of_the_mixing_weights_at_a_time():
    """The mixing-weights override has one owner at a time; the hooks that
    would both hold it refuse to run together. The mutables keep no
    trick's state."""
    model = Toy()
    set_mode(model, 'differentiable')
    first, second = object(), object()
    uniform = torch.full((3, ), 1 / 3)
    model.a.override_weights(uniform, first)
    with pytest.raises(RuntimeError, match='object holds them'):
        model.a.override_weights(uniform, second)
    model.a.release_weights(second)  # not its owner: nothing happens
    assert model.a.weights_overridden
    assert torch.equal(model.a.arch_weights(), uniform)
    model.a.release_weights(first)
    assert torch.equal(model.a.arch_weights(),
                       torch.softmax(model.a.arch_alpha, 0))
    hooks = [
        DartsHook(arch_dataloader={}),
        ArchWarmupHook(uniform_mix=True),
        ArchPerturbHook()
    ]
    runner = mock_runner(model, hooks, name='owners')
    with pytest.raises(
            ValueError,
            match='ArchWarmupHook cannot be combined '
            'with ArchPerturbHook'):
        hooks[1].before_train(runner)
    for name in ('drop_path_prob', 'aux_skip_beta', 'perturbed_weights',
                 'path_average'):
        assert not hasattr(model.a, name), name


def test_bn_without_affine_is_a_norm_cfg_switch():
    """docs/tricks.md, T3.1: norm_cfg=dict(type='BN', affine=False) on the
    searchable neck and head reaches every candidate op."""
    import os.path as osp

    from torch.nn.modules.batchnorm import _BatchNorm

    from mmnas_tricks.testing import config_dir, demo_det_batch
    from mmnas_tricks.utils import build_model, load_config
    cfg = load_config(
        osp.join(config_dir(), 'supernets',
                 'darts_fcos_r18w16_fpn-search_gn-head-search_6e_digits.py'))
    cfg.model.neck.norm_cfg = dict(type='BN', affine=False)
    cfg.model.bbox_head.norm_cfg = dict(type='BN', affine=False)
    model = build_model(cfg)
    for part in (model.neck, model.bbox_head):
        bns = [m for m in part.modules() if isinstance(m, _BatchNorm)]
        assert bns and all(not m.affine and m.weight is None for m in bns)
        assert not any(isinstance(m, nn.GroupNorm) for m in part.modules())
    set_mode(model, 'differentiable')
    data = demo_det_batch(model, True)
    losses = model(**data, mode='loss')
    assert all(
        torch.isfinite(v).all() for k, v in losses.items()
        if k.startswith('loss'))
