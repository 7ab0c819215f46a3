"""Elastic width: a ChannelChoice drives the output channels of MBConv
choices (first channels kept) and the input channels of the next ones."""
import random

import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

from mmnas_tricks.models.mutables import (ChannelChoice, MBConvChoice,
                                          export_static, named_mutables,
                                          sample_subnet, set_mode,
                                          subnet_param_count)


class Stage(nn.Module):
    """8 -> width(16 | 12 | 8) -> width: two blocks sharing a width."""

    def __init__(self):
        super().__init__()
        self.width = ChannelChoice([16, 12, 8])
        self.a = MBConvChoice(8, 16, stride=2, expand_ratios=(2, 3))
        self.b = MBConvChoice(16, 16, expand_ratios=(2, 3))
        self.a.set_width_sources(out_width=self.width)
        self.b.set_width_sources(in_width=self.width, out_width=self.width)

    def forward(self, x):
        return self.b(self.a(x))


def test_a_narrower_width_is_the_first_channels_of_the_full_one():
    stage = Stage().eval()
    x = torch.randn(2, 8, 8, 8)
    with torch.no_grad():
        full = stage.a(x)
        stage.width.current_choice = 12
        narrow = stage.a(x)
    assert narrow.shape[1] == 12
    assert torch.allclose(narrow, full[:, :12], atol=1e-6)


def test_gradients_stay_in_the_chosen_channels():
    stage = Stage()
    stage.width.current_choice = 8
    stage(torch.randn(2, 8, 8, 8)).sum().backward()
    assert stage.a.project_weight.grad[8:].abs().sum() == 0
    assert stage.a.project_weight.grad[:8].abs().sum() > 0
    assert stage.b.expand_weight.grad[:, 8:].abs().sum() == 0
    assert stage.width.arch_alpha.grad is None


def test_differentiable_width_mixes_channel_masks_with_alpha_gradients():
    stage = Stage()
    set_mode(stage, 'differentiable')
    out = stage(torch.randn(2, 8, 8, 8))
    assert out.shape[1] == 16
    out.pow(2).sum().backward()
    assert stage.width.arch_alpha.grad.abs().gt(0).all()
    # masks: channel 0 is in every width (weight 1), 12..15 only in 16
    mask = stage.width.channel_mask(1)
    w = stage.width.arch_weights()
    assert torch.allclose(mask[0, 0, 0, 0], torch.tensor(1.0))
    assert torch.allclose(mask[0, 15, 0, 0], w[0])


@settings(max_examples=25, deadline=None)
@given(drop=st.floats(0.0, 1.0), seed=st.integers(0, 10_000))
def test_path_dropout_never_drops_every_width(drop, seed):
    torch.manual_seed(seed)
    width = ChannelChoice([16, 12, 8])
    width.set_mode('all_on', drop_prob=drop)
    width.train()
    mask = width.channel_mask(6)
    assert (mask[:, 0] >= 1).all()  # at least one width kept per example


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_export_slices_channels_and_matches(seed):
    torch.manual_seed(seed)
    model = Stage()
    subnet = sample_subnet(model, random.Random(seed))
    model.eval()
    x = torch.randn(1, 8, 8, 8)
    static = export_static(model).eval()
    with torch.no_grad():
        assert (static(x) - model(x)).abs().max().item() <= 1e-5
    assert static.a.project.conv.out_channels == subnet['width']
    assert static.b.expand.conv.in_channels == subnet['width']
    assert subnet_param_count(model) == sum(p.numel()
                                            for p in static.parameters())
    assert named_mutables(static) == {}


def test_bad_wiring_is_refused():
    block = MBConvChoice(8, 16)
    with pytest.raises(ValueError, match=r'do not top out at this block'):
        block.set_width_sources(out_width=ChannelChoice([32, 16]))
    stage = Stage()
    stage.width.current_choice = 8
    with pytest.raises(ValueError, match='expected 8 input channels'):
        stage.b(torch.randn(1, 16, 4, 4))
