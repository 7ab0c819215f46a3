"""Searchable cls / reg towers put into an mmdet dense head."""
from typing import Dict, Optional, Sequence, Union

import torch.nn as nn

from ..mutables import (ConvShapeChoice, DepthChoice, OpChoice, Subnet,
                        activation_choices, elastic_conv, fix_in_place,
                        named_mutables, with_norm_act)
from ..mutables.elastic import width_choice
from ..ops.candidates import DENSE_CONV_OPS
from .level_sharing import make_levels_separable

#: Tower candidates (each op -> head norm, GN by default -> ReLU); conv3x3
#: first, so the default subnet is the plain mmdet tower.
TOWER_OPS = DENSE_CONV_OPS

#: NAS-FCOS's six head ops (docs/search_spaces/dense_head_towers.md;
#: GroupNorm: docs/tricks.md, T3.5), conv3x3 first; the deformable conv as
#: mmdet's ``NASFCOSHead`` builds it (2 offset groups, a bias).
NASFCOS_HEAD_OPS = dict(
    conv3x3=dict(type='ConvOp', kernel_size=3),
    conv1x1=dict(type='ConvOp', kernel_size=1),
    sep_conv_3x3=dict(type='SepConv', kernel_size=3),
    sep_conv_3x3_dil3=dict(type='SepConv', kernel_size=3, dilation=3),
    skip_connect=dict(type='Identity'),
    def_conv_3x3=dict(type='DeformConvOp', deform_groups=2, bias=True))


def searchable_tower(in_channels: int,
                     feat_channels: int,
                     num_layers: int,
                     candidates: Dict[str, dict],
                     depths: Optional[Sequence[int]] = None,
                     norm_cfg: Optional[dict] = None,
                     act_cfg: Optional[dict] = dict(type='ReLU'),
                     conv_bias: Union[bool, str] = 'auto') -> nn.Module:
    """``num_layers`` op choices (the first from ``in_channels``), as a
    ``ModuleList`` or, with ``depths``, as a
    :class:`~mmnas_tricks.models.mutables.DepthChoice`; either iterates like
    mmdet's tower and names its layers ``0``, ``1``, …; candidates that
    take a ``bias`` get ``conv_bias`` (the head's). ``candidates`` is a dict
    name -> op config (an :class:`OpChoice` per layer) or a list of
    ``(kernel_size, dilation)`` pairs (a weight-sharing
    :class:`ConvShapeChoice` per layer)."""
    if isinstance(candidates, (list, tuple)):
        cfgs = [
            dict(
                type='ConvShapeChoice',
                choices=[tuple(c) for c in candidates],
                in_channels=in_channels if i == 0 else feat_channels,
                out_channels=feat_channels,
                norm_cfg=norm_cfg,
                act_cfg=act_cfg,
                bias=conv_bias) for i in range(num_layers)
        ]
        layer_cls = ConvShapeChoice
    else:
        candidates = with_norm_act(
            candidates, norm_cfg, act_cfg, bias=conv_bias)
        cfgs = [
            dict(
                type='OpChoice',
                candidates=candidates,
                in_channels=in_channels if i == 0 else feat_channels,
                out_channels=feat_channels) for i in range(num_layers)
        ]
        layer_cls = OpChoice
    if depths is None:
        return nn.ModuleList(
            layer_cls(**{k: v
                         for k, v in c.items() if k != 'type'}) for c in cfgs)
    return DepthChoice(cfgs, depths=depths)


def make_towers_searchable(head: nn.Module,
                           candidates: Optional[Dict[str, dict]],
                           depths: Optional[Sequence[int]],
                           fixed_subnet: Optional[Subnet],
                           widths: Optional[Sequence[int]] = None,
                           act_choices: Optional[Sequence[str]] = None,
                           share_tower_ops: bool = False,
                           share_level: bool = False) -> nn.Module:
    """Replace ``head.cls_convs`` and ``head.reg_convs`` (an mmdet dense
    head with ``stacked_convs`` ConvModules each) by searchable towers with
    the head's norm, make their width a choice (``widths``: ``head.width``,
    shared by both towers and read by the predictor convs after them) and
    each tower's activation (``act_choices``: one
    :class:`~mmnas_tricks.models.mutables.ActivationChoice` per tower,
    named by its first layer, ``cls_convs.0.layer.activate``); with
    ``share_tower_ops`` the regression tower repeats the classification
    tower's decisions (ops and depth; its own weights: NAS-FCOS's shared op
    sequence); with ``share_level`` the layer from which the towers'
    weights are shared by the FPN levels is a choice too (``level_sharing``,
    :mod:`~mmnas_tricks.models.heads.level_sharing`; the head must be a
    ``LevelFCOSHead``), then apply ``fixed_subnet`` (the exported form)."""
    if head.stacked_convs < 1:
        raise ValueError('a searchable tower needs stacked_convs >= 1, got '
                         f'{head.stacked_convs}')
    if getattr(head, 'dcn_on_last_conv', False):
        raise ValueError('dcn_on_last_conv is a fixed DCN layer; make '
                         'def_conv_3x3 a candidate instead')
    candidates = TOWER_OPS if candidates is None else candidates
    if widths is not None and not isinstance(candidates, (list, tuple)):
        raise ValueError('a head with widths needs tower_ops as a list of '
                         '(kernel_size, dilation) pairs (weight-sharing conv '
                         f'shapes), got the op dict {sorted(candidates)}')
    for tower in ('cls_convs', 'reg_convs'):
        setattr(
            head, tower,
            searchable_tower(
                head.in_channels,
                head.feat_channels,
                head.stacked_convs,
                candidates,
                depths,
                head.norm_cfg,
                conv_bias=getattr(head, 'conv_bias', 'auto')))
    if widths is not None:
        _make_width(head, widths)
    if share_tower_ops:
        reg = named_mutables(head.reg_convs)
        for name, mutable in named_mutables(head.cls_convs).items():
            reg[name].tie_to(mutable)
    if act_choices is not None:
        _make_activation(head, act_choices)
    if share_level:
        if widths is not None or act_choices is not None:
            raise ValueError(
                'share_level takes op-dict towers of fixed depth, '
                'without widths or act_choices')
        make_levels_separable(head)
    if fixed_subnet is not None:
        fix_in_place(head, fixed_subnet)
    return head


def _make_activation(head: nn.Module, choices: Sequence[str]) -> None:
    """One activation choice per tower, shared by its layers."""
    groups = {}
    for tower in ('cls_convs', 'reg_convs'):
        layers = [(n, m) for n, m in getattr(head, tower).named_modules()
                  if isinstance(m, (ConvShapeChoice, OpChoice))]
        if any(isinstance(m, OpChoice) for _, m in layers):
            raise ValueError('act_choices needs tower_ops as (kernel_size, '
                             'dilation) pairs (weight-sharing conv shapes, '
                             'one activation per layer); the op dict\'s '
                             'candidates each hold their own')
        groups[tower] = [f'{tower}.{n}.layer' for n, _ in layers]
    activation_choices(head, groups, choices)


def _make_width(head: nn.Module, widths: Sequence[int]) -> None:
    """``head.width`` over the towers' channels: the towers' first layers
    read the neck's width (``upstream_index`` 0: every level has the same
    channels), the predictor convs after the towers (every ``nn.Conv2d``
    child of the head reading ``feat_channels``) this width."""
    head.width = width_choice(widths, head.feat_channels, 'head',
                              'feat_channels')
    for tower in (head.cls_convs, head.reg_convs):
        layers = tower.blocks if isinstance(tower, DepthChoice) else tower
        for i, layer in enumerate(layers):
            layer.set_width_sources(
                in_width=None if i == 0 else head.width, out_width=head.width)
            if i == 0:
                layer.upstream_index = 0
    for name, child in list(head.named_children()):
        if type(child) is nn.Conv2d and \
                child.in_channels == head.feat_channels:
            conv = elastic_conv(child)
            conv.set_width_sources(in_width=head.width)
            setattr(head, name, conv)
