"""mmseg's Semantic FPN decode head with an op choice per conv."""
from typing import Dict, Optional

from mmcv.cnn import ConvModule
from mmengine.registry import DefaultScope
from mmseg.models.decode_heads import FPNHead

from mmnas_tricks.registry import MODELS
from ..mutables import Subnet, conv_choices, fix_in_place

#: Candidates of each scale-head conv; ``conv3x3`` first = mmseg's head.
SEG_HEAD_OPS = dict(
    conv3x3=dict(type='ConvOp', kernel_size=3),
    sep_conv_3x3=dict(type='SepConv', kernel_size=3),
    sep_conv_5x5=dict(type='SepConv', kernel_size=5),
    dil_conv_3x3=dict(type='ConvOp', kernel_size=3, dilation=2),
    sep_conv_3x3_dil3=dict(type='SepConv', kernel_size=3, dilation=3),
    conv1x1=dict(type='ConvOp', kernel_size=1))


@MODELS.register_module(name='SearchableSemFPNHead')
def searchable_sem_fpn_head(ops: Optional[Dict[str, dict]] = None,
                            fixed_subnet: Optional[Subnet] = None,
                            **kwargs) -> FPNHead:
    """An ``mmseg.FPNHead`` (Semantic FPN, Kirillov et al., CVPR 2019) in
    which every conv of every per-level scale head is an op choice of
    ``ops`` with the head's norm and activation: per-level op choices for
    segmentation. Losses, sampling and inference stay mmseg's (the returned
    object is an ``FPNHead``). Mutable names: ``scale_heads.{level}.{k}``.
    The default subnet (``conv3x3`` everywhere) is mmseg's head.

    Args:
        ops (dict, optional): Candidate name -> op config. Defaults to None
            (:data:`SEG_HEAD_OPS`).
        fixed_subnet (dict, optional): Build the static head of this subnet.
            Defaults to None.
        **kwargs: ``FPNHead`` arguments.
    """
    with DefaultScope.overwrite_default_scope('mmseg'):
        head = FPNHead(**kwargs)
    names = [
        name for name, m in head.scale_heads.named_modules()
        if isinstance(m, ConvModule)
    ]
    conv_choices(head, [f'scale_heads.{n}' for n in names],
                 SEG_HEAD_OPS if ops is None else ops)
    if fixed_subnet is not None:
        fix_in_place(head, fixed_subnet)
    return head
