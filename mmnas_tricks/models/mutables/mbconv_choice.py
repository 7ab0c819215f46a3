"""An inverted-residual block with elastic kernel size and expansion ratio
and weights shared between choices (Once-for-All)."""
import itertools
import math
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_activation_layer

from mmnas_tricks.registry import MODELS
from .base import BaseMutable, integral
from .elastic import WidthSources, copy_norm, sliced_norm, weight_crop


@MODELS.register_module()
class MBConvChoice(BaseMutable, WidthSources):
    """MBConv (MobileNetV2 inverted residual) whose kernel size and expansion
    ratio are one choice ``(kernel, expand)``, with shared weights as in
    Once-for-All (Cai et al., ICLR 2020): a smaller kernel is the centre of
    the largest, a smaller expansion uses the first hidden channels (of the
    expand conv, both BatchNorms, the depthwise conv and the project conv's
    inputs).

    Modes: ``fixed`` / ``sampled`` run the chosen slice; ``differentiable``
    and ``all_on`` mix the outputs of every choice (softmax(alpha) weights or
    per-example path-dropout masks). The static form is
    :class:`~mmnas_tricks.models.ops.MBConv` with the chosen kernel and
    expansion, holding the sliced weights.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        stride (int): Depthwise stride. Defaults to 1.
        kernel_sizes (Sequence[int]): Odd kernel sizes. Defaults to
            (3, 5, 7).
        expand_ratios (Sequence[float]): Expansion ratios, each > 1 (an
            expansion of 1 has no expand conv: use an OpChoice of MBConvs).
            Defaults to (3, 6).
        norm_cfg (dict): Must be BatchNorm (sliced per choice). Defaults to
            ``dict(type='BN')``.
        act_cfg (dict): Activation. Defaults to ``dict(type='ReLU6')``.
        init_cfg (dict, optional): Initialisation. Defaults to None.

    Example:
        >>> block = MBConvChoice(16, 16, kernel_sizes=(3, 5, 7),
        ...                      expand_ratios=(3, 6))
        >>> block.current_choice = (5, 3)
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 kernel_sizes: Sequence[int] = (3, 5, 7),
                 expand_ratios: Sequence[float] = (3, 6),
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU6'),
                 init_cfg=None) -> None:
        kernel_sizes = [int(k) for k in kernel_sizes]
        if any(k < 1 or k % 2 == 0 for k in kernel_sizes):
            raise ValueError(f'kernel sizes must be odd, got {kernel_sizes}')
        if any(e <= 1 for e in expand_ratios):
            raise ValueError(f'expand ratios must be > 1, got '
                             f'{list(expand_ratios)} (an MBConv of expansion '
                             '1 has no expand conv: use an OpChoice)')
        if norm_cfg.get('type') not in ('BN', 'BN2d'):
            raise ValueError(f'MBConvChoice slices BatchNorm only, got '
                             f'norm_cfg={norm_cfg}')
        choices = list(itertools.product(kernel_sizes, expand_ratios))
        super().__init__(choices, init_cfg)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride
        self.norm_cfg = dict(norm_cfg)
        self.act_cfg = dict(act_cfg)
        self.max_kernel = max(kernel_sizes)
        hidden = self.hidden_channels(max(expand_ratios))
        k = self.max_kernel
        self.expand_weight = nn.Parameter(
            torch.empty(hidden, in_channels, 1, 1))
        self.expand_bn = nn.BatchNorm2d(hidden)
        self.dw_weight = nn.Parameter(torch.empty(hidden, 1, k, k))
        self.dw_bn = nn.BatchNorm2d(hidden)
        self.project_weight = nn.Parameter(
            torch.empty(out_channels, hidden, 1, 1))
        self.project_bn = nn.BatchNorm2d(out_channels)
        self.act = build_activation_layer(self.act_cfg)
        for w in (self.expand_weight, self.dw_weight, self.project_weight):
            nn.init.kaiming_uniform_(w, a=math.sqrt(5))

    def hidden_channels(self,
                        expand_ratio: float,
                        in_channels: Optional[int] = None) -> int:
        c_in = self.in_channels if in_channels is None else in_channels
        return int(round(c_in * expand_ratio))

    def _normalise(self, choice):
        if isinstance(choice, list) and len(choice) == 2:
            k, e = choice
            return (integral(k), integral(e))
        return choice

    def _run(self, x: torch.Tensor, choice: Tuple[int, float]):
        k, e = choice
        c_in = self.input_channels(x)
        c_out = self.active_channels()[1]
        hid = self.hidden_channels(e, c_in)
        out = F.conv2d(
            x, weight_crop(self, 'expand', self.expand_weight, hid, c_in))
        out = self.act(sliced_norm(out, self.expand_bn, hid))
        dw = weight_crop(self, 'dw', self.dw_weight, hid, 1, k)
        out = F.conv2d(out, dw, None, self.stride, (k - 1) // 2, 1, hid)
        out = self.act(sliced_norm(out, self.dw_bn, hid))
        out = F.conv2d(
            out, weight_crop(self, 'project', self.project_weight, c_out, hid))
        out = self.mask_output(sliced_norm(out, self.project_bn, c_out))
        return out + x if self._residual(c_in, c_out) else out

    def _residual(self, c_in: int, c_out: int) -> bool:
        return self.stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mode = self.mode
        if mode in ('fixed', 'sampled'):
            return self._run(x, self.current_choice)
        outs = [self._run(x, c) for c in self.choices]
        if mode == 'differentiable':
            return sum(w * o for w, o in zip(self.arch_weights(), outs))
        mask = self.path_mask(x.shape[0], x.device)
        return sum(mask[:, i].view(-1, 1, 1, 1) * o
                   for i, o in enumerate(outs))

    def export_cfg(self) -> dict:
        k, e = self.current_choice
        c_in, c_out = self.active_channels()
        return dict(
            type='mmnas_tricks.MBConv',
            in_channels=c_in,
            out_channels=c_out,
            stride=self.stride,
            kernel_size=k,
            expand_ratio=e,
            norm_cfg=dict(self.norm_cfg),
            act_cfg=dict(self.act_cfg))

    def _pairs(self, block: nn.Module):
        """(static ConvModule, weight slice, supernet BN, channels) for the
        three convs of ``block``, the MBConv of the current choice."""
        k, e = self.current_choice
        c_in, c_out = self.active_channels()
        hid = self.hidden_channels(e, c_in)
        start = (self.max_kernel - k) // 2
        return [
            (block.expand, self.expand_weight[:hid, :c_in], self.expand_bn,
             hid),
            (block.depthwise, self.dw_weight[:hid, :, start:start + k,
                                             start:start + k], self.dw_bn,
             hid),
            (block.project, self.project_weight[:c_out, :hid], self.project_bn,
             c_out),
        ]

    def export_module(self) -> nn.Module:
        """A :class:`~mmnas_tricks.models.ops.MBConv` holding copies of the
        chosen slices."""
        from mmnas_tricks.models.ops import MBConv
        cfg = self.export_cfg()
        cfg.pop('type')
        block = MBConv(**cfg).to(self.expand_weight.device)
        with torch.no_grad():
            for module, weight, bn, c in self._pairs(block):
                module.conv.weight.copy_(weight)
                copy_norm(bn, module.bn, c)
        return block.train(self.training)

    def import_module(self, module: nn.Module) -> None:
        """Copy an MBConv of the current choice into the chosen slices."""
        with torch.no_grad():
            for static, weight, bn, c in self._pairs(module):
                weight.copy_(static.conv.weight)
                copy_norm(static.bn, bn, c)
