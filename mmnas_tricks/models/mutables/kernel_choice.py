"""Elastic kernel size: one weight, smaller kernels use its centre."""
import math
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmnas_tricks.registry import MODELS
from .base import BaseMutable, integral
from .elastic import weight_crop


@MODELS.register_module()
class KernelSizeChoice(BaseMutable):
    """A conv whose kernel size is a choice, with weights shared between
    choices: a k x k kernel is the centre of the largest kernel (Once-for-All,
    Cai et al., ICLR 2020; OFA additionally learns a kernel transformation,
    left out here).

    Modes: ``fixed`` / ``sampled`` convolve with the chosen centre crop;
    ``differentiable`` convolves once with ``sum_i softmax(alpha)_i *
    (centre-k_i mask * W)`` (equal to mixing the k convs' outputs, as conv is
    linear); ``all_on`` mixes the k convs' outputs with per-example
    path-dropout masks.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel_sizes (Sequence[int]): Odd kernel sizes; the first is the
            default choice. Defaults to (3, 5, 7).
        stride (int): Stride. Defaults to 1.
        dilation (int): Dilation. Defaults to 1.
        groups (int): Groups (``in_channels`` for a depthwise conv).
            Defaults to 1.
        bias (bool): Learn a bias. Defaults to False.
        init_cfg (dict, optional): Initialisation. Defaults to None.

    Example:
        >>> conv = KernelSizeChoice(8, 8, (3, 5, 7), groups=8)
        >>> conv.current_choice = 5
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_sizes: Sequence[int] = (3, 5, 7),
                 stride: int = 1,
                 dilation: int = 1,
                 groups: int = 1,
                 bias: bool = False,
                 init_cfg=None) -> None:
        kernel_sizes = [int(k) for k in kernel_sizes]
        bad = [k for k in kernel_sizes if k < 1 or k % 2 == 0]
        if bad:
            raise ValueError(f'kernel sizes must be odd and >= 1, got {bad}')
        super().__init__(kernel_sizes, init_cfg)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride
        self.dilation = dilation
        self.groups = groups
        self.max_kernel = max(kernel_sizes)
        k = self.max_kernel
        self.weight = nn.Parameter(
            torch.empty(out_channels, in_channels // groups, k, k))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def _normalise(self, choice):
        return integral(choice)

    def cropped_weight(self, kernel_size: int) -> torch.Tensor:
        """The centre ``kernel_size`` x ``kernel_size`` of the weight."""
        start = (self.max_kernel - kernel_size) // 2
        return self.weight[:, :, start:start + kernel_size,
                           start:start + kernel_size]

    def _kernel(self, k: int) -> torch.Tensor:
        """The weight of kernel ``k``: the parameter at the largest kernel,
        else its centre crop, made once per optimizer step
        (:func:`~.elastic.reused_view`)."""
        w = self.weight
        return weight_crop(self, 'weight', w, w.shape[0], w.shape[1], k)

    def _conv(self, x, weight, kernel_size):
        return F.conv2d(x, weight, self.bias, self.stride,
                        self.dilation * (kernel_size - 1) // 2, self.dilation,
                        self.groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mode = self.mode
        if mode in ('fixed', 'sampled'):
            k = self.current_choice
            return self._conv(x, self._kernel(k), k)
        if mode == 'differentiable':
            mask = 0
            for w, k in zip(self.arch_weights(), self.choices):
                centre = torch.zeros_like(self.weight[:1, :1])
                start = (self.max_kernel - k) // 2
                centre[..., start:start + k, start:start + k] = 1
                mask = mask + w * centre
            return self._conv(x, self.weight * mask, self.max_kernel)
        paths = self.path_mask(x.shape[0], x.device)
        out = 0
        for i, k in enumerate(self.choices):
            out = out + paths[:, i].view(-1, 1, 1, 1) * self._conv(
                x, self._kernel(k), k)
        return out

    def export_cfg(self) -> dict:
        k = self.current_choice
        return dict(
            type='Conv2d',
            in_channels=self.in_channels,
            out_channels=self.out_channels,
            kernel_size=k,
            stride=self.stride,
            padding=self.dilation * (k - 1) // 2,
            dilation=self.dilation,
            groups=self.groups,
            bias=self.bias is not None)

    def export_module(self) -> nn.Module:
        """A plain ``nn.Conv2d`` holding a copy of the chosen centre crop."""
        cfg = self.export_cfg()
        cfg.pop('type')
        conv = nn.Conv2d(**cfg).to(self.weight.device, self.weight.dtype)
        with torch.no_grad():
            conv.weight.copy_(self.cropped_weight(self.current_choice))
            if self.bias is not None:
                conv.bias.copy_(self.bias)
        return conv

    def import_module(self, module: nn.Module) -> None:
        with torch.no_grad():
            self.cropped_weight(self.current_choice).copy_(module.weight)
            if self.bias is not None:
                self.bias.copy_(module.bias)
