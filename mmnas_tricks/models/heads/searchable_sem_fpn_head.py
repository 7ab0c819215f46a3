"""mmseg's Semantic FPN decode head with an op choice per conv."""
from typing import Dict, Optional, Sequence, Union

from mmcv.cnn import ConvModule
from mmengine.registry import DefaultScope
from mmseg.models.decode_heads import FPNHead

from mmnas_tricks.registry import MODELS
from ..contract import searchable
from ..mutables import (ConvShapeChoice, Subnet, conv_choices, elastic_conv,
                        fix_in_place)
from ..mutables.elastic import width_choice

#: Candidates of each scale-head conv; ``conv3x3`` first = mmseg's head.
SEG_HEAD_OPS = dict(
    conv3x3=dict(type='ConvOp', kernel_size=3),
    sep_conv_3x3=dict(type='SepConv', kernel_size=3),
    sep_conv_5x5=dict(type='SepConv', kernel_size=5),
    dil_conv_3x3=dict(type='ConvOp', kernel_size=3, dilation=2),
    sep_conv_3x3_dil3=dict(type='SepConv', kernel_size=3, dilation=3),
    conv1x1=dict(type='ConvOp', kernel_size=1))


@MODELS.register_module(name='SearchableSemFPNHead')
@searchable
def searchable_sem_fpn_head(ops: Optional[Union[Dict[str, dict],
                                                Sequence]] = None,
                            widths: Optional[Sequence[int]] = None,
                            fixed_subnet: Optional[Subnet] = None,
                            **kwargs) -> FPNHead:
    """An ``mmseg.FPNHead`` (Semantic FPN, Kirillov et al., CVPR 2019) in
    which every conv of every per-level scale head is an op choice of
    ``ops`` with the head's norm and activation: per-level op choices for
    segmentation. Losses, sampling and inference stay mmseg's (the returned
    object is an ``FPNHead``). Mutable names: ``scale_heads.{level}.{k}``.
    The default subnet (``conv3x3`` everywhere) is mmseg's head.

    With ``widths`` the head's ``channels`` are a choice too (``width``,
    every scale-head conv and the classifier's input; ``channels`` must be
    the largest) and the weights are shared: each conv is a
    :class:`~mmnas_tricks.models.mutables.ConvShapeChoice` over ``ops``
    given as ``(kernel_size, dilation)`` pairs (default ``[(3, 1)]``: the
    width alone), its BN sliced; the first conv of each scale head reads
    the neck's width.

    Args:
        ops (dict | Sequence, optional): Candidate name -> op config, or
            with ``widths`` a list of ``(kernel_size, dilation)`` pairs.
            Defaults to None (:data:`SEG_HEAD_OPS`; with ``widths``
            ``[(3, 1)]``).
        widths (Sequence[int], optional): Width choices of ``channels``.
            Defaults to None (fixed).
        fixed_subnet (dict, optional): Build the static head of this subnet.
            Defaults to None.
        **kwargs: ``FPNHead`` arguments.
    """
    with DefaultScope.overwrite_default_scope('mmseg'):
        head = FPNHead(**kwargs)
    if widths is not None:
        _make_width(head, [(3, 1)] if ops is None else ops, widths)
    else:
        names = [
            name for name, m in head.scale_heads.named_modules()
            if isinstance(m, ConvModule)
        ]
        conv_choices(head, [f'scale_heads.{n}' for n in names],
                     SEG_HEAD_OPS if ops is None else ops)
    if fixed_subnet is not None:
        fix_in_place(head, fixed_subnet)
    return head


def _make_width(head: FPNHead, shapes: Sequence,
                widths: Sequence[int]) -> None:
    """``head.width`` over ``channels``: every scale-head ConvModule becomes a
    weight-sharing conv-shape choice of ``shapes`` at that width (the first
    of each scale head reading neck output ``in_index[i]``), the classifier
    an elastic conv reading it."""
    if not isinstance(shapes, (list, tuple)):
        raise ValueError('a SemFPN head with widths needs ops as a list of '
                         '(kernel_size, dilation) pairs (weight-sharing conv '
                         f'shapes), got the op dict {sorted(shapes)}')
    head.width = width_choice(widths, head.channels, 'SemFPN head', 'channels')
    in_index = head.in_index if isinstance(head.in_index, (list, tuple)) \
        else [head.in_index]
    for i, scale_head in enumerate(head.scale_heads):
        first = True
        for j, m in enumerate(scale_head):
            if not isinstance(m, ConvModule):
                continue
            layer = ConvShapeChoice(
                m.in_channels,
                m.out_channels, [tuple(c) for c in shapes],
                norm_cfg=head.norm_cfg,
                act_cfg=head.act_cfg)
            layer.set_width_sources(
                in_width=None if first else head.width, out_width=head.width)
            if first:
                layer.upstream_index = in_index[i]
            scale_head[j] = layer
            first = False
    head.conv_seg = elastic_conv(head.conv_seg)
    head.conv_seg.set_width_sources(in_width=head.width)
