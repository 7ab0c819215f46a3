"""The ResNet basic block with a kernel size of choice."""
from typing import Optional

import torch
import torch.nn as nn
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmengine.model import BaseModule

from mmnas_tricks.registry import MODELS


@MODELS.register_module()
class ResBasicBlock(BaseModule):
    """ResNet's basic block (He et al., CVPR 2016) as mmdet's ``BasicBlock``
    builds it: ``conv1`` (k x k, stride) - ``bn1`` - ReLU - ``conv2``
    (k x k) - ``bn2``, plus the identity or, when the stride or the channels
    change, the ``downsample`` projection (1x1 conv, stride, BN), then ReLU.
    The parameter names are mmdet's, so a ResNet-18's block loads into it
    (and into :class:`~mmnas_tricks.models.mutables.ResBasicBlockChoice`
    through its ``import_module``).

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        stride (int): Stride of ``conv1`` and the projection. Defaults to 1.
        kernel_size (int): Odd kernel size of both convs. Defaults to 3.
        norm_cfg (dict): Norm layer. Defaults to ``dict(type='BN')``.
        init_cfg (dict, optional): Initialisation. Defaults to None.

    Example:
        >>> block = ResBasicBlock(16, 32, stride=2, kernel_size=5)
        >>> block(torch.rand(1, 16, 8, 8)).shape
        torch.Size([1, 32, 4, 4])
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 kernel_size: int = 3,
                 norm_cfg: dict = dict(type='BN'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f'kernel_size must be odd, got {kernel_size}')
        pad = (kernel_size - 1) // 2
        self.conv1 = build_conv_layer(
            None,
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=pad,
            bias=False)
        self.bn1 = build_norm_layer(norm_cfg, out_channels)[1]
        self.conv2 = build_conv_layer(
            None,
            out_channels,
            out_channels,
            kernel_size,
            padding=pad,
            bias=False)
        self.bn2 = build_norm_layer(norm_cfg, out_channels)[1]
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)
