"""Candidate operations for searchable modules.

Every op takes ``in_channels``, ``out_channels`` and ``stride`` (injected by
the op choice that builds it) plus ``norm_cfg`` / ``act_cfg`` as OpenMMLab
modules do, and is registered in :data:`mmnas_tricks.registry.MODELS`.
"""
from typing import Optional, Union

import torch
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule

from mmnas_tricks.registry import MODELS
from .deform_conv import TorchCPUDCNv2

_BN = dict(type='BN')
_RELU = dict(type='ReLU')


@MODELS.register_module()
class ConvOp(ConvModule):
    """Conv (kernel, dilation) -> norm -> act: an mmcv ``ConvModule`` with
    the padding that keeps the size, so its parameters are named like the
    conv layers of mmdet's towers (``conv.weight``, ``gn.weight``) and a
    plain head's weights load into it.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        stride (int): Stride. Defaults to 1.
        kernel_size (int): Kernel size. Defaults to 3.
        dilation (int): Dilation. Defaults to 1.
        norm_cfg (dict, optional): Norm layer. Defaults to ``dict(type='BN')``.
        act_cfg (dict, optional): Activation. Defaults to
            ``dict(type='ReLU')``.
        conv_cfg (dict, optional): Conv layer (e.g. ``dict(type='DCNv2')``).
            Defaults to None (``nn.Conv2d``).
        bias (bool | str): Conv bias; ``'auto'``: only without a norm.
            Defaults to ``'auto'``.

    Example:
        >>> op = ConvOp(8, 16, kernel_size=1)
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 kernel_size: int = 3,
                 dilation: int = 1,
                 norm_cfg: Optional[dict] = _BN,
                 act_cfg: Optional[dict] = _RELU,
                 conv_cfg: Optional[dict] = None,
                 bias: Union[bool, str] = 'auto') -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=dilation * (kernel_size - 1) // 2,
            dilation=dilation,
            conv_cfg=conv_cfg,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg,
            bias=bias)


@MODELS.register_module()
class SepConv(BaseModule):
    """Depthwise (dilated) conv -> norm -> act -> pointwise conv -> norm -> act
    (the separable convs of NAS-FCOS; ``dilation > 1`` gives its
    ``sep_conv_3x3_dil3`` / ``sep_conv_5x5_dil6``).

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        stride (int): Stride of the depthwise conv. Defaults to 1.
        kernel_size (int): Depthwise kernel size. Defaults to 3.
        dilation (int): Depthwise dilation. Defaults to 1.
        norm_cfg (dict, optional): Norm layer. Defaults to ``dict(type='BN')``.
        act_cfg (dict, optional): Activation. Defaults to
            ``dict(type='ReLU')``.
        init_cfg (dict, optional): Initialisation. Defaults to None.

    Example:
        >>> op = SepConv(8, 8, kernel_size=5, dilation=6)
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 kernel_size: int = 3,
                 dilation: int = 1,
                 norm_cfg: Optional[dict] = _BN,
                 act_cfg: Optional[dict] = _RELU,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        self.depthwise = ConvModule(
            in_channels,
            in_channels,
            kernel_size,
            stride=stride,
            padding=dilation * (kernel_size - 1) // 2,
            dilation=dilation,
            groups=in_channels,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg)
        self.pointwise = ConvModule(
            in_channels, out_channels, 1, norm_cfg=norm_cfg, act_cfg=act_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


@MODELS.register_module()
class DeformConvOp(ConvOp):
    """Modulated deformable conv v2 -> norm -> act, as NAS-FCOS's
    ``def_conv_3x3`` and mmdet's ``dcn_on_last_conv``; offsets and masks come
    from a zero-initialised conv (offsets start at 0, masks at 0.5). The conv
    is :class:`~mmnas_tricks.models.ops.deform_conv.TorchCPUDCNv2`: mmcv's
    ``DCNv2`` (same parameters and names) with a fast pure-PyTorch forward
    on CPU. The defaults are those of mmdet's ``dcn_on_last_conv``; mmdet's
    NAS-FCOS (``NASFCOSHead``, ``NASFCOS_FPN``) uses ``deform_groups=2`` and
    ``bias=True`` (the conv keeps its bias before the norm).

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        stride (int): Stride. Defaults to 1.
        kernel_size (int): Kernel size. Defaults to 3.
        norm_cfg (dict, optional): Norm layer. Defaults to ``dict(type='BN')``.
        act_cfg (dict, optional): Activation. Defaults to
            ``dict(type='ReLU')``.
        bias (bool | str): Conv bias; ``'auto'``: only without a norm.
            Defaults to ``'auto'``.
        deform_groups (int): Offset groups (each group of input channels
            gets its own offsets and masks). Defaults to 1.

    Example:
        >>> op = DeformConvOp(8, 8, deform_groups=2, bias=True)
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 kernel_size: int = 3,
                 norm_cfg: Optional[dict] = _BN,
                 act_cfg: Optional[dict] = _RELU,
                 bias: Union[bool, str] = 'auto',
                 deform_groups: int = 1) -> None:
        if deform_groups < 1 or in_channels % deform_groups:
            raise ValueError(f'DeformConvOp: deform_groups={deform_groups} '
                             f'must be >= 1 and divide in_channels='
                             f'{in_channels}')
        super().__init__(
            in_channels,
            out_channels,
            stride=stride,
            kernel_size=kernel_size,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg,
            conv_cfg=dict(type=TorchCPUDCNv2, deform_groups=deform_groups),
            bias=bias)


@MODELS.register_module()
class Identity(BaseModule):
    """Skip connection; a 1x1 conv -> norm projection when the channels or
    the stride change (so it can stand in any op choice).

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        stride (int): Stride. Defaults to 1.
        norm_cfg (dict, optional): Norm of the projection. Defaults to
            ``dict(type='BN')``.
        act_cfg (dict, optional): Unused (skip has no activation); accepted so
            that every op takes the same arguments. Defaults to None.
        init_cfg (dict, optional): Initialisation. Defaults to None.

    Example:
        >>> Identity(8, 8)(torch.ones(1, 8, 4, 4)).sum().item()
        128.0
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 norm_cfg: Optional[dict] = _BN,
                 act_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        if in_channels != out_channels or stride != 1:
            self.proj = ConvModule(
                in_channels,
                out_channels,
                1,
                stride=stride,
                norm_cfg=norm_cfg,
                act_cfg=None)
        else:
            self.proj = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.proj is None else self.proj(x)


@MODELS.register_module()
class Zero(BaseModule):
    """Outputs zeros of the op's output shape (DARTS ``none``).

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        stride (int): Stride. Defaults to 1.
        norm_cfg (dict, optional): Unused. Defaults to None.
        act_cfg (dict, optional): Unused. Defaults to None.
        init_cfg (dict, optional): Unused. Defaults to None.

    Example:
        >>> Zero(8, 16, stride=2)(torch.ones(1, 8, 4, 4)).shape
        torch.Size([1, 16, 2, 2])
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        self.out_channels = out_channels
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        s = self.stride
        return x.new_zeros(n, self.out_channels, (h + s - 1) // s,
                           (w + s - 1) // s)
