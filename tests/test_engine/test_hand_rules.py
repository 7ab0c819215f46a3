"""The hand rules (width, input size, depth and their compound grid) and the
Pareto front the search is compared with."""
import os.path as osp

import pytest
import torch

from mmnas_tricks.engine.hand_rules import (HandRule, best_at, grid,
                                            pareto_front, parse_rule,
                                            scale_config)
from mmnas_tricks.testing import config_dir
from mmnas_tricks.utils import build_model, load_config

DET = osp.join(config_dir(), 'baselines',
               'fcos_r18w16_fpn_gn-head_12e_digits.py')
SEG = osp.join(config_dir(), 'baselines', 'fpn_r18w16_12e_digits-seg.py')


def test_names_round_trip_and_bad_names_are_refused():
    for rule in (HandRule(), HandRule(0.625), HandRule(1.0, 192),
                 HandRule(0.75, 160), HandRule(1.0, 96,
                                               1), HandRule(0.5, None, 1)):
        assert parse_rule(rule.name) == rule
    assert parse_rule('width_x0.5') == HandRule(0.5)
    assert parse_rule('res128', base_size=128) == HandRule()
    assert HandRule(0.75, 160).name == 'width_x0.75_res160'
    assert 'input 160 px' in HandRule(0.75, 160).describe()
    for bad in ('depth_x2', 'width_x', 'res', 'wide', 'width_x0_res96'):
        with pytest.raises(KeyError, match=repr(bad)):
            parse_rule(bad)


def test_grid_is_every_width_with_every_size_and_depth_at_base_width():
    rules = grid(widths=(0.5, 1.0), sizes=(96, 128), depths=(2, 1))
    assert rules == [
        HandRule(0.5, 96),
        HandRule(0.5, None),
        HandRule(1.0, 96),
        HandRule(1.0, None),
        HandRule(1.0, 96, 1),
        HandRule(1.0, None, 1)
    ]
    # the default grid: 5 widths x 5 sizes + 5 sizes at depth 1
    assert len(grid()) == 30


def _channels(model):
    return dict(
        stem=model.backbone.conv1.out_channels,
        stage3=model.backbone.layer4[0].conv1.out_channels,
        neck=model.neck.fpn_convs[0].conv.out_channels,
        tower=model.bbox_head.cls_convs[0].conv.out_channels,
        groups=model.bbox_head.cls_convs[0].gn.num_groups)


def test_width_scales_every_part_and_gn_keeps_its_group_size():
    base = load_config(DET)
    assert _channels(build_model(base)) == dict(
        stem=16, stage3=128, neck=64, tower=64, groups=16)
    for r, want in ((0.625,
                     dict(stem=10, stage3=80, neck=40, tower=40, groups=10)),
                    (0.875,
                     dict(stem=14, stage3=112, neck=56, tower=56, groups=14))):
        cfg = scale_config(base, HandRule(r))
        assert _channels(build_model(cfg)) == want
    # the copy: the base config is unchanged
    assert base.model.neck.out_channels == 64


def test_size_sets_every_resize_and_pads_no_further_than_needed():
    from mmnas_tricks.models.resources import input_size
    base = load_config(DET)
    cfg = scale_config(base, HandRule(1.0, 192))
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        scales = [
            s.scale for s in cfg[key].dataset.pipeline if s.type == 'Resize'
        ]
        assert scales == [(192, 192)], key
    assert cfg.model.data_preprocessor.pad_size_divisor == 32
    assert input_size(cfg).shape == (3, 192, 192)
    # 144 = 9 x 16: padded to 144, not to 160
    cfg = scale_config(base, HandRule(1.0, 144))
    assert cfg.model.data_preprocessor.pad_size_divisor == 16
    assert input_size(cfg).shape == (3, 144, 144)
    model = build_model(cfg).eval()
    with torch.no_grad():
        feats = model.extract_feat(torch.rand(1, 3, 144, 144))
    assert [f.shape[-1] for f in feats] == [18, 9, 5]


def test_depth_one_is_a_static_resnet_of_one_block_per_stage():
    from mmnas_tricks.models.mutables import named_mutables
    base = load_config(DET)
    cfg = scale_config(base, HandRule(0.5, None, 1))
    model = build_model(cfg)
    assert not named_mutables(model)
    assert [len(getattr(model.backbone, f'layer{i}'))
            for i in range(1, 5)] == [1, 1, 1, 1]
    assert model.backbone.conv1.out_channels == 8
    x = torch.rand(1, 3, 128, 128)
    full = build_model(base).backbone
    assert [f.shape[1:] for f in model.backbone(x)] == [
        (c // 2, *f.shape[2:]) for c, f in zip((32, 64, 128), full(x))
    ]
    with pytest.raises(ValueError, match='ResNet-18'):
        bad = load_config(DET)
        bad.model.backbone.depth = 50
        scale_config(bad, HandRule(1.0, None, 1), where='x.py')


def test_segmentor_scales_its_stem_head_and_preprocessor_size():
    base = load_config(SEG)
    cfg = scale_config(base, HandRule(0.5, 160))
    assert cfg.model.backbone.stem_channels == 8
    assert cfg.model.backbone.base_channels == 8
    assert cfg.model.neck.in_channels == [8, 16, 32, 64]
    assert cfg.model.decode_head.in_channels == [32] * 4
    assert cfg.model.decode_head.channels == 32
    assert tuple(cfg.model.data_preprocessor.size) == (160, 160)
    model = build_model(cfg).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 160, 160), mode='tensor')
    assert out.shape[1] == 11
    deep = build_model(scale_config(base, HandRule(1.0, None, 1)))
    assert len(deep.backbone.stem) == 9  # three conv, BN, ReLU: V1c's stem


def test_pareto_front_and_best_at():
    points = [
        dict(model='a', gflops=1.0, mean=0.70),
        dict(model='b', gflops=2.0, mean=0.65),  # dominated by a
        dict(model='c', gflops=2.0, mean=0.75),
        dict(model='d', gflops=3.0, mean=0.80),
        dict(model='e', gflops=0.5, mean=0.60),
    ]
    assert [p['model'] for p in pareto_front(points)] == ['e', 'a', 'c', 'd']
    assert best_at(points, 2.5)['model'] == 'c'
    assert best_at(points, 0.4) is None
