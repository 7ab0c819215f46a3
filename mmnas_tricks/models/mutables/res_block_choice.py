"""A ResNet basic block with an elastic kernel size and weights shared
between the kernel sizes (Once-for-All)."""
import math
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmnas_tricks.registry import MODELS
from .base import BaseMutable, integral
from .elastic import WidthSources, copy_norm, sliced_norm, weight_crop


@MODELS.register_module()
class ResBasicBlockChoice(BaseMutable, WidthSources):
    """ResNet's basic block whose kernel size (of both 3x3 convs in the
    plain block) is the choice, with weights shared as in Once-for-All (Cai
    et al., ICLR 2020): a smaller kernel is the centre of the largest. The
    shortcut (identity, or the 1x1 projection when the stride or the
    channels change) does not depend on the choice. With width sources
    (:meth:`set_width_sources`: the stage's
    :class:`~mmnas_tricks.models.mutables.ChannelChoice` as output width,
    the previous stage's as input width) the block uses the first channels
    of every weight, Once-for-All's elastic width.

    Modes: ``fixed`` / ``sampled`` run the chosen kernel; ``differentiable``
    and ``all_on`` mix the outputs of every kernel (softmax(alpha) weights
    or per-example path-dropout masks). The static form is
    :class:`~mmnas_tricks.models.ops.ResBasicBlock` (mmdet's ``BasicBlock``
    parameter names) holding the sliced weights.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        stride (int): Stride of the first conv and of the projection.
            Defaults to 1.
        kernel_sizes (Sequence[int]): Odd kernel sizes; the first is the
            default (3: the plain ResNet block). Defaults to (3, 5).
        norm_cfg (dict): Must be BatchNorm (sliced per choice). Defaults to
            ``dict(type='BN')``.
        init_cfg (dict, optional): Initialisation. Defaults to None.

    Example:
        >>> block = ResBasicBlockChoice(16, 32, stride=2)
        >>> block.current_choice = 5
        >>> block(torch.rand(1, 16, 8, 8)).shape
        torch.Size([1, 32, 4, 4])
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 kernel_sizes: Sequence[int] = (3, 5),
                 norm_cfg: dict = dict(type='BN'),
                 init_cfg=None) -> None:
        kernel_sizes = [integral(k) for k in kernel_sizes]
        if any(not isinstance(k, int) or k < 1 or k % 2 == 0
               for k in kernel_sizes):
            raise ValueError(
                f'kernel sizes must be odd ints, got {kernel_sizes}')
        if norm_cfg.get('type') not in ('BN', 'BN2d'):
            raise ValueError(f'ResBasicBlockChoice slices BatchNorm only, '
                             f'got norm_cfg={norm_cfg}')
        super().__init__(kernel_sizes, init_cfg)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride
        self.norm_cfg = dict(norm_cfg)
        k = self.max_kernel = max(kernel_sizes)
        self.conv1_weight = nn.Parameter(
            torch.empty(out_channels, in_channels, k, k))
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2_weight = nn.Parameter(
            torch.empty(out_channels, out_channels, k, k))
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.projection = stride != 1 or in_channels != out_channels
        if self.projection:
            self.downsample_weight = nn.Parameter(
                torch.empty(out_channels, in_channels, 1, 1))
            self.downsample_bn = nn.BatchNorm2d(out_channels)
        for name, w in self.named_parameters(recurse=False):
            if name.endswith('_weight'):
                nn.init.kaiming_uniform_(w, a=math.sqrt(5))

    def kaiming_init(self) -> None:
        """Draw the conv weights as mmdet's ResNet draws its convs'
        (Kaiming normal, fan-out, ReLU gain), at the fan-out of the first
        (default) kernel: the default choice then starts from the
        distribution of mmdet's ``BasicBlock`` and the larger kernels'
        outer taps and the wider channels at the same scale."""
        k = self.choices[0]
        out = self.out_width.choices[0] if self.out_width is not None \
            else self.out_channels  # the default width
        with torch.no_grad():
            for name, w in self.named_parameters(recurse=False):
                if name.endswith('_weight'):
                    taps = k * k if w.shape[-1] > 1 else 1
                    w.normal_(0, math.sqrt(2.0 / (out * taps)))

    def _normalise(self, choice):
        return integral(choice)

    @property
    def last_norm(self) -> nn.BatchNorm2d:
        """The norm that ends the residual branch: zeroed, the block is the
        identity (its input is a ReLU's output)."""
        return self.bn2

    def _kernel(self, weight: torch.Tensor, k: int) -> torch.Tensor:
        start = (self.max_kernel - k) // 2
        return weight[:, :, start:start + k, start:start + k]

    def _widths(self, x: torch.Tensor, c_in: Optional[int],
                c: Optional[int]) -> Tuple[int, int]:
        return (self.input_channels(x) if c_in is None else c_in,
                self.active_channels()[1] if c is None else c)

    def _run(self,
             x: torch.Tensor,
             k: int,
             c_in: Optional[int] = None,
             c: Optional[int] = None) -> torch.Tensor:
        c_in, c = self._widths(x, c_in, c)
        pad = (k - 1) // 2
        out = F.conv2d(
            x, weight_crop(self, 'conv1', self.conv1_weight, c, c_in, k), None,
            self.stride, pad)
        out = self.mask_output(F.relu(sliced_norm(out, self.bn1, c)))
        out = F.conv2d(out,
                       weight_crop(self, 'conv2', self.conv2_weight, c, c, k),
                       None, 1, pad)
        return sliced_norm(out, self.bn2, c)

    def _shortcut(self,
                  x: torch.Tensor,
                  c_in: Optional[int] = None,
                  c: Optional[int] = None) -> torch.Tensor:
        c_in, c = self._widths(x, c_in, c)
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
        mode = self.mode
        c_in = self.input_channels(x)
        c = self.active_channels()[1]
        if mode in ('fixed', 'sampled'):
            out = self._run(x, self.current_choice, c_in, c)
        else:
            outs = [self._run(x, k, c_in, c) for k in self.choices]
            if mode == 'differentiable':
                out = sum(w * o for w, o in zip(self.arch_weights(), outs))
            else:
                mask = self.path_mask(x.shape[0], x.device)
                out = sum(mask[:, i].view(-1, 1, 1, 1) * o
                          for i, o in enumerate(outs))
        return self.mask_output(F.relu(out + self._shortcut(x, c_in, c)))

    def export_cfg(self) -> dict:
        c_in, c = self.active_channels()
        return dict(
            type='mmnas_tricks.ResBasicBlock',
            in_channels=c_in,
            out_channels=c,
            stride=self.stride,
            kernel_size=self.current_choice,
            norm_cfg=dict(self.norm_cfg))

    def _pairs(self, block: nn.Module):
        """(static conv, weight slice, static BN, supernet BN) of
        ``block``, a ResBasicBlock (or mmdet's BasicBlock) of the current
        kernel."""
        k = self.current_choice
        c_in, c = self.active_channels()
        pairs = [(block.conv1, self._kernel(self.conv1_weight[:c, :c_in],
                                            k), block.bn1, self.bn1),
                 (block.conv2, self._kernel(self.conv2_weight[:c, :c],
                                            k), block.bn2, self.bn2)]
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
        """A :class:`~mmnas_tricks.models.ops.ResBasicBlock` holding copies
        of the chosen slices."""
        from mmnas_tricks.models.ops import ResBasicBlock
        cfg = self.export_cfg()
        cfg.pop('type')
        block = ResBasicBlock(**cfg).to(self.conv1_weight.device)
        with torch.no_grad():
            for conv, weight, bn, source in self._pairs(block):
                conv.weight.copy_(weight)
                copy_norm(source, bn, bn.num_features)
        return block.train(self.training)

    def import_module(self, module: nn.Module) -> None:
        """Copy a block of the current kernel (ours or mmdet's
        ``BasicBlock``) into the chosen slices."""
        with torch.no_grad():
            for conv, weight, bn, target in self._pairs(module):
                if conv.weight.shape != weight.shape:
                    raise ValueError(
                        f'a {tuple(conv.weight.shape)} conv does not fit '
                        f'the {tuple(weight.shape)} slice of kernel '
                        f'{self.current_choice}')
                weight.copy_(conv.weight)
                copy_norm(bn, target, bn.num_features)
