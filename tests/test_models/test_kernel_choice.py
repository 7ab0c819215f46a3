import random

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from mmnas_tricks.models.mutables import (KernelSizeChoice, export_static,
                                          sample_subnet, subnet_param_count)
from mmnas_tricks.registry import MODELS


def test_smaller_kernels_use_the_centre():
    conv = KernelSizeChoice(4, 6, (3, 5, 7), stride=2, dilation=1)
    x = torch.randn(2, 4, 11, 11)
    conv.current_choice = 3
    ref = F.conv2d(x, conv.weight[:, :, 2:5, 2:5], None, 2, 1)
    assert torch.allclose(conv(x), ref)
    conv.current_choice = 7
    assert torch.allclose(conv(x), F.conv2d(x, conv.weight, None, 2, 3))


def test_only_the_centre_gets_gradients_in_sampled_mode():
    conv = KernelSizeChoice(2, 2, (3, 7))
    conv.current_choice = 3
    conv(torch.randn(1, 2, 9, 9)).sum().backward()
    g = conv.weight.grad.abs().sum(dim=(0, 1))
    assert g[2:5, 2:5].gt(0).all()
    g[2:5, 2:5] = 0
    assert g.eq(0).all()
    assert conv.arch_alpha.grad is None


def test_differentiable_mode_mixes_the_kernels():
    torch.manual_seed(0)
    conv = KernelSizeChoice(3, 3, (3, 5), groups=3)
    x = torch.randn(2, 3, 8, 8)
    outs = []
    for k in (3, 5):
        conv.current_choice = k
        outs.append(conv(x).detach())
    conv.set_mode('differentiable')
    with torch.no_grad():
        conv.arch_alpha.copy_(torch.tensor([1.0, -0.5]))
    w = torch.softmax(conv.arch_alpha.detach(), 0)
    y = conv(x)
    assert torch.allclose(y, w[0] * outs[0] + w[1] * outs[1], atol=1e-5)
    y.pow(2).sum().backward()
    assert conv.arch_alpha.grad.abs().gt(0).all()
    assert conv.weight.grad.abs().sum() > 0


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_export_equal_and_param_count(seed):
    torch.manual_seed(seed)
    model = nn.Sequential(
        KernelSizeChoice(4, 4, (3, 5, 7), groups=4, bias=True), nn.ReLU(),
        KernelSizeChoice(4, 8, (1, 3)))
    subnet = sample_subnet(model, random.Random(seed))
    x = torch.randn(1, 4, 10, 10)
    static = export_static(model)
    assert (static(x) - model(x)).abs().max().item() <= 1e-5
    assert subnet_param_count(model) == sum(p.numel()
                                            for p in static.parameters())
    for i, k in enumerate(subnet.values()):
        built = MODELS.build(model[2 * i].export_cfg())
        assert isinstance(built, nn.Conv2d) and built.kernel_size == (k, k)
        built.load_state_dict(static[2 * i].state_dict(), strict=True)


def test_bad_kernel_sizes():
    with pytest.raises(ValueError, match=r'odd and >= 1, got \[4\]'):
        KernelSizeChoice(2, 2, (3, 4))


def test_whole_float_choices_from_files():
    conv = KernelSizeChoice(2, 2, (3, 5))
    conv.current_choice = 5.0  # as JSON may give it
    assert conv.current_choice == 5 and isinstance(conv.current_choice, int)
    with pytest.raises(ValueError, match='5.5 is not a choice'):
        conv.current_choice = 5.5
