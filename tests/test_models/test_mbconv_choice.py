import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mmnas_tricks.models.mutables import (MBConvChoice, export_static,
                                          sample_subnet, set_subnet,
                                          subnet_param_count)
from mmnas_tricks.registry import MODELS


def test_smaller_expansion_uses_the_first_channels():
    block = MBConvChoice(4, 4, kernel_sizes=(3, 5), expand_ratios=(2, 4))
    block.current_choice = (3, 2)  # 8 of 16 hidden channels
    block.train()
    block(torch.randn(4, 4, 6, 6)).sum().backward()
    g = block.expand_weight.grad.abs().sum(dim=(1, 2, 3))
    assert g[:8].gt(0).all() and g[8:].eq(0).all()
    dw = block.dw_weight.grad.abs().sum(dim=(0, 1))
    assert dw[1:4, 1:4].gt(0).all()
    dw[1:4, 1:4] = 0
    assert dw.eq(0).all()  # only the centre 3x3 of the 5x5
    # BatchNorm statistics move only for the active channels
    assert block.expand_bn.running_mean[8:].eq(0).all()
    assert block.expand_bn.running_mean[:8].ne(0).any()


def test_differentiable_reaches_every_choice():
    block = MBConvChoice(4, 4, kernel_sizes=(3, 5), expand_ratios=(2, 3))
    block.set_mode('differentiable')
    # not .sum(): train-mode BN makes every choice's output sum to ~0
    block(torch.randn(2, 4, 5, 5)).pow(2).sum().backward()
    assert block.arch_alpha.grad.abs().gt(0).all()
    block.set_mode('all_on', drop_prob=0.5)
    assert block(torch.randn(3, 4, 5, 5)).shape == (3, 4, 5, 5)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16), stride=st.sampled_from([1, 2]))
def test_export_equal_strict_and_param_count(seed, stride):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        MBConvChoice(4, 4, expand_ratios=(3, 6)),
        MBConvChoice(4, 8, stride=stride, kernel_sizes=(3, 5)))
    model.train()
    model(torch.randn(4, 4, 8, 8))  # move the BN statistics
    subnet = sample_subnet(model, random.Random(seed))
    model.eval()
    x = torch.randn(2, 4, 8, 8)
    static = export_static(model).eval()
    with torch.no_grad():
        assert (static(x) - model(x)).abs().max().item() <= 1e-5
    assert subnet_param_count(model) == sum(p.numel()
                                            for p in static.parameters())
    for i, name in enumerate(subnet):
        built = MODELS.build(model[i].export_cfg())
        built.load_state_dict(static[i].state_dict(), strict=True)


def test_choices_from_a_file_and_bad_args():
    model = torch.nn.Sequential(MBConvChoice(4, 4))
    set_subnet(model, {'0': [5, 6.0]})  # as YAML gives it
    assert model[0].current_choice == (5, 6)
    with pytest.raises(ValueError, match='expand ratios must be > 1'):
        MBConvChoice(4, 4, expand_ratios=(1, 3))
    with pytest.raises(ValueError, match='slices BatchNorm only'):
        MBConvChoice(4, 4, norm_cfg=dict(type='GN', num_groups=2))
