"""An inverted-residual (MobileNetV2 / Once-for-All) backbone supernet."""
from typing import Optional, Sequence, Tuple

import torch.nn as nn
from mmcv.cnn import ConvModule

from mmnas_tricks.registry import MODELS
from ..contract import searchable
from ..mutables import ChannelChoice, DepthChoice, Subnet
from ..ops import MBConv
from .base import BaseSearchableBackbone

#: (out channels, blocks, stride) per stage: MobileNetV2's stages after its
#: first (expansion 1) block, with up to 4 blocks each as Once-for-All.
MBV2_ARCH = ((24, 4, 2), (32, 4, 2), (64, 4, 2), (96, 4, 1), (160, 4, 2),
             (320, 1, 1))


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of ``divisor`` without losing > 10 %."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


@MODELS.register_module()
@searchable
class SearchableMobileNetV2(BaseSearchableBackbone):
    """MobileNetV2 supernet: every block an
    :class:`~mmnas_tricks.models.mutables.MBConvChoice` (kernel size x
    expansion ratio, weights shared as Once-for-All), every stage a
    :class:`~mmnas_tricks.models.mutables.DepthChoice` (elastic depth).
    Sandler et al., CVPR 2018; Cai et al., ICLR 2020 (OFA).

    The stem (3x3 conv, stride 2, and MobileNetV2's expansion-1 block) is
    fixed. Stage ``i`` outputs ``make_divisible(arch[i][0] * widen_factor)``
    channels; ``out_indices`` picks the stages fed to the neck. Mutable
    names: ``stages.{i}`` (depth of stage i), ``stages.{i}.{j}`` (block
    j's ``(kernel, expand)``) and, with ``width_ratios``, ``widths.{i}``
    (channels of stage i).

    Args:
        arch (Sequence[tuple]): ``(channels, max blocks, stride)`` per stage.
            Defaults to :data:`MBV2_ARCH`.
        widen_factor (float): Channel multiplier. Defaults to 1.0.
        kernel_sizes (Sequence[int]): Kernel choices. Defaults to (3, 5, 7).
        expand_ratios (Sequence[float]): Expansion choices. Defaults to
            (3, 6).
        depths (Sequence[Sequence[int]], optional): Depth choices per stage.
            Defaults to None: ``{n-2, n-1, n}`` clipped to >= 1.
        width_ratios (Sequence[float], optional): Elastic width: each stage
            not in ``out_indices`` (whose channels the neck fixes) gets a
            :class:`~mmnas_tricks.models.mutables.ChannelChoice`
            ``widths.{i}`` over ``make_divisible(channels * ratio)``, shared
            by its blocks (and read by the next stage's first block). The
            first ratio should be 1.0 (the plain network). Defaults to None
            (fixed widths).
        out_indices (Sequence[int]): Stages whose outputs are returned.
            Defaults to (1, 3, 5) (strides 8, 16, 32).
        frozen_stages (int): Freeze the stem and the first ``frozen_stages``
            stages (-1: nothing, 0: the stem). Defaults to -1.
        norm_cfg (dict): Norm (BatchNorm: the shared blocks slice it).
            Defaults to ``dict(type='BN')``.
        act_cfg (dict): Activation. Defaults to ``dict(type='ReLU6')``.
        norm_eval (bool): Keep BN in eval mode while training. Defaults to
            False.
        fixed_subnet (dict, optional): Build the static network of this
            subnet (names relative to the backbone): no mutables, no unused
            candidates. Written by the export tool. Defaults to None.
        init_cfg (dict, optional): Initialisation. Defaults to None.

    Example:
        >>> backbone = SearchableMobileNetV2(widen_factor=0.5)
        >>> [o.shape[1] for o in backbone(torch.rand(2, 3, 64, 64))]
        [16, 48, 160]
    """

    def __init__(self,
                 arch: Sequence[Tuple[int, int, int]] = MBV2_ARCH,
                 widen_factor: float = 1.0,
                 kernel_sizes: Sequence[int] = (3, 5, 7),
                 expand_ratios: Sequence[float] = (3, 6),
                 depths: Optional[Sequence[Sequence[int]]] = None,
                 width_ratios: Optional[Sequence[float]] = None,
                 out_indices: Sequence[int] = (1, 3, 5),
                 frozen_stages: int = -1,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU6'),
                 norm_eval: bool = False,
                 fixed_subnet: Optional[Subnet] = None,
                 init_cfg: Optional[dict] = None) -> None:
        arch = [tuple(int(v) for v in stage) for stage in arch]
        super().__init__(
            len(arch), out_indices, frozen_stages, norm_eval, init_cfg)
        if depths is None:
            depths = [
                sorted({max(1, n - 2), max(1, n - 1), n}) for _, n, _ in arch
            ]
        if len(depths) != len(arch):
            raise ValueError(f'depths has {len(depths)} entries for '
                             f'{len(arch)} stages: {list(depths)}')
        stem_c = make_divisible(32 * widen_factor)
        first_c = make_divisible(16 * widen_factor)
        self.stem = nn.Sequential(
            ConvModule(
                3,
                stem_c,
                3,
                stride=2,
                padding=1,
                norm_cfg=norm_cfg,
                act_cfg=act_cfg),
            MBConv(
                stem_c,
                first_c,
                expand_ratio=1,
                norm_cfg=norm_cfg,
                act_cfg=act_cfg))
        self.stages = nn.ModuleList()
        self.out_channels = []
        in_c = first_c
        for (channels, num_blocks, stride), stage_depths in zip(arch, depths):
            out_c = make_divisible(channels * widen_factor)
            blocks = [
                dict(
                    type='MBConvChoice',
                    in_channels=in_c if j == 0 else out_c,
                    out_channels=out_c,
                    stride=stride if j == 0 else 1,
                    kernel_sizes=tuple(kernel_sizes),
                    expand_ratios=tuple(expand_ratios),
                    norm_cfg=norm_cfg,
                    act_cfg=act_cfg) for j in range(num_blocks)
            ]
            self.stages.append(DepthChoice(blocks, depths=stage_depths))
            self.out_channels.append(out_c)
            in_c = out_c
        self.widths = nn.ModuleDict()
        if width_ratios is not None:
            self._make_widths(width_ratios)
        self.finish(fixed_subnet)

    def _make_widths(self, ratios: Sequence[float]) -> None:
        """A ChannelChoice per stage that does not feed the neck, wired into
        the blocks that produce and consume its channels."""
        previous = None
        for i, (stage,
                max_c) in enumerate(zip(self.stages, self.out_channels)):
            width = None
            if i not in self.out_indices:
                channels = []
                for r in ratios:
                    c = min(max_c, make_divisible(max_c * r))
                    if c not in channels:
                        channels.append(c)
                if len(channels) > 1:
                    width = ChannelChoice(channels)
                    self.widths[str(i)] = width
            for j, block in enumerate(stage.blocks):
                block.set_width_sources(
                    in_width=previous if j == 0 else width, out_width=width)
            previous = width
