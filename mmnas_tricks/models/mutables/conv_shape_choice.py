"""A ConvModule whose kernel size and dilation are a choice, one weight."""
import copy
import math
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule

from mmnas_tricks.registry import MODELS
from .base import BaseMutable, integral
from .elastic import (WidthSources, check_norm_widths, copy_norm, group_size,
                      sliced_norm, weight_crop)


def _shape(choice) -> Tuple[int, int]:
    if isinstance(choice, (list, tuple)) and len(choice) == 2:
        return integral(choice[0]), integral(choice[1])
    raise ValueError('a conv shape is a (kernel_size, dilation) pair')


@MODELS.register_module()
class ConvShapeChoice(BaseMutable, WidthSources):
    """Conv -> norm -> act (an mmcv ``ConvModule``) whose ``(kernel_size,
    dilation)`` is the choice, with one weight shared by every choice: a
    k x k kernel is the centre of the largest kernel (Once-for-All's elastic
    kernel, Cai et al., ICLR 2020), applied at dilation d; norm, activation
    and bias are shared too.

    Why: in a supernet whose candidates share nothing (an op choice of
    conv / separable / dilated convs), the channels of one candidate's
    output mean nothing to the next layer trained on another's, and a
    residual-free detection head sampled that way did not learn at all on
    digits (loss flat or rising; docs/search_spaces/elastic_convs.md).
    Shared weights keep the features of every choice aligned, as in OFA's
    elastic kernels.

    Modes: ``fixed`` / ``sampled`` run the chosen shape; ``differentiable``
    mixes the conv outputs of every shape with ``softmax(alpha)`` before the
    norm; ``all_on`` mixes them with per-example path-dropout masks.
    Exports to ``mmnas_tricks.ConvOp`` (a ``ConvModule``: parameters
    ``conv.weight``, ``gn.weight``, ...), so the default subnet of a layer
    built from a 3 x 3 ConvModule loads that module's weights.

    Elastic width (:meth:`set_width_sources`): the first ``c_out`` filters
    over the first ``c_in`` input channels, the norm on the first ``c_out``
    channels (a GroupNorm keeps its group size, so its number of groups
    follows the width); a single ``(kernel, dilation)`` choice makes it the
    elastic form of a plain ``ConvModule``.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        choices (Sequence): ``(kernel_size, dilation)`` pairs, odd kernels;
            the first is the default. Defaults to
            ``((3, 1), (3, 2), (5, 1), (1, 1))``.
        stride (int): Stride. Defaults to 1.
        norm_cfg (dict, optional): Norm layer. Defaults to None.
        act_cfg (dict, optional): Activation. Defaults to
            ``dict(type='ReLU')``.
        bias (bool | str): Conv bias, ``'auto'``: only without a norm.
            Defaults to ``'auto'``.
        init_cfg (dict, optional): Initialisation. Defaults to None.

    Example:
        >>> conv = ConvShapeChoice(8, 8, [(3, 1), (3, 2), (1, 1)],
        ...                        norm_cfg=dict(type='GN', num_groups=4))
        >>> conv.current_choice = (3, 2)
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 choices: Sequence = ((3, 1), (3, 2), (5, 1), (1, 1)),
                 stride: int = 1,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = dict(type='ReLU'),
                 bias: Union[bool, str] = 'auto',
                 init_cfg: Optional[dict] = None) -> None:
        try:
            shapes = [_shape(c) for c in choices]
        except ValueError as e:
            raise ValueError(f'{e}, got choices {list(choices)!r}') from None
        bad = [
            s for s in shapes
            if not all(type(v) is int
                       for v in s) or s[0] < 1 or s[0] % 2 == 0 or s[1] < 1
        ]
        if bad:
            raise ValueError(f'kernel sizes must be odd ints >= 1 and '
                             f'dilations ints >= 1, got {bad}')
        super().__init__(shapes, init_cfg)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride
        self.norm_cfg = copy.deepcopy(norm_cfg)
        self.act_cfg = copy.deepcopy(act_cfg)
        self.max_kernel = max(k for k, _ in shapes)
        # the largest kernel holds the shared weight (and norm / act)
        self.layer = ConvModule(
            in_channels,
            out_channels,
            self.max_kernel,
            stride=stride,
            padding=(self.max_kernel - 1) // 2,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg,
            bias=bias)
        self._default_init()

    def _default_init(self) -> None:
        """Draw the shared weight as mmcv's ``ConvModule`` draws its conv
        (Kaiming normal, fan-out, the activation's gain; bias 0), at the
        fan-out of the default kernel and output width: the default choice,
        and so the exported default subnet, starts from the plain module's
        distribution where no parent initialises it again (mmseg's decode
        heads keep their scale-head convs' construction draws)."""
        k = self.choices[0][0]
        out = self.out_width.choices[0] if self.out_width is not None \
            else self.out_channels
        act = self.act_cfg or {}
        leaky = act.get('type') == 'LeakyReLU'
        gain = nn.init.calculate_gain(
            'leaky_relu' if leaky else 'relu',
            act.get('negative_slope', 0.01) if leaky else 0)
        with torch.no_grad():
            self.layer.conv.weight.normal_(0, gain / math.sqrt(out * k * k))
            if self.layer.conv.bias is not None:
                self.layer.conv.bias.zero_()

    def _normalise(self, choice):
        return _shape(choice)

    def cropped_weight(self, kernel_size: int) -> torch.Tensor:
        """The centre ``kernel_size`` x ``kernel_size`` of the weight."""
        start = (self.max_kernel - kernel_size) // 2
        return self.layer.conv.weight[:, :, start:start + kernel_size,
                                      start:start + kernel_size]

    def set_width_sources(self, in_width=None, out_width=None) -> None:
        if out_width is not None and self.layer.with_norm:
            check_norm_widths(self.layer.norm, out_width)
        super().set_width_sources(in_width, out_width)
        if out_width is not None:  # the default width's fan-out
            self._default_init()

    def _conv(self, x: torch.Tensor, shape) -> torch.Tensor:
        k, d = shape
        c_in = self.input_channels(x)
        c = self.active_channels()[1]
        conv = self.layer.conv
        weight = weight_crop(self, 'weight', conv.weight, c, c_in, k)
        return F.conv2d(x, weight,
                        None if conv.bias is None else conv.bias[:c],
                        self.stride,
                        d * (k - 1) // 2, d)

    def _norm_act(self, y: torch.Tensor) -> torch.Tensor:
        if self.layer.with_norm:
            y = sliced_norm(y, self.layer.norm, y.shape[1])
        if self.layer.with_activation:
            y = self.layer.activate(y)
        return self.mask_output(y)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mode = self.mode
        if mode in ('fixed', 'sampled'):
            return self._norm_act(self._conv(x, self.current_choice))
        if mode == 'differentiable':
            y = sum(w * self._conv(x, s)
                    for w, s in zip(self.arch_weights(), self.choices))
            return self._norm_act(y)
        paths = self.path_mask(x.shape[0], x.device)
        y = 0
        for i, s in enumerate(self.choices):
            y = y + paths[:, i].view(-1, 1, 1, 1) * self._conv(x, s)
        return self._norm_act(y)

    # -- export -------------------------------------------------------------
    def _active_norm_cfg(self, c: int) -> Optional[dict]:
        """The norm config at ``c`` channels (a GroupNorm's groups scaled
        with the width)."""
        cfg = copy.deepcopy(self.norm_cfg)
        if cfg is not None and self.layer.with_norm and isinstance(
                self.layer.norm, nn.GroupNorm):
            cfg['num_groups'] = c // group_size(self.layer.norm)
        return cfg

    def export_cfg(self) -> dict:
        k, d = self.current_choice
        c_in, c = self.active_channels()
        return dict(
            type='mmnas_tricks.ConvOp',
            in_channels=c_in,
            out_channels=c,
            stride=self.stride,
            kernel_size=k,
            dilation=d,
            norm_cfg=self._active_norm_cfg(c),
            act_cfg=copy.deepcopy(self.layer.act_cfg),
            bias=self.layer.conv.bias is not None)

    def export_module(self) -> nn.Module:
        """A ``ConvModule`` holding a copy of the chosen centre crop and the
        shared norm."""
        k, d = self.current_choice
        c_in, c = self.active_channels()
        module = ConvModule(
            c_in,
            c,
            k,
            stride=self.stride,
            padding=d * (k - 1) // 2,
            dilation=d,
            norm_cfg=self._active_norm_cfg(c),
            # the layer's: an activation choice in it sets it on export
            act_cfg=self.layer.act_cfg,
            bias=self.layer.conv.bias is not None)
        module.to(self.layer.conv.weight.device, self.layer.conv.weight.dtype)
        with torch.no_grad():
            module.conv.weight.copy_(self.cropped_weight(k)[:c, :c_in])
            if module.conv.bias is not None:
                module.conv.bias.copy_(self.layer.conv.bias[:c])
            if self.layer.with_norm:
                copy_norm(self.layer.norm, module.norm, c)
        return module

    def import_module(self, module: nn.Module) -> None:
        k, _ = self.current_choice
        c_in, c = self.active_channels()
        with torch.no_grad():
            self.cropped_weight(k)[:c, :c_in].copy_(module.conv.weight)
            if module.conv.bias is not None:
                self.layer.conv.bias[:c].copy_(module.conv.bias)
            if self.layer.with_norm:
                copy_norm(module.norm, self.layer.norm, c)
