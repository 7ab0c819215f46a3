"""NAS-FCOS's weight-sharing level (SearchableFCOSHead(share_level=True)):
tower layers below the chosen level hold one copy per FPN level, each
copy following the shared layer's op; at 0 the head is FCOS's, and mmdet's
FCOS head's weights inherit with its outputs; the export keeps the
per-level weights and loads strictly."""
import pytest
import torch
from mmdet.models.dense_heads import FCOSHead
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmnas_tricks.models import export_config
from mmnas_tricks.models.heads import NASFCOS_HEAD_OPS
from mmnas_tricks.models.inherit import inherit_plain
from mmnas_tricks.models.mutables import (named_mutables, set_mode, set_subnet,
                                          static_copy)
from mmnas_tricks.registry import MODELS

ARGS = dict(
    num_classes=3,
    in_channels=16,
    feat_channels=16,
    stacked_convs=3,
    strides=[8, 16, 32],
    norm_cfg=dict(type='GN', num_groups=4))
HEAD = dict(
    type='mmnas_tricks.SearchableFCOSHead',
    tower_ops={
        k: v
        for k, v in NASFCOS_HEAD_OPS.items() if k != 'def_conv_3x3'
    },
    share_level=True,
    **ARGS)


def _feats():
    g = torch.Generator().manual_seed(0)
    return [torch.rand(2, 16, s, s, generator=g) for s in (16, 8, 4)]


def _outputs(head, feats):
    with torch.no_grad():
        return [t for level in head(feats) for t in level]


def test_the_level_choice_splits_the_first_layers_per_level():
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmdet'):
        plain = FCOSHead(**ARGS).eval()
    head = MODELS.build(HEAD).eval()
    names = list(named_mutables(head))
    assert head.level_sharing.choices == [0, 1, 2, 3]
    assert sorted(names) == sorted(['level_sharing'] + [
        f'{t}.{i}.shared' for t in ('cls_convs', 'reg_convs') for i in range(3)
    ])
    first = {n: m.choices[0] for n, m in named_mutables(head).items()}
    # FCOS's head inherits strictly into level 0 and is reproduced
    report = inherit_plain(head, plain.state_dict(), first)
    assert report['unused'] == [] and not [
        r
        for r in report['left_at_init'] if r['why'] == 'not in the checkpoint'
    ]
    feats = _feats()
    expected = _outputs(plain, feats)
    set_subnet(head, first)
    for a, b in zip(expected, _outputs(head, feats), strict=True):
        assert (a - b).abs().max().item() <= 1e-5
    static0, _ = static_copy(head, first)
    assert sum(p.numel() for p in static0.parameters()) == \
        sum(p.numel() for p in plain.parameters())

    # the levels' copies took the inherited weights: at 2 it is the same
    # function, until one level's copy changes, which moves that level only
    two = dict(first, level_sharing=2)
    set_subnet(head, two)
    for a, b in zip(expected, _outputs(head, feats), strict=True):
        assert (a - b).abs().max().item() <= 1e-5

    def perturb(layer):
        with torch.no_grad():
            weight = layer.candidates['conv3x3'].conv.weight
            weight.add_(torch.randn(weight.shape))

    perturb(head.cls_convs[1].per_level.levels[1])
    moved = _outputs(head, feats)
    # outputs: the class scores of levels 0-2, then boxes, then centerness;
    # the cls tower feeds the class scores and the centerness
    for level in range(3):
        for kind in (0, 2):
            i = 3 * kind + level
            change = (expected[i] - moved[i]).abs().max().item()
            assert change > 1e-3 if level == 1 else change == 0
        assert torch.equal(expected[3 + level], moved[3 + level])
    # a layer at or above the level is shared: its copies are not used
    perturb(head.cls_convs[2].per_level.levels[0])
    for a, b in zip(moved, _outputs(head, feats), strict=True):
        assert torch.equal(a, b)

    # one op decision: the copies follow the shared layer's op
    set_subnet(head, dict(two, **{'cls_convs.0.shared': 'conv1x1'}))
    assert all(c.current_choice == 'conv1x1'
               for c in head.cls_convs[0].per_level.levels)
    subnet = dict(two, **{'cls_convs.0.shared': 'conv1x1'})
    set_subnet(head, subnet)
    want = _outputs(head, feats)

    # the export: per-level copies for layers 0, 1, one layer 2; outputs
    # equal; the exported config builds it and loads it strictly
    static, _ = static_copy(head, subnet)
    per_tower_layer = sum(p.numel() for p in static.cls_convs[2].parameters())
    assert sum(p.numel() for p in static.parameters()) > \
        sum(p.numel() for p in plain.parameters()) + per_tower_layer
    assert len(static.cls_convs[0].levels) == 3
    for a, b in zip(want, _outputs(static.eval(), feats), strict=True):
        assert (a - b).abs().max().item() <= 1e-5
    cfg = export_config(
        Config(dict(model=dict(bbox_head=HEAD))),
        {f'bbox_head.{k}': v
         for k, v in subnet.items()})
    rebuilt = MODELS.build(cfg.model.bbox_head).eval()
    rebuilt.load_state_dict(static.state_dict(), strict=True)
    for a, b in zip(want, _outputs(rebuilt, feats), strict=True):
        assert (a - b).abs().max().item() <= 1e-5

    set_mode(head, 'differentiable')
    with pytest.raises(ValueError, match='fixed or sampled mode'):
        head(feats)
    with pytest.raises(ValueError, match='fixed depth'):
        MODELS.build(dict(HEAD, tower_depths=(3, 2)))


def test_with_one_op_sequence_for_both_towers():
    """NAS-FCOS's head space: one op sequence for both towers and the
    weight-sharing level, 6 layers: 6^6 x 7 subnets; every copy of a
    regression layer follows the classification layer's op."""
    from mmnas_tricks.models.mutables import space_size
    head = MODELS.build(
        dict(
            HEAD,
            stacked_convs=6,
            tower_ops=NASFCOS_HEAD_OPS,
            share_tower_ops=True))
    assert space_size(head) == 6**6 * 7
    set_subnet(
        head, {
            'level_sharing': 6,
            **{f'cls_convs.{i}.shared': 'conv1x1'
               for i in range(6)}
        })
    for tower in (head.cls_convs, head.reg_convs):
        for layer in tower:
            assert all(c.current_choice == 'conv1x1'
                       for c in layer.per_level.levels)
    assert len(_outputs(head.eval(), _feats())) == 9
