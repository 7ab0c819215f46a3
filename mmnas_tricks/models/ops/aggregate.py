"""The two aggregations of a NAS-FCOS FPN cell: weighted sum and concat."""
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule

from mmnas_tricks.registry import MODELS

#: How a cell brings its two inputs to the larger one's size.
UPSAMPLE_MODES = ('nearest', 'bilinear')


def resize_to_largest(inputs: Sequence[torch.Tensor],
                      mode: str = 'nearest') -> list:
    """Resize the maps to the largest spatial size among them, by ``mode``
    (``'nearest'``: as mmcv's merge cells upsample, which mmdet's NAS-FCOS
    uses; ``'bilinear'``: ``align_corners=False``)."""
    check_upsample_mode('resize_to_largest', mode)
    size = max((x.shape[-2:] for x in inputs), key=lambda s: s[0] * s[1])
    extra = dict(align_corners=False) if mode == 'bilinear' else {}
    return [
        x if x.shape[-2:] == size else F.interpolate(
            x, size=size, mode=mode, **extra) for x in inputs
    ]


def check_upsample_mode(name: str, mode: str) -> str:
    """``mode`` if it is one of :data:`UPSAMPLE_MODES`; else a ValueError
    naming ``name`` and the valid ones."""
    if mode not in UPSAMPLE_MODES:
        raise ValueError(f'{name}: upsample_mode={mode!r}; valid: '
                         f'{list(UPSAMPLE_MODES)}')
    return mode


@MODELS.register_module()
class ParamSum(BaseModule):
    """``a * x + b * y`` with learnable per-channel ``a``, ``b`` (initialised
    to 1), after resizing both to the larger map (NAS-FCOS ``psum``).

    Args:
        in_channels (int): Channels of each input.
        out_channels (int): Must equal ``in_channels``.
        stride (int): Must be 1 (accepted so that every op takes the same
            arguments). Defaults to 1.
        norm_cfg (dict, optional): Unused. Defaults to None.
        act_cfg (dict, optional): Unused. Defaults to None.
        upsample_mode (str): ``'nearest'`` or ``'bilinear'``. Defaults to
            ``'nearest'``.
        init_cfg (dict, optional): Initialisation. Defaults to None.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None,
                 upsample_mode: str = 'nearest',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        if in_channels != out_channels or stride != 1:
            raise ValueError(
                f'ParamSum keeps shape: got in_channels={in_channels}, '
                f'out_channels={out_channels}, stride={stride}')
        self.upsample_mode = check_upsample_mode('ParamSum', upsample_mode)
        self.a = nn.Parameter(torch.ones(1, in_channels, 1, 1))
        self.b = nn.Parameter(torch.ones(1, in_channels, 1, 1))

    def forward(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        x, y = resize_to_largest(inputs, self.upsample_mode)
        return self.a * x + self.b * y


@MODELS.register_module()
class ConcatReduce(BaseModule):
    """``conv1x1_groups=C(ReLU(norm(concat(x, y))))`` mapping 2C -> C
    channels, after resizing both to the larger map (NAS-FCOS ``cat``): the
    fusion of mmcv's ``ConcatCell`` as mmdet's ``NASFCOS_FPN`` builds it
    (``out_conv``: an mmcv ``ConvModule`` in the order norm, act, conv; its
    parameters named as there).

    Args:
        in_channels (int): Channels of each input.
        out_channels (int): Output channels (divides ``2 * in_channels``).
        stride (int): Must be 1. Defaults to 1.
        norm_cfg (dict, optional): Norm on the concatenation. Defaults to
            ``dict(type='BN')``.
        act_cfg (dict, optional): Unused (the activation is ReLU, as in
            NAS-FCOS). Defaults to None.
        bias (bool): A bias on the grouped 1x1 conv (mmdet's has none).
            Defaults to False.
        upsample_mode (str): ``'nearest'`` (mmdet's) or ``'bilinear'``.
            Defaults to ``'nearest'``.
        init_cfg (dict, optional): Initialisation. Defaults to None.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 act_cfg: Optional[dict] = None,
                 bias: bool = False,
                 upsample_mode: str = 'nearest',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        if stride != 1:
            raise ValueError(f'ConcatReduce stride must be 1, got {stride}')
        self.upsample_mode = check_upsample_mode('ConcatReduce', upsample_mode)
        self.out_conv = ConvModule(
            2 * in_channels,
            out_channels,
            1,
            groups=out_channels,
            bias=bias,
            norm_cfg=norm_cfg or dict(type='BN'),
            act_cfg=dict(type='ReLU'),
            order=('norm', 'act', 'conv'))

    def forward(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.out_conv(
            torch.cat(resize_to_largest(inputs, self.upsample_mode), dim=1))
