"""mmdet's NAS-FCOS (``NASFCOS_FPN`` + ``NASFCOSHead``) is a subnet of our
NAS-FCOS neck / head space: fixed to the published architecture, the neck
and head have mmdet's parameter counts, mmdet's weights inherit strictly
(nothing unused, nothing left at init), the outputs are equal on the same
weights, and the exported config loads mmdet's state dict strictly."""
import copy
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS as DET_MODELS
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.utils import get_installed_path

from mmnas_tricks.models.export import export_config
from mmnas_tricks.models.heads import NASFCOS_HEAD_OPS
from mmnas_tricks.models.inherit import inherit_plain
from mmnas_tricks.models.mutables import set_subnet, static_copy
from mmnas_tricks.models.necks import NASFCOSSearchFPN
from mmnas_tricks.models.necks.nasfcos_search_fpn import mmdet_cell_names
from mmnas_tricks.structures import read_subnet_file

C = 32
IN_CHANNELS = [8, 16, 32, 64]  # ResNet-18 at base width 8: C2-C5
HEAD = dict(
    num_classes=3,
    in_channels=C,
    feat_channels=C,
    strides=[8, 16, 32, 64, 128],
    norm_cfg=dict(type='GN', num_groups=8),
    loss_cls=dict(
        type='FocalLoss',
        use_sigmoid=True,
        gamma=2.0,
        alpha=0.25,
        loss_weight=1.0),
    loss_bbox=dict(type='IoULoss', loss_weight=1.0),
    loss_centerness=dict(
        type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0))
#: the head of mmdet's NASFCOSHead: dconv3x3, conv3x3, dconv3x3, conv1x1
HEAD_OPS = ['def_conv_3x3', 'conv3x3', 'def_conv_3x3', 'conv1x1']


def _detectors():
    """mmdet's NAS-FCOS detector (its COCO config's neck and head, small)
    and ours (our neck / head space in place of them)."""
    mmdet = dict(
        type='NASFCOS',
        data_preprocessor=dict(
            type='DetDataPreprocessor',
            mean=[0, 0, 0],
            std=[1, 1, 1],
            pad_size_divisor=32),
        backbone=dict(
            type='ResNet',
            depth=18,
            base_channels=8,
            out_indices=(0, 1, 2, 3),
            norm_cfg=dict(type='BN')),
        neck=dict(
            type='NASFCOS_FPN',
            in_channels=IN_CHANNELS,
            out_channels=C,
            start_level=1,
            add_extra_convs=True,
            num_outs=5,
            norm_cfg=dict(type='BN'),
            conv_cfg=dict(type='DCNv2', deform_groups=2)),
        bbox_head=dict(type='NASFCOSHead', **HEAD))
    ours = copy.deepcopy(mmdet)
    ours['neck'] = dict(
        type='mmnas_tricks.NASFCOSSearchFPN',
        in_channels=IN_CHANNELS,
        out_channels=C,
        start_level=1,
        num_outs=5,
        num_cells=7)
    ours['bbox_head'] = dict(
        type='mmnas_tricks.SearchableFCOSHead',
        tower_ops=NASFCOS_HEAD_OPS,
        **HEAD)
    return mmdet, ours


PUBLISHED = 'configs/nas/subnets/nasfcos_published.yaml'


def _published(repo_root) -> dict:
    subnet = read_subnet_file(f'{repo_root}/{PUBLISHED}')[0]
    for tower in ('cls_convs', 'reg_convs'):  # the head as NASFCOSHead's
        assert [subnet[f'bbox_head.{tower}.{i}'] for i in range(4)] == HEAD_OPS
    return subnet


def _trained_like(model) -> None:
    """Weights no initialisation gives (BN statistics, offsets), so that
    equal outputs mean equal functions."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.rand(m.num_features, generator=g))
                m.running_var.copy_(0.5 +
                                    torch.rand(m.num_features, generator=g))
                m.weight.copy_(0.5 + torch.rand(m.num_features, generator=g))
            if hasattr(m, 'conv_offset'):
                for p in m.conv_offset.parameters():
                    p.copy_(0.05 * torch.randn(p.shape, generator=g))


def _params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def _outputs(model, x):
    with torch.no_grad():
        feats = model.neck(model.backbone(x))
        return list(feats) + [
            t for level in model.bbox_head(feats) for t in level
        ]


def test_mmdet_cell_names():
    pairs = [(2, 2), (2, 2), (3, 2), (0, 2), (4, 2), (3, 6), (6, 1)]
    assert mmdet_cell_names(pairs) == [
        'c22_1', 'c22_2', 'c32', 'c02', 'c42', 'c36', 'c61'
    ]


@pytest.mark.heavy
def test_published_subnet_equals_mmdet_nasfcos(repo_root):
    torch.manual_seed(0)
    mmdet_cfg, ours_cfg = _detectors()
    with DefaultScope.overwrite_default_scope('mmdet'):
        mmdet = DET_MODELS.build(mmdet_cfg)
        supernet = DET_MODELS.build(ours_cfg)
    mmdet.init_weights()
    _trained_like(mmdet)
    subnet = _published(repo_root)
    static, _ = static_copy(supernet, subnet)
    # the same architecture: equal parameter counts, neck and head
    assert _params(static.neck) == _params(mmdet.neck)
    assert _params(static.bbox_head) == _params(mmdet.bbox_head)

    # mmdet's weights inherit strictly into the supernet's published subnet
    report = inherit_plain(supernet, mmdet.state_dict(), subnet)
    assert report['unused'] == []
    assert [
        r for r in report['left_at_init']
        if r['why'] == 'not in the checkpoint'
    ] == []
    assert len(report['loaded']) == len(mmdet.state_dict())

    x = torch.rand(2, 3, 96, 128)
    mmdet.eval()
    supernet.eval()
    set_subnet(supernet, subnet)
    expected = _outputs(mmdet, x)
    got = _outputs(supernet, x)
    assert len(got) == len(expected) == 5 + 3 * 5
    for a, b in zip(expected, got, strict=True):
        assert a.shape == b.shape
        assert (a - b).abs().max().item() <= 1e-5

    # the exported config builds the static detector, which loads mmdet's
    # state dict strictly (its keys renamed on loading) with equal outputs
    exported = export_config(Config(dict(model=ours_cfg)), subnet)
    with DefaultScope.overwrite_default_scope('mmdet'):
        plain = DET_MODELS.build(exported.model)
    plain.load_state_dict(mmdet.state_dict(), strict=True)
    plain.eval()
    for a, b in zip(expected, _outputs(plain, x), strict=True):
        assert (a - b).abs().max().item() <= 1e-5


def test_earlier_choices_remain_as_options():
    """The space's earlier construction, as options: every unused cell
    output added into each mapped backbone level with a 3x3 conv per level,
    bilinear cells, no ReLU before P7, a biased concat 1x1 and a
    deformable conv of one offset group without bias."""
    ops = dict(
        def_conv_3x3=dict(type='DeformConvOp'),
        skip_connect=dict(type='Identity'))
    aggregations = dict(
        cat=dict(type='ConcatReduce', bias=True, upsample_mode='bilinear'))
    old = NASFCOSSearchFPN([8, 16, 32],
                           16,
                           num_outs=5,
                           num_cells=3,
                           ops=ops,
                           aggregations=aggregations,
                           output_rule='sum_unused',
                           output_convs=True,
                           extra_relu=False)
    new = NASFCOSSearchFPN([8, 16, 32],
                           16,
                           num_outs=5,
                           num_cells=3,
                           ops=ops,
                           aggregations=dict(cat=dict(type='ConcatReduce')))
    assert len(old.fpn_convs) == 3 and new.fpn_convs is None
    assert old.cells[0].agg.candidates['cat'].out_conv.conv.bias is not None
    assert new.cells[0].agg.candidates['cat'].out_conv.conv.bias is None
    assert old.cells[0].op1.candidates['def_conv_3x3'].conv.deform_groups == 1
    assert old.cells[0].op1.candidates['def_conv_3x3'].conv.bias is None
    assert old.extra_convs[1].with_activation is False
    assert new.extra_convs[1].with_activation is True
    assert new.extra_convs[0].with_activation is False
    inputs = [torch.rand(2, c, s, s) for c, s in ((8, 16), (16, 8), (32, 4))]
    for neck in (old, new):
        set_subnet(
            neck, {f'cells.{i}.input{j}': 0
                   for i in range(3) for j in (1, 2)},
            strict=False)
        outs = neck(inputs)
        assert [o.shape[-1] for o in outs] == [16, 8, 4, 2, 1]
    with pytest.raises(
            ValueError, match="output_rule='nasfcos' takes the "
            'last 3 cells'):
        NASFCOSSearchFPN([8, 16, 32], 16, num_outs=5, num_cells=2)
    with pytest.raises(
            ValueError,
            match=r"output_rule='x'; valid: "
            r"\['nasfcos', 'sum_unused'\]"):
        NASFCOSSearchFPN([8, 16, 32], 16, num_outs=5, output_rule='x')
    with pytest.raises(ValueError, match=r"upsample_mode='area'"):
        NASFCOSSearchFPN([8, 16, 32], 16, num_outs=5, upsample_mode='area')


@pytest.mark.heavy
def test_coco_config_holds_mmdet_nasfcos(repo_root):
    """The COCO supernet config that starts from mmdet's released NAS-FCOS:
    its published subnet has the neck and head of mmdet's NAS-FCOS config,
    parameter for parameter, and its inheritance hook names that subnet."""
    from mmnas_tricks.utils import build_model, load_config
    cfg = load_config(f'{repo_root}/configs/supernets/'
                      'nasfcos_r50-caffe_fpn-cells-search_nashead-search_'
                      '1x_coco.py')
    mmdet_cfg = Config.fromfile(
        osp.join(
            get_installed_path('mmdet'), '.mim', 'configs', 'nas_fcos',
            'nas-fcos_r50-caffe_fpn_nashead-gn-head_4xb4-1x_coco.py'))
    for c in (cfg, mmdet_cfg):
        c.model.backbone.init_cfg = None  # nothing downloaded
    supernet, mmdet = build_model(cfg), build_model(mmdet_cfg)
    hook = [h for h in cfg.custom_hooks if 'InheritWeightsHook' in h.type]
    assert hook[0].subnet == PUBLISHED
    static, _ = static_copy(supernet, _published(repo_root))
    assert _params(static.neck) == _params(mmdet.neck)
    assert _params(static.bbox_head) == _params(mmdet.bbox_head)

    # the head's keys are mmdet's; the neck's are renamed on loading
    def outside_neck(model):
        return {k for k in model.state_dict() if not k.startswith('neck.')}

    assert outside_neck(static) == outside_neck(mmdet)
    static.load_state_dict(mmdet.state_dict(), strict=True)


def test_nasfcos_rule_takes_the_last_unread_cells_as_levels():
    """NAS-FCOS's output rule: the last unread cell outputs, newest first,
    are P3-P5, the other unread ones are added into each; a code with too
    few unread outputs (which NAS-FCOS rejects) is made up by the newest
    read cells."""
    neck = NASFCOSSearchFPN([8, 16, 32], 16, num_outs=3, num_cells=5)

    def code(pairs):
        set_subnet(
            neck, {
                f'cells.{i}.input{j + 1}': pair[j]
                for i, pair in enumerate(pairs) for j in (0, 1)
            },
            strict=False)

    # pool 3..7 = cells 0..4; cell 4 reads 3: unread 4, 5, 6, 7
    code([(0, 1), (0, 2), (1, 2), (2, 2), (3, 0)])
    assert neck._unused_cells() == [4, 5, 6, 7]
    assert neck._output_cells() == [7, 6, 5]
    # every cell read but the last: levels 7, then the newest read 6, 5
    code([(0, 1), (3, 2), (4, 1), (5, 0), (6, 2)])
    assert neck._unused_cells() == [7]
    assert neck._output_cells() == [7, 6, 5]
    inputs = [torch.rand(1, c, s, s) for c, s in ((8, 16), (16, 8), (32, 4))]
    assert [o.shape[-1] for o in neck(inputs)] == [16, 8, 4]
