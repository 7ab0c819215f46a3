import random

import numpy as np
import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

from mmnas_tricks.models.mutables import (InputChoice, OpChoice, SubnetError,
                                          arch_parameters, argmax_subnet,
                                          get_subnet, named_mutables,
                                          sample_subnet, search_space,
                                          set_mode, set_subnet, space_size)

CANDIDATES = dict(
    conv3x3=dict(type='ConvOp', kernel_size=3),
    conv1x1=dict(type='ConvOp', kernel_size=1),
    sep3x3=dict(type='SepConv', kernel_size=3),
    skip=dict(type='Identity'))


class Toy(nn.Module):
    """Two op choices and an input choice."""

    def __init__(self, c=4):
        super().__init__()
        self.stem = nn.Conv2d(3, c, 3, padding=1)
        self.block1 = OpChoice(CANDIDATES, c, c)
        self.block2 = OpChoice(
            dict(
                conv=dict(type='ConvOp'),
                skip=dict(type='Identity'),
                zero=dict(type='Zero')), c, c)
        self.pick = InputChoice(3)

    def forward(self, x):
        x0 = self.stem(x)
        x1 = self.block1(x0)
        x2 = self.block2(x1)
        return self.pick([x0, x1, x2])


def _grads(model):
    return {
        n: p.grad is not None and p.grad.abs().sum().item() > 0
        for n, p in model.named_parameters()
    }


def test_names_choices_and_size():
    model = Toy()
    assert list(named_mutables(model)) == ['block1', 'block2', 'pick']
    assert search_space(model)['block1'] == list(CANDIDATES)
    assert search_space(model)['pick'] == [0, 1, 2]
    assert space_size(model) == 4 * 3 * 3
    assert space_size(model, include='block*') == 12
    wrapped = nn.Module()
    wrapped.model = model
    assert list(named_mutables(wrapped)) == [
        'model.block1', 'model.block2', 'model.pick'
    ]


@pytest.mark.parametrize('mode', ['fixed', 'sampled'])
def test_only_the_chosen_candidate_gets_gradients(mode):
    torch.manual_seed(0)
    model = Toy()
    set_subnet(model, dict(block1='sep3x3', block2='conv', pick=2))
    set_mode(model, mode)
    model(torch.randn(2, 3, 8, 8)).sum().backward()
    g = _grads(model)
    assert any(v for k, v in g.items()
               if k.startswith('block1.candidates.sep3x3'))
    for other in ('conv3x3', 'conv1x1'):
        assert not any(v for k, v in g.items()
                       if k.startswith(f'block1.candidates.{other}'))
    assert not any(v for k, v in g.items() if 'arch_alpha' in k)


def test_differentiable_mode_reaches_every_candidate_and_alpha():
    torch.manual_seed(0)
    model = Toy()
    set_mode(model, 'differentiable')
    assert all(p.requires_grad for p in arch_parameters(model))
    model(torch.randn(2, 3, 8, 8)).pow(2).sum().backward()
    g = _grads(model)
    for name in ('conv3x3', 'conv1x1', 'sep3x3'):
        assert any(v for k, v in g.items()
                   if k.startswith(f'block1.candidates.{name}'))
    for name in ('block1', 'block2', 'pick'):
        assert g[f'{name}.arch_alpha']
    set_mode(model, 'sampled')
    assert not any(p.requires_grad for p in arch_parameters(model))


def test_differentiable_output_is_the_softmax_mix():
    torch.manual_seed(0)
    op = OpChoice(CANDIDATES, 4, 4).eval()
    x = torch.randn(1, 4, 5, 5)
    outs = []
    for name in CANDIDATES:
        op.current_choice = name
        outs.append(op(x))
    op.set_mode('differentiable')
    with torch.no_grad():
        op.arch_alpha.copy_(torch.tensor([0.5, -1.0, 2.0, 0.0]))
    w = torch.softmax(op.arch_alpha.detach(), 0)
    expected = sum(wi * o for wi, o in zip(w, outs))
    assert torch.allclose(op(x), expected, atol=1e-6)
    assert op.argmax_choice() == 'sep3x3'


@settings(max_examples=25, deadline=None)
@given(
    drop=st.floats(0.0, 1.0),
    batch=st.integers(1, 16),
    seed=st.integers(0, 2**16))
def test_path_dropout_never_drops_all(drop, batch, seed):
    torch.manual_seed(seed)
    op = OpChoice(CANDIDATES, 2, 2)
    op.set_mode('all_on', drop_prob=drop)
    mask = op.path_mask(batch)
    assert mask.shape == (batch, 4)
    assert (mask.sum(1) >= 1).all()
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    op.train()
    out = op(torch.randn(batch, 2, 4, 4))
    assert out.shape == (batch, 2, 4, 4)


def test_path_dropout_rate():
    torch.manual_seed(0)
    op = OpChoice(CANDIDATES, 2, 2)
    op.set_mode('all_on', drop_prob=0.3)
    mask = op.path_mask(20000)
    # per-path keep rate ~ 0.7 (slightly more: all-dropped rows keep one)
    assert 0.69 < mask.mean().item() < 0.72
    op.eval()
    assert op.path_mask(3).eq(1).all()  # no dropping at evaluation


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), numpy_rng=st.booleans())
def test_sample_set_get_roundtrip(seed, numpy_rng):
    model = Toy()
    rng = np.random.default_rng(seed) if numpy_rng else random.Random(seed)
    subnet = sample_subnet(model, rng)
    assert get_subnet(model) == subnet
    again = sample_subnet(
        Toy(),
        np.random.default_rng(seed) if numpy_rng else random.Random(seed))
    assert again == subnet  # the same generator state -> the same subnet


def test_sampling_respects_include_fixed_and_probs():
    model = Toy()
    set_subnet(model, dict(block1='skip', block2='zero', pick=0))
    model.block2.set_mode('fixed')
    rng = random.Random(0)
    seen = set()
    for _ in range(50):
        s = sample_subnet(
            model, rng, include='block*', probs=dict(block1=[0, 0, 1, 0]))
        seen.add((s['block1'], s['block2'], s['pick']))
    assert seen == {('sep3x3', 'zero', 0)}
    # weights need not sum to 1, for either kind of generator
    for gen in (random.Random(1), np.random.default_rng(1)):
        s = sample_subnet(model, gen, probs=dict(block1=[0, 3, 0, 0]))
        assert s['block1'] == 'conv1x1'
    with pytest.raises(
            SubnetError, match=r'block1: probabilities \[-1, 2, 0, 0\]'):
        sample_subnet(model, rng, probs=dict(block1=[-1, 2, 0, 0]))
    with pytest.raises(SubnetError, match='3 probabilities for 4 choices'):
        sample_subnet(model, rng, probs=dict(block1=[1, 2, 0]))
    with pytest.raises(SubnetError, match='not sampled'):
        sample_subnet(model, rng, probs=dict(block2=[1, 0, 0]))
    with pytest.raises(TypeError, match='random.Random or a numpy'):
        sample_subnet(model, 42)


def test_argmax_subnet():
    model = Toy()
    with torch.no_grad():
        model.block1.arch_alpha.copy_(torch.tensor([0., 0., 0., 5.]))
        model.block2.arch_alpha.copy_(torch.tensor([0., 3., 0.]))
        model.pick.arch_alpha.copy_(torch.tensor([1., 0., 0.]))
    assert argmax_subnet(model) == dict(block1='skip', block2='skip', pick=0)


def test_bad_subnets_are_named():
    model = Toy()
    before = get_subnet(model)
    with pytest.raises(
            SubnetError,
            match=r"unknown mutable 'blok1' \(did you mean \['block1'"):
        set_subnet(model, dict(blok1='skip', block2='conv', pick=0))
    with pytest.raises(
            SubnetError,
            match=(r"block2: 'conv5' is not a choice; "
                   r"valid: \['conv', 'skip', 'zero'\]")):
        set_subnet(model, dict(block1='skip', block2='conv5', pick=0))
    with pytest.raises(SubnetError, match=r"missing mutables \['pick'\]"):
        set_subnet(model, dict(block1='skip', block2='conv'))
    with pytest.raises(SubnetError, match='must be a dict'):
        set_subnet(model, ['skip'])
    with pytest.raises(SubnetError, match=r'pick: \[1\] is not a choice'):
        set_subnet(model, dict(block1='skip', block2='conv', pick=[1]))
    assert get_subnet(model) == before  # nothing set on error
    with pytest.raises(ValueError, match="mode 'dart' is not one of"):
        set_mode(model, 'dart')


def test_input_choice_k_of_n():
    choice = InputChoice(4, num_chosen=2)
    assert len(choice.choices) == 6
    choice.current_choice = [3, 1]  # as read from a file
    assert choice.current_choice == (1, 3)
    xs = [torch.full((1, 1, 2, 2), float(i)) for i in range(4)]
    out = choice(xs)
    assert [o.mean().item() for o in out] == [1.0, 3.0]
    choice.set_mode('differentiable')
    with pytest.raises(NotImplementedError, match='num_chosen=1'):
        choice(xs)
    with pytest.raises(ValueError, match='expects 4 inputs, got 3'):
        choice(xs[:3])
    with pytest.raises(ValueError, match='num_chosen=5'):
        InputChoice(4, 5)


def test_op_choice_bad_candidates():
    with pytest.raises(ValueError, match='non-empty dict'):
        OpChoice({}, 2, 2)
    with pytest.raises(KeyError, match='NoSuchOp'):
        OpChoice(dict(a=dict(type='NoSuchOp')), 2, 2)


def test_op_choice_inside_an_mmdet_scope():
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmdet.utils import register_all_modules
    from mmengine.registry import DefaultScope
    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('mmdet'):
        op = MMDET_MODELS.build(
            dict(
                type='mmnas_tricks.OpChoice',
                in_channels=4,
                out_channels=4,
                norm_cfg=dict(type='GN', num_groups=2),
                candidates=dict(
                    sep=dict(type='SepConv'),
                    skip=dict(type='Identity'),
                    mm=dict(
                        type='mmdet.DropBlock', drop_prob=0.1, block_size=3))))
    assert isinstance(op, OpChoice)
    assert type(op.candidates['mm']).__name__ == 'DropBlock'
    assert any(type(m).__name__ == 'GroupNorm' for m in op.modules())


def test_extreme_subnets():
    from mmnas_tricks.models.mutables import (DepthChoice, MBConvChoice,
                                              extreme_subnet)
    model = nn.ModuleDict(
        dict(
            depth=DepthChoice(
                [dict(type='ConvOp', in_channels=4, out_channels=4)] * 3,
                depths=(2, 3, 1)),
            block=MBConvChoice(
                4, 4, kernel_sizes=(5, 3), expand_ratios=(6, 3)),
            op=Toy().block2))
    assert extreme_subnet(model, 'min') == {
        'depth': 1,
        'block': (3, 3),
        'op': 'conv'
    }
    assert extreme_subnet(model, 'max') == {
        'depth': 3,
        'block': (5, 6),
        'op': 'zero'
    }
    with pytest.raises(ValueError, match="which='mid'"):
        extreme_subnet(model, 'mid')


def test_input_choice_sums_a_nodes_edges():
    """aggregate='sum': the chosen inputs summed (a DARTS node); in
    differentiable mode every input weighted by its share of the subsets'
    weights, or by per-input weights a trick sets; exported alike."""
    from mmnas_tricks.models.mutables import InputChoice, export_static
    node = InputChoice(3, 2, aggregate='sum')
    xs = [torch.full((1, 1, 2, 2), v) for v in (1.0, 10.0, 100.0)]
    node.current_choice = (0, 2)
    assert torch.equal(node(xs), xs[0] + xs[2])
    static = export_static(torch.nn.Sequential(node))[0]
    assert torch.equal(static(xs), xs[0] + xs[2])
    assert node.export_cfg() == dict(
        type='mmnas_tricks.SelectInputs', indices=[0, 2], aggregate='sum')
    node.set_mode('differentiable')
    with torch.no_grad():
        node.arch_alpha.zero_()  # subsets (0,1), (0,2), (1,2) alike
    assert torch.allclose(node.edge_weights(), torch.full((3, ), 2 / 3))
    assert torch.allclose(node(xs), (2 / 3) * (xs[0] + xs[1] + xs[2]))
    owner = object()
    node.override_edge_weights(torch.tensor([1.0, 0.0, 0.5]), owner)
    assert torch.allclose(node(xs), xs[0] + 0.5 * xs[2])
    node.release_weights(owner)
    assert torch.allclose(node.edge_weights(), torch.full((3, ), 2 / 3))
    # a per-subset override (as SDARTS sets) stays per subset
    node.override_weights(torch.tensor([1.0, 0.0, 0.0]), owner)
    assert torch.allclose(node.edge_weights(), torch.tensor([1.0, 1.0, 0.0]))
    node.release_weights(owner)
    with pytest.raises(ValueError, match='needs 3 weights'):
        node.override_edge_weights(torch.ones(2), owner)
    with pytest.raises(ValueError, match="aggregate='mean' is not one of"):
        InputChoice(3, 2, aggregate='mean')
