"""A ResNet of basic blocks with elastic depth and width per stage and
elastic kernel size per block."""
import math
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
from mmcv.cnn import build_conv_layer, build_norm_layer

from mmnas_tricks.registry import MODELS
from ..contract import searchable
from ..mutables import (ChannelChoice, DepthChoice, ResBasicBlockChoice,
                        Subnet, elastic_conv, elastic_norm)
from .base import BaseSearchableBackbone


@MODELS.register_module()
@searchable
class SearchableResNet(BaseSearchableBackbone):
    """ResNet of basic blocks (He et al., CVPR 2016) as a supernet: every
    stage a :class:`~mmnas_tricks.models.mutables.DepthChoice` (the first d
    blocks run, Once-for-All's elastic depth), every block a
    :class:`~mmnas_tricks.models.mutables.ResBasicBlockChoice` (kernel size,
    the smaller kernels the centre of the largest). With the first choices
    (default: depth 2 and kernel 3 everywhere) it is mmdet's ResNet-18 at
    ``base_channels`` (stem: 7x7 conv, stride 2, BN, ReLU, 3x3 max-pool;
    stage i: ``base_channels * 2**i`` channels, stride 1 then 2), and a
    trained ResNet-18's blocks load into it (``import_module``).

    The modules carry mmdet's ResNet names (``conv1``, ``bn1``, ``layer1``
    to ``layer4``, and in the blocks ``conv1``, ``bn1``, ``conv2``, ``bn2``,
    ``downsample``), so a trained mmdet ResNet-18 checkpoint loads into the
    first subnet by name (``InheritWeightsHook`` /
    :func:`~mmnas_tricks.models.inherit.inherit_plain`) and the exported static
    backbone has its state-dict keys. Mutable names: ``layer{i+1}`` (depth
    of stage i), ``layer{i+1}.{j}`` (kernel of block j) and, with
    ``width_ratios``, ``widths.{i}`` (channels of stage i; the stem follows
    stage 0, whose first block has an identity shortcut).

    With elastic widths the blocks hold weights for the largest width of
    their stage and use the first channels (Once-for-All); ``out_channels``
    are the largest widths (what the neck's ``in_channels`` must say) and
    ``out_width_choices`` the width of each output, which the neck's
    lateral convs follow (:func:`~mmnas_tricks.models.mutables.link_widths`).

    Args:
        base_channels (int): Channels of the stem and of stage 0. Defaults
            to 64.
        depths (Sequence[Sequence[int]]): Depth choices per stage; the first
            is the default. Defaults to ``((2, 1, 3),) * 4``.
        kernel_sizes (Sequence[int]): Kernel choices of every block; the
            first is the default. Defaults to (3, 5).
        width_ratios (Sequence[float], optional): Elastic width: stage i
            chooses from ``round(base_channels * 2**i * ratio)`` channels;
            the first ratio should be 1.0 (the plain ResNet). Defaults to
            None (fixed widths).
        out_indices (Sequence[int]): Stages whose outputs are returned.
            Defaults to (1, 2, 3) (strides 8, 16, 32).
        frozen_stages (int): Freeze the stem and the first ``frozen_stages``
            stages (-1: nothing, 0: the stem). Defaults to -1.
        norm_cfg (dict): BatchNorm (the shared blocks slice it). Defaults to
            ``dict(type='BN')``.
        norm_eval (bool): Keep BN in eval mode while training. Defaults to
            False.
        deep_stem (bool): mmseg's ResNetV1c stem (three 3x3 convs, the
            first two at half the stem's channels, in ``stem``; the
            backbone of mmseg's Semantic FPN) instead of the 7x7 conv.
            With ``width_ratios`` the halves are a width of their own,
            ``widths.stem``. Defaults to False.
        zero_init_residual (bool): Zero the last BN of every block (each
            block starts as the identity), as mmdet's ResNet does by
            default. Only with the default initialisation. Defaults to True.
        fixed_subnet (dict, optional): Build the static network of this
            subnet (names relative to the backbone): no mutables, no unused
            blocks or kernel weights. Written by the export tool. Defaults
            to None.
        init_cfg (dict, optional): Initialisation. Defaults to None:
            mmdet's ResNet initialisation (Kaiming-normal convs, fan-out,
            and BN weights 1), so that the first subnet, or any exported
            one, starts from the distribution mmdet's ResNet-18 starts
            from; a block's shared k x k weights are drawn at the fan-out of
            its first (default) kernel.

    Example:
        >>> backbone = SearchableResNet(base_channels=16)
        >>> [o.shape[1] for o in backbone(torch.rand(2, 3, 64, 64))]
        [32, 64, 128]
    """

    def __init__(self,
                 base_channels: int = 64,
                 depths: Sequence[Sequence[int]] = ((2, 1, 3), ) * 4,
                 kernel_sizes: Sequence[int] = (3, 5),
                 width_ratios: Optional[Sequence[float]] = None,
                 out_indices: Sequence[int] = (1, 2, 3),
                 frozen_stages: int = -1,
                 norm_cfg: dict = dict(type='BN'),
                 norm_eval: bool = False,
                 zero_init_residual: bool = True,
                 deep_stem: bool = False,
                 fixed_subnet: Optional[Subnet] = None,
                 init_cfg: Optional[dict] = None) -> None:
        depths = [list(d) for d in depths]
        self._mmdet_init = init_cfg is None
        if init_cfg is None:  # mmdet's ResNet, pretrained=None
            init_cfg = [
                dict(type='Kaiming', layer='Conv2d'),
                dict(
                    type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])
            ]
        super().__init__(
            len(depths), out_indices, frozen_stages, norm_eval, init_cfg)
        self.zero_init_residual = zero_init_residual
        if any(not d or min(d) < 1 for d in depths):
            raise ValueError(f'every stage needs depth choices >= 1, got '
                             f'depths={depths}')
        widths = [
            self._width_choices(base_channels * 2**i, width_ratios)
            for i in range(len(depths))
        ]
        stem_c = max(widths[0])
        self.deep_stem = deep_stem
        if deep_stem:  # mmseg's ResNetV1c: three 3x3 convs
            half = stem_c // 2

            def conv_bn(c_in, c_out, stride):
                return [
                    build_conv_layer(
                        None,
                        c_in,
                        c_out,
                        3,
                        stride=stride,
                        padding=1,
                        bias=False),
                    build_norm_layer(norm_cfg, c_out)[1],
                    nn.ReLU(inplace=True)
                ]

            self.stem = nn.Sequential(*conv_bn(3, half, 2),
                                      *conv_bn(half, half, 1),
                                      *conv_bn(half, stem_c, 1))
        else:
            self.conv1 = build_conv_layer(
                None, 3, stem_c, 7, stride=2, padding=3, bias=False)
            self.bn1 = build_norm_layer(norm_cfg, stem_c)[1]
            self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.out_channels = []
        in_c = stem_c
        for i, stage_depths in enumerate(depths):
            out_c = max(widths[i])
            blocks = [
                dict(
                    type='ResBasicBlockChoice',
                    in_channels=in_c if j == 0 else out_c,
                    out_channels=out_c,
                    stride=(1 if i == 0 else 2) if j == 0 else 1,
                    kernel_sizes=tuple(kernel_sizes),
                    norm_cfg=dict(norm_cfg)) for j in range(max(stage_depths))
            ]
            self.add_module(f'layer{i + 1}',
                            DepthChoice(blocks, depths=stage_depths))
            self.out_channels.append(out_c)
            in_c = out_c
        self.num_stages = len(depths)
        self.out_width_choices = None
        if width_ratios is not None:
            self._make_widths(widths)
        self.finish(fixed_subnet)
        if fixed_subnet is not None:
            self.out_width_choices = None

    def init_weights(self) -> None:
        """``init_cfg``; with the default one, also what mmdet's ResNet
        does beyond it: the shared block weights (plain tensors, not
        ``Conv2d`` modules, so ``init_cfg`` misses them) Kaiming-normal at
        the first kernel's fan-out, an elastic stem at the default width's,
        and with ``zero_init_residual`` every block's last BN zeroed."""
        from mmnas_tricks.models.ops import ResBasicBlock
        super().init_weights()
        if not self._mmdet_init:
            return
        convs = list(self.stem)[::3] if self.deep_stem else [self.conv1]
        for conv in convs:
            if getattr(conv, 'out_width', None) is not None:  # elastic
                fan_out = conv.out_width.choices[0] * conv.weight[0, 0].numel()
                with torch.no_grad():  # at the default width's fan-out
                    conv.weight.normal_(0, math.sqrt(2.0 / fan_out))
        for m in self.modules():
            if isinstance(m, ResBasicBlockChoice):
                m.kaiming_init()
            if self.zero_init_residual and isinstance(
                    m, (ResBasicBlockChoice, ResBasicBlock)):
                nn.init.zeros_(m.bn2.weight)
                nn.init.zeros_(m.bn2.bias)

    @staticmethod
    def _width_choices(channels: int,
                       ratios: Optional[Sequence[float]]) -> List[int]:
        if ratios is None:
            return [channels]
        if not ratios or min(ratios) <= 0:
            raise ValueError(f'width_ratios must be positive, got '
                             f'{list(ratios)}')
        out = []
        for r in ratios:
            c = max(1, int(round(channels * r)))
            if c not in out:
                out.append(c)
        return out

    def _make_widths(self, widths: List[List[int]]) -> None:
        """A ChannelChoice per stage (``widths.{i}``), driving the stage's
        blocks (and the next stage's first block's input); the stem is
        elastic with stage 0's width."""
        self.widths = nn.ModuleDict(
            {str(i): ChannelChoice(c)
             for i, c in enumerate(widths)})
        first = self.widths['0']
        if self.deep_stem:
            # the first two convs have half the stem's channels: their own
            # width (half of each stage-0 width)
            halves = list(dict.fromkeys(max(1, c // 2) for c in widths[0]))
            half = self.widths['stem'] = ChannelChoice(halves)
            stem = self.stem
            sources = ((None, half), (half, half), (half, first))
            for i, (c_in, c_out) in zip((0, 3, 6), sources):
                stem[i] = elastic_conv(stem[i])
                stem[i].set_width_sources(in_width=c_in, out_width=c_out)
                stem[i + 1] = elastic_norm(stem[i + 1])
                stem[i + 1].set_width_sources(out_width=c_out)
        else:
            self.conv1 = elastic_conv(self.conv1)
            self.conv1.set_width_sources(out_width=first)
            self.bn1 = elastic_norm(self.bn1)
            self.bn1.set_width_sources(out_width=first)
        previous = first
        for i, stage in enumerate(self.stages):
            width = self.widths[str(i)]
            for j, block in enumerate(stage.blocks):
                block.set_width_sources(
                    in_width=previous if j == 0 else width, out_width=width)
            previous = width
        self.out_width_choices = [
            self.widths[str(i)] for i in self.out_indices
        ]

    # BaseSearchableBackbone's stem and stages, under mmdet's names
    def stem_layers(self) -> List[nn.Module]:
        if self.deep_stem:
            return [self.stem, self.maxpool]
        return [self.conv1, self.bn1, self.relu, self.maxpool]

    @property
    def stages(self) -> List[nn.Module]:
        return [getattr(self, f'layer{i + 1}') for i in range(self.num_stages)]
