"""Inverted-residual (MBConv) candidate op."""
from typing import Optional

import torch
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule

from mmnas_tricks.registry import MODELS


@MODELS.register_module()
class MBConv(BaseModule):
    """Inverted-residual block of MobileNetV2 (Sandler et al., CVPR 2018),
    optionally with squeeze-and-excitation as in MobileNetV3 / MnasNet:
    1x1 expand -> kxk depthwise (stride) -> [SE] -> 1x1 project (no act),
    plus the identity when the stride is 1 and the channels do not change.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        stride (int): Depthwise stride. Defaults to 1.
        kernel_size (int): Depthwise kernel size. Defaults to 3.
        expand_ratio (float): Hidden channels = ``round(in_channels *
            expand_ratio)``; 1 skips the expansion conv. Defaults to 6.
        se_ratio (float, optional): SE squeeze ratio of the hidden channels;
            None for no SE. Defaults to None.
        norm_cfg (dict, optional): Norm layer. Defaults to ``dict(type='BN')``.
        act_cfg (dict, optional): Activation. Defaults to
            ``dict(type='ReLU6')``.
        init_cfg (dict, optional): Initialisation. Defaults to None.

    Example:
        >>> op = MBConv(16, 16, kernel_size=5, expand_ratio=3, se_ratio=0.25)
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 kernel_size: int = 3,
                 expand_ratio: float = 6,
                 se_ratio: Optional[float] = None,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 act_cfg: Optional[dict] = dict(type='ReLU6'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        if expand_ratio < 1:
            raise ValueError(f'expand_ratio={expand_ratio} must be >= 1')
        if se_ratio is not None and not 0 < se_ratio <= 1:
            raise ValueError(f'se_ratio={se_ratio} must be in (0, 1] or None')
        hidden = int(round(in_channels * expand_ratio))
        self.use_residual = stride == 1 and in_channels == out_channels
        self.expand = None if expand_ratio == 1 else ConvModule(
            in_channels, hidden, 1, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.depthwise = ConvModule(
            hidden,
            hidden,
            kernel_size,
            stride=stride,
            padding=(kernel_size - 1) // 2,
            groups=hidden,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg)
        if se_ratio is None:
            self.se = None
        else:
            from mmdet.models.layers import SELayer
            self.se = SELayer(hidden, ratio=max(1, int(round(1 / se_ratio))))
        self.project = ConvModule(
            hidden, out_channels, 1, norm_cfg=norm_cfg, act_cfg=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x if self.expand is None else self.expand(x)
        out = self.depthwise(out)
        if self.se is not None:
            out = self.se(out)
        out = self.project(out)
        return out + x if self.use_residual else out
