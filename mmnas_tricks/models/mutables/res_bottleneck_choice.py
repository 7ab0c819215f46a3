"""A ResNet bottleneck block with an elastic kernel size (of its k x k
conv), elastic middle width and elastic output width, every choice sharing
one set of weights (Once-for-All)."""
import math
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmnas_tricks.registry import MODELS
from .base import BaseMutable, integral
from .channel_choice import ChannelChoice
from .elastic import WidthSources, copy_norm, sliced_norm, weight_crop


@MODELS.register_module()
class ResBottleneckChoice(BaseMutable, WidthSources):
    """ResNet's bottleneck block (1x1, k x k, 1x1 convs, each with BN) whose
    choice is the kernel of the middle conv, a smaller kernel the centre of
    the largest (Once-for-All, Cai et al., ICLR 2020). Beside the input and
    output widths of :class:`WidthSources` (:meth:`set_width_sources`: the
    previous stage's and the stage's
    :class:`~mmnas_tricks.models.mutables.ChannelChoice`) the middle width
    (``conv1`` / ``conv2``'s channels) follows a source of its own
    (:meth:`set_mid_width`: the stage's bottleneck width), so a stage
    chooses its output width and its bottleneck's apart. Every width uses
    the first channels of the weights. The stride sits on the middle conv
    (``style='pytorch'``) or the first (``'caffe'``), as in mmdet's
    ``Bottleneck``.

    Modes: ``fixed`` / ``sampled`` run the chosen kernel; ``differentiable``
    and ``all_on`` mix the outputs of every kernel. The static form is
    :class:`~mmnas_tricks.models.ops.ResBottleneck` (mmdet's parameter
    names).

    Args:
        in_channels (int): Input channels (the largest).
        mid_channels (int): Middle channels (the largest).
        out_channels (int): Output channels (the largest).
        stride (int): Stride of the block. Defaults to 1.
        kernel_sizes (Sequence[int]): Odd kernel sizes of the middle conv;
            the first is the default. Defaults to (3, ).
        style (str): ``'pytorch'`` or ``'caffe'``. Defaults to
            ``'pytorch'``.
        norm_cfg (dict): Must be BatchNorm (sliced per width). Defaults to
            ``dict(type='BN')``.
        init_cfg (dict, optional): Initialisation. Defaults to None.

    Example:
        >>> block = ResBottleneckChoice(64, 64, 256, kernel_sizes=(3, 5))
        >>> block.current_choice = 5
        >>> block(torch.rand(1, 64, 8, 8)).shape
        torch.Size([1, 256, 8, 8])
    """

    def __init__(self,
                 in_channels: int,
                 mid_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 kernel_sizes: Sequence[int] = (3, ),
                 style: str = 'pytorch',
                 norm_cfg: dict = dict(type='BN'),
                 init_cfg=None) -> None:
        from mmnas_tricks.models.ops.res_bottleneck import STYLES
        kernel_sizes = [integral(k) for k in kernel_sizes]
        if any(not isinstance(k, int) or k < 1 or k % 2 == 0
               for k in kernel_sizes):
            raise ValueError(
                f'kernel sizes must be odd ints, got {kernel_sizes}')
        if norm_cfg.get('type') not in ('BN', 'BN2d'):
            raise ValueError(f'ResBottleneckChoice slices BatchNorm only, '
                             f'got norm_cfg={norm_cfg}')
        if style not in STYLES:
            raise ValueError(f'style {style!r} is not among {list(STYLES)}')
        super().__init__(kernel_sizes, init_cfg)
        self.in_channels = in_channels
        self.mid_channels = mid_channels
        self.out_channels = out_channels
        self.stride = stride
        self.style = style
        self.norm_cfg = dict(norm_cfg)
        k = self.max_kernel = max(kernel_sizes)
        self.conv1_weight = nn.Parameter(
            torch.empty(mid_channels, in_channels, 1, 1))
        self.bn1 = nn.BatchNorm2d(mid_channels)
        self.conv2_weight = nn.Parameter(
            torch.empty(mid_channels, mid_channels, k, k))
        self.bn2 = nn.BatchNorm2d(mid_channels)
        self.conv3_weight = nn.Parameter(
            torch.empty(out_channels, mid_channels, 1, 1))
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.projection = stride != 1 or in_channels != out_channels
        if self.projection:
            self.downsample_weight = nn.Parameter(
                torch.empty(out_channels, in_channels, 1, 1))
            self.downsample_bn = nn.BatchNorm2d(out_channels)
        self.kaiming_init()

    def set_mid_width(self, source: Optional[ChannelChoice]) -> None:
        """Make the middle width elastic (None: fixed at
        ``mid_channels``)."""
        if source is not None and source.max_channels != self.mid_channels:
            raise ValueError(f'mid width choices {source.choices} do not '
                             f'top out at this block\'s {self.mid_channels} '
                             'middle channels')
        self.__dict__['_mid_width'] = source

    @property
    def mid_width(self) -> Optional[ChannelChoice]:
        return self.__dict__.get('_mid_width')

    def active_mid(self) -> int:
        source = self.mid_width
        if source is not None and source.slicing:
            return int(source.current_choice)
        return self.mid_channels

    def _mask_mid(self, out: torch.Tensor) -> torch.Tensor:
        source = self.mid_width
        if source is not None and not source.slicing:
            out = out * source.channel_mask(out.shape[0], out.device)
        return out

    def kaiming_init(self) -> None:
        """Draw the conv weights as mmdet's ResNet draws its convs'
        (Kaiming normal, fan-out, ReLU gain), at the fan-out of the default
        kernel and widths."""
        k = self.choices[0]
        mid = self.mid_width.choices[0] if self.mid_width is not None \
            else self.mid_channels
        out = self.out_width.choices[0] if self.out_width is not None \
            else self.out_channels
        fans = dict(
            conv1_weight=mid,
            conv2_weight=mid * k * k,
            conv3_weight=out,
            downsample_weight=out)
        with torch.no_grad():
            for name, w in self.named_parameters(recurse=False):
                if name in fans:
                    w.normal_(0, math.sqrt(2.0 / fans[name]))

    def _normalise(self, choice):
        return integral(choice)

    @property
    def last_norm(self) -> nn.BatchNorm2d:
        """The norm that ends the residual branch: zeroed, the block adds
        nothing to its shortcut."""
        return self.bn3

    @property
    def strides(self):
        """(stride of conv1, stride of conv2)."""
        return (1, self.stride) if self.style == 'pytorch' else (self.stride,
                                                                 1)

    def _run(self, x: torch.Tensor, k: int, c_in: int, m: int,
             c: int) -> torch.Tensor:
        s1, s2 = self.strides
        out = F.conv2d(x, weight_crop(self, 'conv1', self.conv1_weight, m,
                                      c_in), None, s1)
        out = self._mask_mid(F.relu(sliced_norm(out, self.bn1, m)))
        out = F.conv2d(out,
                       weight_crop(self, 'conv2', self.conv2_weight, m, m, k),
                       None, s2, (k - 1) // 2)
        out = self._mask_mid(F.relu(sliced_norm(out, self.bn2, m)))
        out = F.conv2d(out, weight_crop(self, 'conv3', self.conv3_weight, c,
                                        m), None)
        return sliced_norm(out, self.bn3, c)

    def _shortcut(self, x: torch.Tensor, c_in: int, c: int) -> torch.Tensor:
        if not self.projection:
            if c_in != c:
                raise ValueError(f'an identity shortcut needs the input '
                                 f'width ({c_in}) to equal the output '
                                 f'width ({c}): give both the same source')
            return x
        out = F.conv2d(
            x, weight_crop(self, 'downsample', self.downsample_weight, c,
                           c_in), None, self.stride)
        return sliced_norm(out, self.downsample_bn, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c_in = self.input_channels(x)
        c = self.active_channels()[1]
        m = self.active_mid()
        if self.mode in ('fixed', 'sampled'):
            out = self._run(x, self.current_choice, c_in, m, c)
        else:
            outs = [self._run(x, k, c_in, m, c) for k in self.choices]
            if self.mode == 'differentiable':
                out = sum(w * o for w, o in zip(self.arch_weights(), outs))
            else:
                mask = self.path_mask(x.shape[0], x.device)
                out = sum(mask[:, i].view(-1, 1, 1, 1) * o
                          for i, o in enumerate(outs))
        return self.mask_output(F.relu(out + self._shortcut(x, c_in, c)))

    def export_cfg(self) -> dict:
        c_in, c = self.active_channels()
        return dict(
            type='mmnas_tricks.ResBottleneck',
            in_channels=c_in,
            mid_channels=self.active_mid(),
            out_channels=c,
            stride=self.stride,
            kernel_size=self.current_choice,
            style=self.style,
            norm_cfg=dict(self.norm_cfg))

    def _pairs(self, block: nn.Module):
        """(static conv, weight slice, static BN, supernet BN) of
        ``block``, a ResBottleneck (or mmdet's Bottleneck) of the current
        kernel and widths."""
        k = self.current_choice
        c_in, c = self.active_channels()
        m = self.active_mid()
        start = (self.max_kernel - k) // 2
        centre = self.conv2_weight[:m, :m, start:start + k, start:start + k]
        pairs = [(block.conv1, self.conv1_weight[:m, :c_in], block.bn1,
                  self.bn1), (block.conv2, centre, block.bn2, self.bn2),
                 (block.conv3, self.conv3_weight[:c, :m], block.bn3, self.bn3)]
        if (block.downsample is not None) != self.projection:
            have = 'a' if block.downsample is not None else 'no'
            want = 'one' if self.projection else 'none'
            raise ValueError(f'{type(block).__name__} has {have} projection '
                             f'shortcut, this block has {want}')
        if self.projection:
            pairs.append(
                (block.downsample[0], self.downsample_weight[:c, :c_in],
                 block.downsample[1], self.downsample_bn))
        return pairs

    def export_module(self) -> nn.Module:
        """A :class:`~mmnas_tricks.models.ops.ResBottleneck` holding copies
        of the chosen slices."""
        from mmnas_tricks.models.ops import ResBottleneck
        cfg = self.export_cfg()
        cfg.pop('type')
        block = ResBottleneck(**cfg).to(self.conv1_weight.device)
        with torch.no_grad():
            for conv, weight, bn, source in self._pairs(block):
                conv.weight.copy_(weight)
                copy_norm(source, bn, bn.num_features)
        return block.train(self.training)

    def import_module(self, module: nn.Module) -> None:
        """Copy a block of the current kernel and widths (ours or mmdet's
        ``Bottleneck``) into the chosen slices."""
        with torch.no_grad():
            for conv, weight, bn, target in self._pairs(module):
                if conv.weight.shape != weight.shape:
                    raise ValueError(
                        f'a {tuple(conv.weight.shape)} conv does not fit '
                        f'the {tuple(weight.shape)} slice of kernel '
                        f'{self.current_choice}')
                weight.copy_(conv.weight)
                copy_norm(bn, target, bn.num_features)
