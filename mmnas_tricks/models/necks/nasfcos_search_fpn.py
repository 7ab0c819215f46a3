"""The NAS-FCOS FPN search space: cells that grow a feature pool."""
import re
from collections import Counter
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule

from mmnas_tricks.registry import MODELS
from ..contract import searchable
from ..mutables import InputChoice, OpChoice, Subnet, fix_in_place
from ..ops.aggregate import check_upsample_mode

#: NAS-FCOS's five FPN ops (docs/search_spaces/nasfcos_fpn.md), BN inside
#: the separable convs; the deformable conv as mmdet's ``NASFCOS_FPN``
#: builds its cells' input convs (DCNv2 with 2 offset groups and a bias,
#: BN, ReLU).
NASFCOS_FPN_OPS = dict(
    sep_conv_3x3=dict(type='SepConv', kernel_size=3),
    sep_conv_3x3_dil3=dict(type='SepConv', kernel_size=3, dilation=3),
    sep_conv_5x5_dil6=dict(type='SepConv', kernel_size=5, dilation=6),
    skip_connect=dict(type='Identity'),
    def_conv_3x3=dict(type='DeformConvOp', deform_groups=2, bias=True))

#: The two aggregations: per-channel weighted sum and concat + grouped 1x1
#: (mmcv's ``ConcatCell`` fusion, without a bias, as mmdet's).
NASFCOS_AGGREGATIONS = dict(
    psum=dict(type='ParamSum'), cat=dict(type='ConcatReduce'))

#: How the outputs are assembled from the pool (``output_rule``).
OUTPUT_RULES = ('nasfcos', 'sum_unused')


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

    The pool starts with the backbone levels from ``start_level``, each
    mapped by a 1x1 conv-norm-ReLU to ``out_channels`` (``adapt``). Cell i
    (``cells.{i}``) picks two pool entries (``cells.{i}.input1`` /
    ``input2``), applies an op to each (``op1`` / ``op2``, from ``ops``),
    aggregates them (``agg``: weighted sum or concat-reduce) at the larger
    of the two resolutions, and appends the result to the pool.

    Outputs (``output_rule``):

    - ``'nasfcos'`` (NAS-FCOS's, as mmdet's ``NASFCOS_FPN``): the last
      cell outputs that no cell reads are the levels, the newest the finest
      (P3, then P4, ...); every other unread cell output is added to each
      of them (bilinearly resized to it), and the sum is bilinearly resized
      to its level's size. NAS-FCOS rejects a code with fewer unread
      outputs than levels; here the newest read cell outputs make up the
      number, so every code is valid.
    - ``'sum_unused'``: every cell output that no cell reads is added,
      resized, to each level's mapped backbone feature.

    ``output_convs`` adds a 3x3 conv-norm per level after that. Extra
    levels (P6, P7 for ``num_outs`` > inputs) are stride-2 3x3 convs on the
    last one, with a ReLU before each but the first (``extra_relu``; FCOS's
    ``LastLevelP6P7`` and mmdet's NAS-FCOS). The defaults build mmdet's
    NAS-FCOS neck: ``configs/nas/subnets/nasfcos_published.yaml`` is its
    architecture (with the head's), whose parameters equal mmdet's and
    whose static neck loads an mmdet
    ``NASFCOS_FPN`` state dict (keys ``adapt_convs.*``, ``fpn.c<a><b>.*``,
    ``extra_downsamples.*``, renamed on loading; docs/search_spaces/
    nasfcos_fpn.md lists what still differs).

    Input choices pick among maps of different sizes, so this space runs in
    ``fixed`` and ``sampled`` modes (one-shot / SPOS / RL / evolution), not
    ``differentiable`` or ``all_on``.

    Args:
        in_channels (Sequence[int]): Channels of the backbone levels.
        out_channels (int): Channels of the pool and the outputs.
        num_outs (int): Output levels (>= number of inputs used).
        num_cells (int): Cells. Defaults to 7 (NAS-FCOS).
        ops (dict, optional): Candidate ops of each branch. Defaults to None
            (:data:`NASFCOS_FPN_OPS`).
        aggregations (dict, optional): Aggregation candidates. Defaults to
            None (:data:`NASFCOS_AGGREGATIONS`).
        norm_cfg (dict): Norm of the 1x1 maps and the ops. Defaults to
            ``dict(type='BN')``.
        start_level (int): First backbone level used (mmdet's NAS-FCOS
            config: 1, dropping C2). Defaults to 0.
        upsample_mode (str): How a cell resizes its smaller input
            (``'nearest'``, mmcv's merge cells', or ``'bilinear'``); set on
            every aggregation that does not set its own. Defaults to
            ``'nearest'``.
        output_rule (str): ``'nasfcos'`` or ``'sum_unused'`` (above).
            Defaults to ``'nasfcos'``.
        output_convs (bool): A 3x3 conv-norm per output level. Defaults to
            False.
        extra_relu (bool): A ReLU before each extra level's conv but the
            first. Defaults to True.
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
                 start_level: int = 0,
                 upsample_mode: str = 'nearest',
                 output_rule: str = 'nasfcos',
                 output_convs: bool = False,
                 extra_relu: bool = True,
                 fixed_subnet: Optional[Subnet] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        in_channels = list(in_channels)
        if not 0 <= start_level < len(in_channels):
            raise ValueError(f'start_level={start_level} must index one of '
                             f'the {len(in_channels)} in_channels')
        used = in_channels[start_level:]
        if num_outs < len(used):
            raise ValueError(f'num_outs={num_outs} is below the number of '
                             f'inputs used {len(used)}')
        if num_cells < 1:
            raise ValueError(f'num_cells={num_cells} must be >= 1')
        if output_rule not in OUTPUT_RULES:
            raise ValueError(f'output_rule={output_rule!r}; valid: '
                             f'{list(OUTPUT_RULES)}')
        if output_rule == 'nasfcos' and num_cells < len(used):
            raise ValueError(
                f"output_rule='nasfcos' takes the last {len(used)} cells as "
                f'the {len(used)} levels: num_cells={num_cells} is too few')
        check_upsample_mode('NASFCOSSearchFPN', upsample_mode)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_outs = num_outs
        self.start_level = start_level
        self.output_rule = output_rule
        ops = NASFCOS_FPN_OPS if ops is None else ops
        aggregations = {
            name:
            dict(cfg, upsample_mode=cfg.get('upsample_mode', upsample_mode))
            for name, cfg in (
                NASFCOS_AGGREGATIONS if aggregations is None else aggregations
            ).items()
        }
        self.adapt = nn.ModuleList(
            ConvModule(c, out_channels, 1, norm_cfg=norm_cfg) for c in used)
        self.cells = nn.ModuleList(
            _Cell(len(used) + i, out_channels, ops, aggregations, norm_cfg)
            for i in range(num_cells))
        self.fpn_convs = nn.ModuleList(
            ConvModule(
                out_channels,
                out_channels,
                3,
                padding=1,
                norm_cfg=norm_cfg,
                act_cfg=None) for _ in used) if output_convs else None
        self.extra_convs = nn.ModuleList(
            ConvModule(
                out_channels,
                out_channels,
                3,
                stride=2,
                padding=1,
                # not in place: the level it reads is an output too
                act_cfg=dict(type='ReLU', inplace=False
                             ) if extra_relu and i else None,
                order=('act', 'norm', 'conv'))
            for i in range(num_outs - len(used)))
        if fixed_subnet is not None:
            fix_in_place(self, fixed_subnet)

    def _cell_inputs(self) -> List[Tuple[int, int]]:
        return [(_read_index(cell.input1), _read_index(cell.input2))
                for cell in self.cells]

    def _unused_cells(self) -> List[int]:
        """Pool indices of the cell outputs that no later cell reads."""
        n_in = len(self.adapt)
        read = {i for pair in self._cell_inputs() for i in pair}
        return [
            n_in + i for i in range(len(self.cells)) if n_in + i not in read
        ]

    def _output_cells(self) -> List[int]:
        """Pool indices of the levels' cell outputs under the ``'nasfcos'``
        rule, finest level first: the last unused cell outputs, the newest
        the finest; where fewer are unused (a code NAS-FCOS rejects), the
        newest read ones make up the number."""
        n_in = len(self.adapt)
        unused = self._unused_cells()
        cells = range(n_in + len(self.cells) - 1, n_in - 1, -1)
        order = [i for i in cells if i in unused] + \
            [i for i in cells if i not in unused]
        return sorted(order[:n_in], reverse=True)

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
        pool = [
            adapt(x) for adapt, x in zip(self.adapt, inputs[self.start_level:])
        ]
        n_in = len(pool)
        for cell in self.cells:
            pool.append(cell(pool))
        unused = self._unused_cells()
        outs = []
        if self.output_rule == 'nasfcos':
            levels = self._output_cells()
            extra = [pool[i] for i in unused if i not in levels]
            for level, index in enumerate(levels):
                feat = pool[index]
                for e in extra:
                    feat = feat + _resize(e, feat.shape[-2:])
                outs.append(_resize(feat, pool[level].shape[-2:]))
        else:
            for level in range(n_in):
                feat = pool[level]
                for i in unused:
                    feat = feat + _resize(pool[i], feat.shape[-2:])
                outs.append(feat)
        if self.fpn_convs is not None:
            outs = [conv(x) for conv, x in zip(self.fpn_convs, outs)]
        for conv in self.extra_convs:
            outs.append(conv(outs[-1]))
        return tuple(outs)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """Rename the keys of an mmdet ``NASFCOS_FPN`` state dict to this
        neck's (its cells found by their inputs, mmdet's naming) where the
        neck is static (a subnet's); then load as usual."""
        if any(k.startswith(prefix + 'fpn.') for k in state_dict) and \
                not any(isinstance(c.input1, InputChoice)
                        for c in self.cells):
            for old, new in mmdet_nasfcos_fpn_keys(
                    state_dict, prefix, self._cell_inputs()).items():
                state_dict[new] = state_dict.pop(old)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def _resize(x: torch.Tensor, size) -> torch.Tensor:
    """``x`` bilinearly resized to ``size`` (unchanged at that size)."""
    if x.shape[-2:] == size:
        return x
    return F.interpolate(x, size=size, mode='bilinear', align_corners=False)


def mmdet_cell_names(cell_inputs: Sequence[Tuple[int, int]]) -> List[str]:
    """mmdet's ``NASFCOS_FPN`` names of cells reading ``cell_inputs`` (pool
    indices): ``c<a><b>``, numbered ``_1``, ``_2`` where several cells read
    the same pair."""
    counts = Counter(cell_inputs)
    seen: Counter = Counter()
    names = []
    for pair in cell_inputs:
        seen[pair] += 1
        name = f'c{pair[0]}{pair[1]}'
        names.append(name if counts[pair] == 1 else f'{name}_{seen[pair]}')
    return names


def mmdet_nasfcos_fpn_keys(state_dict: dict, prefix: str,
                           cell_inputs: Sequence[Tuple[int, int]]) -> dict:
    """``{mmdet key: this neck's key}`` for the keys of an mmdet
    ``NASFCOS_FPN`` under ``prefix`` in ``state_dict``, for a static neck
    whose cells read ``cell_inputs``: ``adapt_convs`` -> ``adapt``,
    ``fpn.<cell>.input1_conv`` / ``input2_conv`` / ``out_conv`` ->
    ``cells.<i>.op1`` / ``op2`` / ``agg.out_conv``, ``extra_downsamples``
    -> ``extra_convs``. A cell name that no cell of this neck has is left
    as it is (then reported as unexpected)."""
    index = {name: i for i, name in enumerate(mmdet_cell_names(cell_inputs))}
    parts = {
        'input1_conv': 'op1',
        'input2_conv': 'op2',
        'out_conv': 'agg.out_conv'
    }
    out = {}
    for key in state_dict:
        if not key.startswith(prefix):
            continue
        rest = key[len(prefix):]
        if rest.startswith('adapt_convs.'):
            out[key] = prefix + 'adapt.' + rest[len('adapt_convs.'):]
        elif rest.startswith('extra_downsamples.'):
            out[key] = prefix + 'extra_convs.' + rest[len('extra_downsamples.'
                                                          ):]
        else:
            m = re.match(
                r'fpn\.([^.]+)\.(input1_conv|input2_conv|out_conv)'
                r'\.(.*)$', rest)
            if m and m.group(1) in index:
                out[key] = (f'{prefix}cells.{index[m.group(1)]}.'
                            f'{parts[m.group(2)]}.{m.group(3)}')
    return out
