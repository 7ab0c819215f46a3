"""ShuffleNetV2 blocks: the candidates of the DetNAS / SPOS choice blocks."""
from typing import Optional

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule

from mmnas_tricks.registry import MODELS


def channel_shuffle(x: torch.Tensor, groups: int = 2) -> torch.Tensor:
    """Interleave the channels of ``groups`` groups (ShuffleNet)."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h,
                  w).transpose(1, 2).reshape(n, c, h, w)


def _dw(channels, kernel_size, stride, norm_cfg):
    return ConvModule(
        channels,
        channels,
        kernel_size,
        stride=stride,
        padding=kernel_size // 2,
        groups=channels,
        norm_cfg=norm_cfg,
        act_cfg=None)


def _pw(in_channels, out_channels, norm_cfg, act_cfg):
    return ConvModule(
        in_channels, out_channels, 1, norm_cfg=norm_cfg, act_cfg=act_cfg)


@MODELS.register_module()
class ShuffleBlock(BaseModule):
    """ShuffleNetV2 unit (Ma et al., ECCV 2018) as in SPOS / DetNAS
    (``shufflenet_3x3/5x5/7x7``; ``xception=True`` gives ``xception_3x3``,
    three depthwise-separable 3x3 convs).

    Stride 1: split the channels in half, transform one half, concatenate,
    shuffle (``in_channels == out_channels``). Stride 2: a depthwise +
    pointwise projection of the whole input beside the main branch, each
    giving half the output channels, concatenated and shuffled.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels (even).
        stride (int): 1 or 2. Defaults to 1.
        kernel_size (int): Depthwise kernel size. Defaults to 3.
        xception (bool): Use the Xception branch (three 3x3 depthwise
            separable convs, ``kernel_size`` ignored). Defaults to False.
        norm_cfg (dict, optional): Norm layer. Defaults to ``dict(type='BN')``.
        act_cfg (dict, optional): Activation. Defaults to
            ``dict(type='ReLU')``.
        init_cfg (dict, optional): Initialisation. Defaults to None.

    Example:
        >>> block = ShuffleBlock(32, 64, stride=2, kernel_size=5)
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 kernel_size: int = 3,
                 xception: bool = False,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 act_cfg: Optional[dict] = dict(type='ReLU'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        if stride not in (1, 2):
            raise ValueError(
                f'ShuffleBlock stride must be 1 or 2, got {stride}')
        if out_channels % 2:
            raise ValueError(f'ShuffleBlock out_channels must be even, got '
                             f'{out_channels}')
        if stride == 1 and in_channels != out_channels:
            raise ValueError('a stride-1 ShuffleBlock keeps the channels, got '
                             f'{in_channels} -> {out_channels}')
        self.stride = stride
        branch_in = in_channels // 2 if stride == 1 else in_channels
        half = out_channels // 2
        if stride == 2:
            self.proj = nn.Sequential(
                _dw(in_channels, kernel_size if not xception else 3, 2,
                    norm_cfg), _pw(in_channels, half, norm_cfg, act_cfg))
        else:
            self.proj = None
        mid = half
        if xception:
            layers = [
                _dw(branch_in, 3, stride, norm_cfg),
                _pw(branch_in, mid, norm_cfg, act_cfg),
                _dw(mid, 3, 1, norm_cfg),
                _pw(mid, mid, norm_cfg, act_cfg),
                _dw(mid, 3, 1, norm_cfg),
                _pw(mid, half, norm_cfg, act_cfg),
            ]
        else:
            layers = [
                _pw(branch_in, mid, norm_cfg, act_cfg),
                _dw(mid, kernel_size, stride, norm_cfg),
                _pw(mid, half, norm_cfg, act_cfg),
            ]
        self.branch = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat([x1, self.branch(x2)], dim=1)
        else:
            out = torch.cat([self.proj(x), self.branch(x)], dim=1)
        return channel_shuffle(out, 2)
