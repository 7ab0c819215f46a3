"""Searchable backbones and necks on their own: arguments, freezing, the
NAS-FCOS cell neck's assembly and modes, export_config / inherit_weights."""
import random

import pytest
import torch
from mmengine.config import Config

from mmnas_tricks.models import export_config, inherit_weights
from mmnas_tricks.models.backbones import (SearchableMobileNetV2,
                                           SearchableShuffleNetV2)
from mmnas_tricks.models.mutables import (SubnetError, export_static,
                                          named_mutables, sample_subnet,
                                          set_mode, set_subnet)
from mmnas_tricks.models.necks import NASFCOSSearchFPN

TINY_MBV2 = dict(
    arch=((16, 2, 2), (16, 3, 2), (24, 2, 2)),
    widen_factor=1.0,
    out_indices=(1, 2),
    width_ratios=(1.0, 0.5))


def test_backbone_arguments_are_checked():
    with pytest.raises(ValueError, match=r'out_indices \[5\] must be stage'):
        SearchableShuffleNetV2(
            stage_blocks=(1, 1), stage_channels=(8, 16), out_indices=(5, ))
    with pytest.raises(ValueError, match='frozen_stages=7'):
        SearchableMobileNetV2(frozen_stages=7)
    with pytest.raises(ValueError, match='depths has 1 entries for 6'):
        SearchableMobileNetV2(depths=[(1, 2)])
    with pytest.raises(ValueError, match='differ in length'):
        SearchableShuffleNetV2(stage_blocks=(1, 1), stage_channels=(8, ))


def test_frozen_stages_and_norm_eval():
    net = SearchableMobileNetV2(**TINY_MBV2, frozen_stages=1, norm_eval=True)
    net.train()

    def weights(m):
        return [p for n, p in m.named_parameters() if 'arch_alpha' not in n]

    assert not any(p.requires_grad for p in weights(net.stem))
    assert not any(p.requires_grad for p in weights(net.stages[0]))
    assert all(p.requires_grad for p in weights(net.stages[1]))
    assert not any(m.training for m in net.modules()
                   if isinstance(m, torch.nn.BatchNorm2d))


def test_mbv2_widths_only_on_stages_the_neck_does_not_read():
    net = SearchableMobileNetV2(**TINY_MBV2)
    assert list(net.widths) == ['0']  # stages 1, 2 feed the neck
    assert net.widths['0'].choices == [16, 8]
    outs = net(torch.rand(2, 3, 32, 32))
    assert [o.shape[1] for o in outs
            ] == [16, 24] == [net.out_channels[i] for i in (1, 2)]


def test_fixed_subnet_builds_the_static_backbone():
    net = SearchableMobileNetV2(**TINY_MBV2)
    subnet = sample_subnet(net, random.Random(2))
    static = SearchableMobileNetV2(**TINY_MBV2, fixed_subnet=subnet)
    assert named_mutables(static) == {}
    static.load_state_dict(export_static(net).state_dict(), strict=True)


def test_weights_inherit_back_into_sliced_blocks():
    """inherit_weights writes a static model's weights into the supernet's
    slices (kernel crops, expansion and width channels)."""
    torch.manual_seed(0)
    net = SearchableMobileNetV2(**TINY_MBV2).eval()
    subnet = sample_subnet(net, random.Random(4))
    static = export_static(net).eval()
    with torch.no_grad():
        for p in static.parameters():
            p.add_(0.05 * torch.randn_like(p))
    inherit_weights(net, static.state_dict(), subnet, strict=True)
    set_subnet(net, subnet)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        for a, b in zip(net(x), static(x), strict=True):
            assert (a - b).abs().max().item() <= 1e-5


def test_nasfcos_cells_assemble_unused_outputs_and_need_single_path():
    neck = NASFCOSSearchFPN([8, 16, 32], 16, num_outs=5, num_cells=3)
    inputs = [torch.rand(2, c, s, s) for c, s in ((8, 16), (16, 8), (32, 4))]
    # cell 0 reads inputs 0, 1; cell 1 reads cell 0 (index 3); cell 2 reads
    # input 2 twice: cells 1 and 2 are unused
    set_subnet(
        neck, {
            'cells.0.input1': 0,
            'cells.0.input2': 1,
            'cells.1.input1': 3,
            'cells.1.input2': 3,
            'cells.2.input1': 2,
            'cells.2.input2': 2,
        },
        strict=False)
    assert neck._unused_cells() == [4, 5]
    outs = neck(inputs)
    assert [o.shape[-1] for o in outs] == [16, 8, 4, 2, 1]
    assert all(o.shape[1] == 16 for o in outs)
    set_mode(neck, 'differentiable')
    with pytest.raises(ValueError, match='fixed or sampled mode'):
        neck(inputs)
    with pytest.raises(ValueError, match='num_outs=2 is below'):
        NASFCOSSearchFPN([8, 16, 32], 16, num_outs=2)


def test_export_config_errors():
    cfg = Config(
        dict(
            model=dict(
                type='FCOS',
                backbone=dict(type='ResNet', depth=18),
                neck=dict(
                    type='mmnas_tricks.SearchableFPN',
                    in_channels=[8],
                    out_channels=8,
                    num_outs=1))))
    out = export_config(cfg, {'neck.fpn_convs.0': 'sep_conv_3x3'})
    assert out.model.neck.fixed_subnet == {'fpn_convs.0': 'sep_conv_3x3'}
    assert 'fixed_subnet' not in cfg.model.neck  # the input is not changed
    with pytest.raises(
            SubnetError, match=r'outside every searchable .*'
            r'backbone.layer1'):
        export_config(cfg, {'backbone.layer1': 'x'})
    cfg.model.neck.type = 'FPN'
    with pytest.raises(SubnetError, match='no searchable component'):
        export_config(cfg, {})


def test_shufflenet_stages_end_at_detection_strides():
    """DetNAS / SPOS: a stride-2 stem conv, then four stride-2 stages: C2-C5
    at strides 4, 8, 16, 32 as mmdet's FPN necks and anchors expect."""
    net = SearchableShuffleNetV2(
        stage_blocks=(1, 1, 1, 1), stage_channels=(8, 16, 32, 64))
    net.eval()
    outs = net(torch.rand(1, 3, 128, 128))
    assert [128 // o.shape[-1] for o in outs] == [4, 8, 16, 32]
    assert [o.shape[1] for o in outs] == [8, 16, 32, 64]
