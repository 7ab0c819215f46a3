"""The NAS-FCOS FPN search space: cells that grow a feature pool."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule

from mmnas_tricks.registry import MODELS
from ..contract import searchable
from ..mutables import InputChoice, OpChoice, Subnet, fix_in_place

#: NAS-FCOS's five FPN ops (docs/search_spaces/nasfcos_fpn.md), BN inside
#: the separable convs.
NASFCOS_FPN_OPS = dict(
    sep_conv_3x3=dict(type='SepConv', kernel_size=3),
    sep_conv_3x3_dil3=dict(type='SepConv', kernel_size=3, dilation=3),
    sep_conv_5x5_dil6=dict(type='SepConv', kernel_size=5, dilation=6),
    skip_connect=dict(type='Identity'),
    def_conv_3x3=dict(type='DeformConvOp'))

#: The two aggregations: per-channel weighted sum and concat + grouped 1x1.
NASFCOS_AGGREGATIONS = dict(
    psum=dict(type='ParamSum'), cat=dict(type='ConcatReduce'))


class _Cell(BaseModule):
    """One cell ``[l1, l2, op1, op2, agg]``: two inputs from the pool, an op
    on each, an aggregation (inputs resized to the larger map)."""

    def __init__(self, pool_size: int, channels: int, ops: Dict[str, dict],
                 aggregations: Dict[str, dict], norm_cfg: dict) -> None:
        super().__init__()
        self.input1 = InputChoice(pool_size)
        self.input2 = InputChoice(pool_size)
        self.op1 = OpChoice(ops, channels, channels, norm_cfg=norm_cfg)
        self.op2 = OpChoice(ops, channels, channels, norm_cfg=norm_cfg)
        self.agg = OpChoice(
            aggregations, channels, channels, norm_cfg=norm_cfg)

    def forward(self, pool: List[torch.Tensor]) -> torch.Tensor:
        return self.agg(
            [self.op1(self.input1(pool)),
             self.op2(self.input2(pool))])


def _read_index(choice: nn.Module) -> int:
    """The pool index an input choice reads (also once exported)."""
    return int(
        choice.indices if hasattr(choice, 'indices') else choice.current_choice
    )


@MODELS.register_module()
@searchable
class NASFCOSSearchFPN(BaseModule):
    """The NAS-FCOS FPN search space (Wang et al., CVPR 2020;
    docs/search_spaces/nasfcos_fpn.md).

    The pool starts with the backbone levels, each mapped by a 1x1
    conv-norm-ReLU to ``out_channels``. Cell i (``cells.{i}``) picks two
    pool entries (``cells.{i}.input1`` / ``input2``), applies an op to each
    (``op1`` / ``op2``, from ``ops``), aggregates them (``agg``: weighted
    sum or concat-reduce) at the larger of the two resolutions, and appends
    the result to the pool. Output assembly (a simplification of NAS-FCOS
    that makes every code valid, instead of rejecting codes with fewer than
    three unused cell outputs): the cell outputs no later cell reads are
    summed, resized, into every output level on top of that level's mapped
    backbone feature, then a 3x3 conv per level; extra levels (P6, P7 for
    ``num_outs`` > inputs) are stride-2 3x3 convs on the last one, as
    FCOS's ``LastLevelP6P7``. Levels and channels are those of mmdet's FPN
    with ``start_level=0``, so any mmdet dense head accepts the outputs.

    Input choices pick among maps of different sizes, so this space runs in
    ``fixed`` and ``sampled`` modes (one-shot / SPOS / RL / evolution), not
    ``differentiable`` or ``all_on``.

    Args:
        in_channels (Sequence[int]): Channels of the backbone levels.
        out_channels (int): Channels of the pool and the outputs.
        num_outs (int): Output levels (>= number of inputs).
        num_cells (int): Cells. Defaults to 7 (NAS-FCOS).
        ops (dict, optional): Candidate ops of each branch. Defaults to None
            (:data:`NASFCOS_FPN_OPS`).
        aggregations (dict, optional): Aggregation candidates. Defaults to
            None (:data:`NASFCOS_AGGREGATIONS`).
        norm_cfg (dict): Norm of the 1x1 maps and the ops. Defaults to
            ``dict(type='BN')``.
        fixed_subnet (dict, optional): Build the static neck of this subnet.
            Defaults to None.
        init_cfg (dict, optional): Initialisation. Defaults to None.

    Example:
        >>> neck = NASFCOSSearchFPN([16, 32, 64], 32, num_outs=5, num_cells=4)
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 out_channels: int,
                 num_outs: int,
                 num_cells: int = 7,
                 ops: Optional[Dict[str, dict]] = None,
                 aggregations: Optional[Dict[str, dict]] = None,
                 norm_cfg: dict = dict(type='BN'),
                 fixed_subnet: Optional[Subnet] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        in_channels = list(in_channels)
        if num_outs < len(in_channels):
            raise ValueError(f'num_outs={num_outs} is below the number of '
                             f'inputs {len(in_channels)}')
        if num_cells < 1:
            raise ValueError(f'num_cells={num_cells} must be >= 1')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_outs = num_outs
        ops = NASFCOS_FPN_OPS if ops is None else ops
        aggregations = (
            NASFCOS_AGGREGATIONS if aggregations is None else aggregations)
        self.adapt = nn.ModuleList(
            ConvModule(c, out_channels, 1, norm_cfg=norm_cfg)
            for c in in_channels)
        self.cells = nn.ModuleList(
            _Cell(
                len(in_channels) +
                i, out_channels, ops, aggregations, norm_cfg)
            for i in range(num_cells))
        self.fpn_convs = nn.ModuleList(
            ConvModule(
                out_channels,
                out_channels,
                3,
                padding=1,
                norm_cfg=norm_cfg,
                act_cfg=None) for _ in in_channels)
        self.extra_convs = nn.ModuleList(
            ConvModule(
                out_channels,
                out_channels,
                3,
                stride=2,
                padding=1,
                act_cfg=None) for _ in range(num_outs - len(in_channels)))
        if fixed_subnet is not None:
            fix_in_place(self, fixed_subnet)

    def _unused_cells(self) -> List[int]:
        """Pool indices of the cell outputs that no later cell reads."""
        n_in = len(self.in_channels)
        read = {
            _read_index(c)
            for cell in self.cells for c in (cell.input1, cell.input2)
        }
        return [
            n_in + i for i in range(len(self.cells)) if n_in + i not in read
        ]

    def forward(self, inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor]:
        if len(inputs) != len(self.in_channels):
            raise ValueError(f'NASFCOSSearchFPN got {len(inputs)} inputs, '
                             f'built for {len(self.in_channels)}')
        for cell in self.cells:
            for choice in (cell.input1, cell.input2):
                if getattr(choice, 'mode',
                           'fixed') not in ('fixed', 'sampled'):
                    raise ValueError(
                        'NASFCOSSearchFPN input choices run in fixed or '
                        f'sampled mode, got {choice.mode!r}')
        pool = [adapt(x) for adapt, x in zip(self.adapt, inputs)]
        for cell in self.cells:
            pool.append(cell(pool))
        unused = [pool[i] for i in self._unused_cells()]
        outs = []
        for level, conv in enumerate(self.fpn_convs):
            feat = pool[level]
            for extra in unused:
                feat = feat + F.interpolate(
                    extra,
                    size=feat.shape[-2:],
                    mode='bilinear',
                    align_corners=False)
            outs.append(conv(feat))
        for conv in self.extra_convs:
            outs.append(conv(outs[-1]))
        return tuple(outs)
