"""The two aggregations of a NAS-FCOS FPN cell: weighted sum and concat."""
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_norm_layer
from mmengine.model import BaseModule

from mmnas_tricks.registry import MODELS


def resize_to_largest(inputs: Sequence[torch.Tensor]):
    """Bilinearly resize the maps to the largest spatial size among them."""
    size = max((x.shape[-2:] for x in inputs), key=lambda s: s[0] * s[1])
    return [
        x if x.shape[-2:] == size else F.interpolate(
            x, size=size, mode='bilinear', align_corners=False) for x in inputs
    ]


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
        init_cfg (dict, optional): Initialisation. Defaults to None.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        if in_channels != out_channels or stride != 1:
            raise ValueError(
                f'ParamSum keeps shape: got in_channels={in_channels}, '
                f'out_channels={out_channels}, stride={stride}')
        self.a = nn.Parameter(torch.ones(1, in_channels, 1, 1))
        self.b = nn.Parameter(torch.ones(1, in_channels, 1, 1))

    def forward(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        x, y = resize_to_largest(inputs)
        return self.a * x + self.b * y


@MODELS.register_module()
class ConcatReduce(BaseModule):
    """``conv1x1_groups=C(ReLU(norm(concat(x, y))))`` mapping 2C -> C
    channels, after resizing both to the larger map (NAS-FCOS ``cat``).

    Args:
        in_channels (int): Channels of each input.
        out_channels (int): Output channels (divides ``2 * in_channels``).
        stride (int): Must be 1. Defaults to 1.
        norm_cfg (dict, optional): Norm on the concatenation. Defaults to
            ``dict(type='BN')``.
        act_cfg (dict, optional): Unused (the activation is ReLU, as in
            NAS-FCOS). Defaults to None.
        init_cfg (dict, optional): Initialisation. Defaults to None.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 act_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        if stride != 1:
            raise ValueError(f'ConcatReduce stride must be 1, got {stride}')
        self.norm_name, norm = build_norm_layer(
            norm_cfg or dict(type='BN'), 2 * in_channels)
        self.add_module(self.norm_name, norm)
        self.reduce = ConvModule(
            2 * in_channels,
            out_channels,
            1,
            groups=out_channels,
            norm_cfg=None,
            act_cfg=None)

    def forward(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        x = torch.cat(resize_to_largest(inputs), dim=1)
        return self.reduce(torch.relu(getattr(self, self.norm_name)(x)))
