import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mmnas_tricks.models.mutables import (DepthChoice, export_static,
                                          named_mutables, sample_subnet,
                                          space_size, subnet_param_count)
from mmnas_tricks.registry import MODELS

BLOCK = dict(type='ConvOp', in_channels=4, out_channels=4)
CHOICE_BLOCK = dict(
    type='OpChoice',
    in_channels=4,
    out_channels=4,
    candidates=dict(conv=dict(type='ConvOp'), skip=dict(type='Identity')))


def test_runs_the_first_d_blocks():
    stage = DepthChoice([BLOCK] * 4, depths=(2, 4)).eval()
    x = torch.randn(1, 4, 6, 6)
    stage.current_choice = 2
    ref = stage.blocks[1](stage.blocks[0](x))
    assert torch.allclose(stage(x), ref)
    stage.current_choice = 2
    stage(x).sum().backward()
    assert stage.blocks[3].conv.weight.grad is None
    assert stage.blocks[0].conv.weight.grad is not None


def test_differentiable_and_all_on():
    stage = DepthChoice([BLOCK] * 3, depths=(1, 3))
    stage.set_mode('differentiable')
    stage(torch.randn(2, 4, 5, 5)).pow(2).sum().backward()
    assert stage.arch_alpha.grad.abs().gt(0).all()
    stage.set_mode('all_on', drop_prob=0.9)
    assert stage(torch.randn(3, 4, 5, 5)).shape == (3, 4, 5, 5)


def test_nested_mutables_are_named_and_counted():
    stage = DepthChoice([CHOICE_BLOCK] * 3, depths=(1, 2, 3))
    names = list(named_mutables(stage))
    assert names == ['', '0', '1', '2']
    assert space_size(stage) == 3 * 2**3


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_export_with_nested_choices(seed):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        DepthChoice([CHOICE_BLOCK] * 3, depths=(1, 2, 3)))
    subnet = sample_subnet(model, random.Random(seed))
    model.eval()
    x = torch.randn(1, 4, 6, 6)
    static = export_static(model).eval()
    with torch.no_grad():
        assert (static(x) - model(x)).abs().max().item() <= 1e-5
    assert subnet_param_count(model) == sum(p.numel()
                                            for p in static.parameters())
    # the exported config of the depth choice (with its inner choices
    # exported) rebuilds the static stage, which loads strictly
    stage = model[0]
    depth = subnet['0']
    blocks = [stage.blocks[i].export_cfg() for i in range(depth)]
    rebuilt = MODELS.build(
        dict(type='mmnas_tricks.SequentialBlocks', blocks=blocks))
    rebuilt.load_state_dict(static[0].state_dict(), strict=True)


def test_bad_depths():
    with pytest.raises(ValueError, match=r'depths \[5\] are not in'):
        DepthChoice([BLOCK] * 4, depths=(2, 5))
