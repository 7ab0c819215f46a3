"""The ResNet bottleneck block with a kernel size and mid width of choice."""
from typing import Optional

import torch
import torch.nn as nn
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmengine.model import BaseModule

from mmnas_tricks.registry import MODELS

STYLES = ('pytorch', 'caffe')


@MODELS.register_module()
class ResBottleneck(BaseModule):
    """ResNet's bottleneck block (He et al., CVPR 2016) as mmdet's
    ``Bottleneck`` builds it: ``conv1`` (1x1) - ``bn1`` - ReLU - ``conv2``
    (k x k) - ``bn2`` - ReLU - ``conv3`` (1x1) - ``bn3``, plus the identity
    or, when the stride or the channels change, the ``downsample``
    projection (1x1 conv, stride, BN), then ReLU. The stride sits on
    ``conv2`` (``style='pytorch'``) or on ``conv1`` (``'caffe'``), as
    mmdet's. Unlike mmdet's block, the middle width is free (mmdet's is a
    quarter of the output), and so is the kernel. The parameter names are
    mmdet's, so a ResNet-50's block loads into it (and into
    :class:`~mmnas_tricks.models.mutables.ResBottleneckChoice` through its
    ``import_module``).

    Args:
        in_channels (int): Input channels.
        mid_channels (int): Channels of ``conv1`` and ``conv2``.
        out_channels (int): Output channels.
        stride (int): Stride of the block. Defaults to 1.
        kernel_size (int): Odd kernel size of ``conv2``. Defaults to 3.
        style (str): ``'pytorch'`` or ``'caffe'``. Defaults to
            ``'pytorch'``.
        norm_cfg (dict): Norm layer. Defaults to ``dict(type='BN')``.
        init_cfg (dict, optional): Initialisation. Defaults to None.

    Example:
        >>> block = ResBottleneck(64, 64, 256, stride=2)
        >>> block(torch.rand(1, 64, 8, 8)).shape
        torch.Size([1, 256, 4, 4])
    """

    def __init__(self,
                 in_channels: int,
                 mid_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 kernel_size: int = 3,
                 style: str = 'pytorch',
                 norm_cfg: dict = dict(type='BN'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f'kernel_size must be odd, got {kernel_size}')
        if style not in STYLES:
            raise ValueError(f'style {style!r} is not among {list(STYLES)}')
        s1, s2 = (1, stride) if style == 'pytorch' else (stride, 1)
        self.conv1 = build_conv_layer(
            None, in_channels, mid_channels, 1, stride=s1, bias=False)
        self.bn1 = build_norm_layer(norm_cfg, mid_channels)[1]
        self.conv2 = build_conv_layer(
            None,
            mid_channels,
            mid_channels,
            kernel_size,
            stride=s2,
            padding=(kernel_size - 1) // 2,
            bias=False)
        self.bn2 = build_norm_layer(norm_cfg, mid_channels)[1]
        self.conv3 = build_conv_layer(
            None, mid_channels, out_channels, 1, bias=False)
        self.bn3 = build_norm_layer(norm_cfg, out_channels)[1]
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                build_conv_layer(
                    None,
                    in_channels,
                    out_channels,
                    1,
                    stride=stride,
                    bias=False),
                build_norm_layer(norm_cfg, out_channels)[1])

    @property
    def last_norm(self) -> nn.Module:
        return self.bn3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)
