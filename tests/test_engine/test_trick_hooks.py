"""The schedule tricks on a toy supernet with a mock runner (docs/tricks.md,
T1.2, T1.3, T2.1, T2.3, T2.5): what each sets on the mutables, its schedule,
and the pairs of hooks that refuse to run together. Real-Runner runs are in
test_tricks_runner.py."""
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
from mmengine.logging import MessageHub

from mmnas_tricks.engine.hooks import (AllOpsWarmupHook, ArchPerturbHook,
                                       ArchWarmupHook, AuxSkipHook, DartsHook,
                                       DropPathHook, PathDropoutHook,
                                       SampleSubnetHook, project_to_simplex)
from mmnas_tricks.models.mutables import (ChannelChoice, OpChoice, drop_path,
                                          set_mode)

CANDIDATES = dict(
    conv3x3=dict(type='ConvOp', kernel_size=3),
    conv1x1=dict(type='ConvOp', kernel_size=1),
    skip=dict(type='Identity'))


class Toy(nn.Module):

    def __init__(self, c=4):
        super().__init__()
        self.a = OpChoice(CANDIDATES, c, c)
        self.b = OpChoice(dict(CANDIDATES, sep=dict(type='SepConv')), c, c)
        self.down = OpChoice(CANDIDATES, c, 2 * c, stride=2)

    def forward(self, x):
        return self.down(self.b(self.a(x)))


def mock_runner(model, hooks=(), epochs=4, iters_per_epoch=5, name='t'):
    return SimpleNamespace(
        model=model,
        hooks=list(hooks),
        epoch=0,
        iter=0,
        max_epochs=epochs,
        max_iters=epochs * iters_per_epoch,
        message_hub=MessageHub.get_instance(f'trick_hooks_{name}'))


def walk(hook, runner, fn, epochs=4, iters_per_epoch=5):
    """Call before_train_iter at every iteration; collect fn(runner)."""
    seen = []
    for e in range(epochs):
        for i in range(iters_per_epoch):
            runner.epoch, runner.iter = e, e * iters_per_epoch + i
            hook.before_train_iter(runner, i)
            seen.append(fn(runner))
    return seen


def scalar(runner, key):
    return runner.message_hub.get_scalar(key).current()


# -- T1.2 path dropout -------------------------------------------------------
def test_path_dropout_rate_follows_the_schedule_and_never_drops_all():
    model = Toy()
    runner = mock_runner(model, [PathDropoutHook(r_max=0.5)], name='pd')
    hook = runner.hooks[0]
    hook.before_train(runner)
    assert all(m.mode == 'all_on' for m in (model.a, model.b, model.down))
    rates = walk(hook, runner, lambda r: scalar(r, 'train/path_dropout_rate'))
    assert rates == pytest.approx([0.5 * t / 20 for t in range(20)])
    # per-path probability r ** (1 / k): all k dropped (before the guard)
    # with probability r, whatever k
    assert model.a.drop_prob == pytest.approx((0.5 * 19 / 20)**(1 / 3))
    assert model.b.drop_prob == pytest.approx((0.5 * 19 / 20)**(1 / 4))
    model.train()
    torch.manual_seed(0)
    mask = model.b.path_mask(20000)
    assert mask.sum(1).min() >= 1  # never all dropped
    p, k = model.b.drop_prob, 4
    kept = float(mask.mean())  # (1 - p) + p^k / k with the guard
    assert kept == pytest.approx((1 - p) + p**k / k, abs=0.01)
    # validation runs single candidates, training all again
    hook.before_val_epoch(runner)
    assert model.a.mode == 'sampled'
    hook.after_val_epoch(runner)
    assert model.a.mode == 'all_on'
    hook.after_train(runner)
    assert model.a.mode == 'sampled'


# -- T1.3 TuNAS warm-up -------------------------------------------------------
def test_all_ops_probability_decays_to_zero_over_the_warmup():
    model = Toy()
    model.width = ChannelChoice([2, 4, 8])
    sampler = SampleSubnetHook()
    hook = AllOpsWarmupHook(warmup_ratio=0.5, seed=1)
    runner = mock_runner(
        model, [sampler, hook], epochs=10, iters_per_epoch=10, name='tunas')
    hook.before_train(runner)
    probs, fractions = [], []
    for it in range(100):
        runner.iter, runner.epoch = it, it // 10
        hook.before_train_iter(runner, it)
        probs.append(scalar(runner, 'train/all_ops_prob'))
        fractions.append(scalar(runner, 'train/all_ops_fraction'))
        if it == 0:  # p_all = 1: everything on, outputs averaged
            assert all(m.mode == 'all_on' and m.average_paths
                       for m in (model.a, model.b, model.down))
            assert model.width.mode == 'sampled'
            assert model.width.current_choice == 8  # largest width
            model.train()
            assert torch.equal(model.a.path_mask(2), torch.full((2, 3), 1 / 3))
    assert probs == pytest.approx([1 - min(t / 50, 1) for t in range(100)])
    assert fractions[0] == 1.0 and all(f == 0 for f in fractions[50:])
    # the realised fraction tracks p_all over the warm-up
    assert sum(fractions[:50]) / 50 == pytest.approx(
        sum(probs[:50]) / 50, abs=0.12)
    assert all(m.mode == 'sampled' and not m.average_paths
               for m in (model.a, model.b, model.down))
    # same draws for the same seed and iteration (every rank agrees)
    other = Toy()
    h2 = AllOpsWarmupHook(warmup_ratio=0.5, seed=1)
    r2 = mock_runner(
        other, [SampleSubnetHook(), h2],
        epochs=10,
        iters_per_epoch=10,
        name='tunas2')
    h2.before_train(r2)
    for it in (3, 17, 31):
        runner.iter = r2.iter = it
        hook.before_train_iter(runner, it)
        h2.before_train_iter(r2, it)
        assert [m.mode for m in (model.a, model.b, model.down)
                ] == [m.mode for m in (other.a, other.b, other.down)]


# -- T2.1 drop path -----------------------------------------------------------
def test_drop_path_schedule_and_effect():
    model = Toy()
    runner = mock_runner(model, [DropPathHook(p_max=0.4)], name='dp')
    hook = runner.hooks[0]
    hook.before_train(runner)
    probs = walk(hook, runner, lambda r: scalar(r, 'train/drop_path_prob'))
    assert probs == pytest.approx([0.4 * (t // 5) / 4 for t in range(20)])
    end1 = DropPathHook(p_max=0.4, end_offset=1)
    assert walk(end1, runner, lambda r: end1.prob(r))[-1] == pytest.approx(0.4)

    # per-example drop, inverted scaling: the mean is kept
    torch.manual_seed(0)
    x = torch.ones(20000, 3)
    y = drop_path(x, 0.3)
    dropped = float((y[:, 0] == 0).float().mean())
    assert dropped == pytest.approx(0.3, abs=0.02)
    assert float(y.mean()) == pytest.approx(1.0, rel=0.03)
    assert torch.equal(y[:, 0], y[:, 1])  # whole examples

    set_mode(model, 'sampled')
    model.train()
    hook.drop_path_prob = 0.5
    x = torch.randn(64, 4, 3, 3)
    model.a.current_choice = 'conv3x3'
    out = model.a(x)
    zero = (out.flatten(1).abs().sum(1) == 0).float().mean()
    assert 0.3 < float(zero) < 0.7
    model.a.current_choice = 'skip'  # a chosen skip is never dropped
    assert torch.equal(model.a(x), x)
    model.eval()  # never in eval mode
    model.a.current_choice = 'conv3x3'
    hook.drop_path_prob = 0.99
    assert (model.a(x).flatten(1).abs().sum(1) > 0).all()
    hook.after_train(runner)
    assert hook.drop_path_prob == 0.0
    hook.drop_path_prob = 0.99  # its forward hooks are gone with training
    model.train()
    assert (model.a(x).flatten(1).abs().sum(1) > 0).all()
    assert not model.a._forward_hooks


# -- T2.3 SDARTS-RS -----------------------------------------------------------
def test_sdarts_perturbation_stays_on_the_simplex_within_eps():
    model = Toy()
    set_mode(model, 'differentiable')
    with torch.no_grad():
        model.a.arch_alpha.copy_(torch.tensor([2.0, 0.0, -1.0]))
    darts = DartsHook(arch_dataloader={})
    hook = ArchPerturbHook(eps_max=0.3, eps_min=0.03, seed=4)
    runner = mock_runner(model, [darts, hook], epochs=5, name='sdarts')
    hook.before_train(runner)
    alpha = {
        n: m.arch_alpha.detach().clone()
        for n, m in (('a', model.a), ('b', model.b), ('down', model.down))
    }
    eps_seen = []
    for e in range(5):
        runner.epoch, runner.iter = e, e * 5
        hook.before_train_iter(runner, 0)
        eps = scalar(runner, 'train/arch_perturb_eps')
        eps_seen.append(eps)
        for m in (model.a, model.b, model.down):
            w = m.arch_weights()
            assert float(w.sum()) == pytest.approx(1.0, abs=1e-6)
            assert float(w.min()) >= 0
            clean = torch.softmax(m.arch_alpha.detach(), 0)
            # clamping and renormalising can move a weight a little further
            # than the noise; SDARTS's bound is eps + the projection's shift
            assert not torch.allclose(w, clean)
            assert float((w - clean).abs().max()) <= 2 * eps + 1e-6
        hook.after_train_iter(runner, 0)
        for m in (model.a, model.b, model.down):
            assert not m.weights_overridden
            assert torch.equal(m.arch_weights(),
                               torch.softmax(m.arch_alpha, 0))
    assert eps_seen == pytest.approx([0.03 + 0.27 * e / 5 for e in range(5)])
    for n, m in (('a', model.a), ('b', model.b), ('down', model.down)):
        assert torch.equal(m.arch_alpha.detach(), alpha[n])  # never touched
    # projection: an all-negative row goes to the reference's argmax
    out = project_to_simplex(
        torch.tensor([-0.1, -0.2, -0.3]), torch.tensor([0.1, 0.5, 0.4]))
    assert torch.equal(out, torch.tensor([0.0, 1.0, 0.0]))


# -- T2.5 DARTS- --------------------------------------------------------------
@pytest.mark.parametrize('decay,f', [
    ('linear', lambda s: 1 - s),
    ('cosine', lambda s: (1 + math.cos(math.pi * s)) / 2),
    ('slow_cosine', lambda s: math.cos(math.pi * s / 2)),
])
def test_aux_skip_beta_decays_to_zero(decay, f):
    model = Toy()
    set_mode(model, 'differentiable')
    hook = AuxSkipHook(beta0=1.0, decay=decay)
    runner = mock_runner(
        model, [DartsHook(arch_dataloader={}), hook],
        epochs=5,
        name=f'dm_{decay}')
    hook.before_train(runner)
    betas = walk(
        hook, runner, lambda r: scalar(r, 'train/aux_skip_beta'), epochs=5)
    want = [f(min(e / 4, 1)) for e in range(5) for _ in range(5)]
    assert betas == pytest.approx(want, abs=1e-12)
    assert betas[-1] == 0.0  # the last epoch runs without the skip
    assert hook.aux_skip_beta == 0.0 and not hook.acts_on(model.a)


def test_aux_skip_adds_beta_times_the_input_where_shapes_match():
    model = Toy()
    set_mode(model, 'differentiable')
    model.train()
    x = torch.randn(2, 4, 6, 6)
    torch.manual_seed(0)
    base_a = model.a(x)
    hook = AuxSkipHook()
    hook.attach([model.a, model.down])
    hook.aux_skip_beta = 0.7
    torch.manual_seed(0)
    assert torch.allclose(model.a(x), base_a + 0.7 * x, atol=1e-6)
    y = model.down(x)  # stride 2: no skip possible, no error
    assert y.shape == (2, 8, 3, 3)
    # no alpha entry for the skip, argmax unchanged by beta
    assert model.a.arch_alpha.numel() == 3
    model.eval()
    with torch.no_grad():
        ev = model.a(x)
    hook.aux_skip_beta = 0.0
    with torch.no_grad():
        assert torch.equal(ev, model.a(x))  # off in eval mode


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


def test_warmup_can_mix_uniformly_until_alpha_trains():
    model = Toy()
    set_mode(model, 'differentiable')
    with torch.no_grad():
        model.a.arch_alpha.copy_(torch.tensor([3.0, 0.0, 0.0]))
    darts = DartsHook(arch_dataloader={})
    hook = ArchWarmupHook(warmup_iters=2, uniform_mix=True)
    runner = mock_runner(model, [darts, hook], name='uniform')
    hook.before_train(runner)
    for it, uniform in ((0, True), (1, True), (2, False)):
        runner.iter = it
        hook.before_train_iter(runner, it)
        w = model.a.arch_weights()
        if uniform:
            assert torch.equal(w, torch.full((3, ), 1 / 3))
        else:
            assert torch.equal(w, torch.softmax(model.a.arch_alpha, 0))


def test_arch_weight_decay_is_the_arch_optimizer_setting():
    from mmengine.optim import OptimWrapper
    model = Toy()
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    darts = DartsHook(
        arch_dataloader={},
        arch_optimizer=dict(
            type='Adam', lr=3e-4, betas=(0.5, 0.999), weight_decay=5e-3))
    runner = mock_runner(model, [darts], name='wd')
    runner.optim_wrapper = wrapper
    darts.before_run(runner)
    assert [g['weight_decay'] for g in darts.arch_optimizer.param_groups] \
        == [5e-3]
    alphas = {id(m.arch_alpha) for m in (model.a, model.b, model.down)}
    in_arch = {
        id(p)
        for g in darts.arch_optimizer.param_groups for p in g['params']
    }
    in_weights = {
        id(p)
        for g in wrapper.optimizer.param_groups for p in g['params']
    }
    assert in_arch == alphas and not in_arch & in_weights
    assert DartsHook(
        arch_dataloader={}
    ).arch_optimizer_cfg['weight_decay'] == 1e-3  # DARTS's default


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


def test_drop_path_spares_depth_choices():
    """A depth choice holds mutables of its own: dropping the whole stage
    output would zero a tower; its blocks take drop path instead."""
    from mmnas_tricks.models.mutables import DepthChoice
    stage = DepthChoice(
        [dict(type='mmnas_tricks.ConvOp', in_channels=4, out_channels=4)] * 2,
        depths=(1, 2))
    stage.train()
    hook = DropPathHook()
    hook.attach([stage])
    hook.drop_path_prob = 0.99
    x = torch.randn(32, 4, 5, 5)
    assert (stage(x).flatten(1).abs().sum(1) > 0).all()


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
