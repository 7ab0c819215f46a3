"""Elastic width: the layers driven by a ChannelChoice (conv, BatchNorm,
GroupNorm with its group size kept, ResNet blocks) compute what their static
export computes at every width, BN statistics calibrate as the exported
subnet's would (in a ResNet of elastic stages too; its export and mmdet's
ResNet-18 weights: test_searchable_resnet.py), and an FPN reads the widths
of the backbone before it."""
import itertools
import random

import pytest
import torch
import torch.nn as nn

from mmnas_tricks.models.backbones import SearchableResNet
from mmnas_tricks.models.mutables import (ChannelChoice, ElasticBatchNorm2d,
                                          ElasticConv2d, ElasticGroupNorm,
                                          export_static, input_channels,
                                          link_widths, sample_subnet,
                                          set_subnet)
from mmnas_tricks.models.mutables.elastic import sliced_norm
from mmnas_tricks.models.necks import searchable_fpn
from mmnas_tricks.testing import trained_looking


def test_elastic_layers_compute_what_their_export_computes():
    w_in, w_out = ChannelChoice([6, 3]), ChannelChoice([8, 4, 6])
    conv = ElasticConv2d(6, 8, 3, padding=1, bias=True)
    conv.set_width_sources(in_width=w_in, out_width=w_out)
    bn = trained_looking(ElasticBatchNorm2d(8)).eval()
    bn.set_width_sources(out_width=w_out)
    gn = trained_looking(ElasticGroupNorm(4, 8))  # 2 channels per group
    gn.set_width_sources(out_width=w_out)
    for c_in, c_out in itertools.product(w_in.choices, w_out.choices):
        w_in.current_choice, w_out.current_choice = c_in, c_out
        x = torch.rand(2, c_in, 5, 5)
        y = conv(x)
        assert y.shape == (2, c_out, 5, 5)
        for layer, plain in ((conv, nn.Conv2d), (bn, nn.BatchNorm2d),
                             (gn, nn.GroupNorm)):
            static = layer.export_module()
            assert type(static) is plain
            inp = x if layer is conv else y
            assert torch.allclose(static(inp), layer(inp), atol=1e-6)
        assert conv.export_module().weight.shape == (c_out, c_in, 3, 3)
        assert gn.export_module().num_groups == c_out // 2
    with pytest.raises(ValueError, match='expected 3 input channels'):
        conv(torch.rand(1, 6, 5, 5))


def test_widths_are_checked_against_the_layers():
    gn = ElasticGroupNorm(4, 8)
    with pytest.raises(ValueError, match=r'\[5\].*multiples of 2'):
        gn.set_width_sources(out_width=ChannelChoice([8, 5]))
    conv = ElasticConv2d(6, 8, 3)
    with pytest.raises(ValueError, match='top out'):
        conv.set_width_sources(out_width=ChannelChoice([16, 8]))
    with pytest.raises(TypeError, match='ChannelChoice'):
        conv.set_width_sources(in_width=6)


def test_sliced_batchnorm_calibrates_as_the_exported_norm():
    """BN calibration (reset, momentum None: the cumulative average) on a
    slice gives the statistics the exported subnet's own BN gets."""
    bn = nn.BatchNorm2d(8)
    plain = nn.BatchNorm2d(4)
    for norm in (bn, plain):
        norm.reset_running_stats()
        norm.momentum = None
        norm.train()
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        x = torch.randn(4, 4, 3, 3, generator=g) * 3 + 1
        sliced_norm(x, bn, 4)
        plain(x)
    assert int(bn.num_batches_tracked) == 3
    assert torch.allclose(bn.running_mean[:4], plain.running_mean)
    assert torch.allclose(bn.running_var[:4], plain.running_var)
    assert torch.equal(bn.running_mean[4:], torch.zeros(4))


@pytest.mark.parametrize('seed', [0, 1])
def test_resnet_stages_calibrate_as_the_exported_backbone(seed):
    """Output equality of the export: test_searchable_resnet.py."""
    torch.manual_seed(seed)
    supernet = trained_looking(
        SearchableResNet(base_channels=8, width_ratios=(1.0, 0.5, 1.5)), seed)
    assert supernet.out_channels == [12, 24, 48, 96]
    subnet = sample_subnet(supernet, random.Random(seed))
    static = export_static(supernet)
    widths = [subnet[f'widths.{i}'] for i in range(4)]
    assert static.conv1.weight.shape[0] == widths[0]  # the stem follows
    assert type(static.conv1) is nn.Conv2d
    assert type(static.bn1) is nn.BatchNorm2d
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert [t.shape[1] for t in static.eval()(x)] == widths[1:]
    # the widths inside the backbone are calibrated like the static model
    for model in (supernet, static):
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.reset_running_stats()
                m.momentum = None
        model.train()
        with torch.no_grad():
            model(x)
        model.eval()
    with torch.no_grad():
        for a, b in zip(static(x), supernet(x), strict=True):
            assert torch.allclose(a, b, atol=1e-4)


def test_fpn_follows_the_backbone_widths():
    backbone = SearchableResNet(
        base_channels=8, width_ratios=(1.0, 0.5), out_indices=(1, 2, 3))
    fpn = searchable_fpn(
        in_channels=backbone.out_channels[1:],
        out_channels=16,
        num_outs=3,
        widths=[16, 8],
        output_ops=[(3, 1)],
        lateral_ops=[(1, 1)])
    model = nn.Module()
    model.backbone, model.neck = backbone, fpn
    link_widths(model)
    set_subnet(
        backbone,
        {**{f'widths.{i}': c
            for i, c in enumerate([4, 16, 16, 32])}},
        strict=False)
    fpn.width.current_choice = 8
    assert input_channels(model) == dict(neck=[16, 16, 32])
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        feats = fpn(backbone(x))
    assert [f.shape[1] for f in feats] == [8, 8, 8]
    static = export_static(model)
    assert [c.conv.in_channels for c in static.neck.lateral_convs] == \
        [16, 16, 32]
    # the FPN must be built for the backbone's largest widths
    small = searchable_fpn(
        in_channels=[16, 32, 32],
        out_channels=16,
        num_outs=3,
        widths=[16, 8],
        output_ops=[(3, 1)],
        lateral_ops=[(1, 1)])
    model.neck = small
    with pytest.raises(ValueError, match=r'neck\.lateral_convs\.2.*32.*64'):
        link_widths(model)
    with pytest.raises(ValueError, match='top out at out_channels=16'):
        searchable_fpn(
            in_channels=[16, 32, 64],
            out_channels=16,
            num_outs=3,
            widths=[32, 16])
    with pytest.raises(ValueError, match='list of'):
        searchable_fpn(
            in_channels=[16, 32, 64],
            out_channels=16,
            num_outs=3,
            widths=[16, 8],
            output_ops=dict(conv3x3=dict(type='ConvOp')))


def test_head_widths_are_checked():
    from mmnas_tricks.models.heads import searchable_fcos_head
    kwargs = dict(
        num_classes=10,
        in_channels=32,
        feat_channels=32,
        stacked_convs=2,
        norm_cfg=dict(type='GN', num_groups=8))
    with pytest.raises(
            ValueError, match=r'head widths \[64, 32\].*feat_channels=32'):
        searchable_fcos_head(widths=[64, 32], tower_ops=[(3, 1)], **kwargs)
    with pytest.raises(ValueError, match='tower_ops as a list'):
        searchable_fcos_head(widths=[32, 16], **kwargs)
    head = searchable_fcos_head(widths=[32, 16], tower_ops=[(3, 1)], **kwargs)
    assert head.width.choices == [32, 16]
    assert isinstance(head.conv_cls, ElasticConv2d)
