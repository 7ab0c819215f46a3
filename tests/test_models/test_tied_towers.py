"""NAS-FCOS's shared op sequence (SearchableFCOSHead(share_tower_ops=True),
BaseMutable.tie_to): the regression tower repeats the classification
tower's decisions with its own weights; tied mutables are no decisions of
their own, in every mode, and export as their leader's choice."""
import random

import pytest
import torch
from mmengine.config import Config

from mmnas_tricks.models import export_config
from mmnas_tricks.models.heads import NASFCOS_HEAD_OPS
from mmnas_tricks.models.mutables import (OpChoice, export_static,
                                          named_mutables, sample_subnet,
                                          set_mode, space_size,
                                          subnet_param_count)
from mmnas_tricks.registry import MODELS

HEAD = dict(
    type='mmnas_tricks.SearchableFCOSHead',
    num_classes=3,
    in_channels=16,
    feat_channels=16,
    stacked_convs=2,
    strides=[8, 16],
    norm_cfg=dict(type='GN', num_groups=4),
    tower_ops={
        k: v
        for k, v in NASFCOS_HEAD_OPS.items() if k != 'def_conv_3x3'
    },
    tower_depths=(2, 1),
    share_tower_ops=True)


def test_the_reg_tower_follows_the_cls_towers_decisions():
    torch.manual_seed(0)
    head = MODELS.build(HEAD)
    names = list(named_mutables(head))
    assert names == ['cls_convs', 'cls_convs.0', 'cls_convs.1']
    assert space_size(head) == 2 * 5 * 5
    subnet = sample_subnet(head, random.Random(2))
    for i in range(2):
        assert head.reg_convs[i].current_choice == \
            head.cls_convs[i].current_choice
    assert head.reg_convs.current_choice == head.cls_convs.current_choice
    # its own weights
    assert head.reg_convs[0].candidates['conv3x3'].conv.weight is not \
        head.cls_convs[0].candidates['conv3x3'].conv.weight
    with pytest.raises(RuntimeError, match='set that one'):
        head.reg_convs[0].current_choice = 'conv1x1'
    # differentiable: the reg tower mixes with the cls tower's alpha, its
    # own never trains
    set_mode(head, 'differentiable')
    assert head.reg_convs[0].mode == 'differentiable'
    assert torch.equal(head.reg_convs[0].arch_weights(),
                       head.cls_convs[0].arch_weights())
    assert not head.reg_convs[0].arch_alpha.requires_grad
    set_mode(head, 'sampled')
    # the export builds the reg tower of the same ops, and the exported
    # config's head is that static head
    head.eval()
    feats = [torch.randn(1, 16, 8, 8), torch.randn(1, 16, 4, 4)]
    static = export_static(head).eval()
    assert [type(m).__name__ for m in static.reg_convs] == \
        [type(m).__name__ for m in static.cls_convs]
    assert not any(isinstance(m, OpChoice) for m in static.modules())
    cfg = export_config(
        Config(dict(model=dict(type='FCOS', bbox_head=HEAD))),
        {f'bbox_head.{k}': v
         for k, v in subnet.items()})
    fixed = MODELS.build(cfg.model.bbox_head)
    fixed.load_state_dict(static.state_dict(), strict=True)
    with torch.no_grad():
        for a_level, b_level in zip(head(feats), fixed.eval()(feats)):
            for a, b in zip(a_level, b_level):
                assert torch.allclose(a, b, atol=1e-5)
    # the parameter count covers both towers at the shared choices
    assert subnet_param_count(head, subnet) == \
        sum(p.numel() for p in static.parameters())


def test_a_tie_needs_the_same_choices_and_a_leader():
    a = OpChoice(dict(skip=dict(type='Identity')), 4, 4)
    b = OpChoice(
        dict(skip=dict(type='Identity'), conv=dict(type='ConvOp')), 4, 4)
    c = OpChoice(dict(skip=dict(type='Identity')), 4, 4)
    with pytest.raises(ValueError, match='same choices'):
        b.tie_to(a)
    c.tie_to(a)
    d = OpChoice(dict(skip=dict(type='Identity')), 4, 4)
    with pytest.raises(ValueError, match='not to one that follows'):
        d.tie_to(c)
