"""Elastic depth: a stage runs its first d blocks."""
import copy
from typing import List, Sequence

import torch
import torch.nn as nn
from mmengine.registry import DefaultScope

from mmnas_tricks.registry import MODELS
from .base import BaseMutable, integral


@MODELS.register_module()
class SequentialBlocks(nn.Sequential):
    """The static form of :class:`DepthChoice`: blocks built from configs,
    run in order (parameter names ``blocks.0...`` as in the supernet).

    Args:
        blocks (list[dict]): Block configs.
    """

    def __init__(self, blocks: Sequence[dict]) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*_build(blocks))

    def forward(self, x):
        return self.blocks(x)


def _build(cfgs: Sequence[dict]) -> List[nn.Module]:
    with DefaultScope.overwrite_default_scope('mmnas_tricks'):
        return [MODELS.build(copy.deepcopy(dict(c))) for c in cfgs]


@MODELS.register_module()
class DepthChoice(BaseMutable):
    """A stage of blocks whose depth is a choice; depth d runs the first d
    blocks, so the blocks (weights) are shared between depths (Once-for-All,
    Cai et al., ICLR 2020).

    Modes: ``fixed`` / ``sampled`` run the first d blocks; ``differentiable``
    returns ``sum_i softmax(alpha)_i * out(d_i)``, the mix of the outputs
    after each candidate depth; ``all_on`` mixes the same outputs with
    per-example path-dropout masks. Blocks past the largest depth are never
    built. Blocks are built in the ``mmnas_tricks`` scope (mmdet's as
    ``'mmdet.X'``).

    Args:
        blocks (list[dict]): Configs of the blocks, as many as the largest
            depth; every block must keep the shape of its input from the
            smallest depth on (the output of any depth is the stage output).
        depths (Sequence[int]): Candidate depths (>= 1); the first is the
            default choice.
        init_cfg (dict, optional): Initialisation. Defaults to None.

    Example:
        >>> stage = DepthChoice(
        ...     [dict(type='MBConv', in_channels=8, out_channels=8)] * 4,
        ...     depths=(2, 3, 4))
    """

    def __init__(self,
                 blocks: Sequence[dict],
                 depths: Sequence[int],
                 init_cfg=None) -> None:
        depths = [int(d) for d in depths]
        if not blocks:
            raise ValueError('DepthChoice needs at least one block config')
        bad = [d for d in depths if not 1 <= d <= len(blocks)]
        if bad:
            raise ValueError(f'depths {bad} are not in [1, number of blocks='
                             f'{len(blocks)}]')
        super().__init__(depths, init_cfg)
        self._block_cfgs = [copy.deepcopy(dict(c)) for c in blocks]
        self.blocks = nn.ModuleList(_build(self._block_cfgs[:max(depths)]))

    def _normalise(self, choice):
        return integral(choice)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mode = self.mode
        if mode in ('fixed', 'sampled'):
            for block in self.blocks[:self.current_choice]:
                x = block(x)
            return x
        outs = {}
        for i, block in enumerate(self.blocks):
            x = block(x)
            outs[i + 1] = x
        if mode == 'differentiable':
            return sum(w * outs[d]
                       for w, d in zip(self.arch_weights(), self.choices))
        mask = self.path_mask(x.shape[0], x.device)
        return sum(mask[:, i].view(-1, 1, 1, 1) * outs[d]
                   for i, d in enumerate(self.choices))

    def export_module(self) -> nn.Module:
        static = SequentialBlocks([])
        static.blocks = nn.Sequential(*self.blocks[:self.current_choice])
        return static

    def export_cfg(self) -> dict:
        return dict(
            type='mmnas_tricks.SequentialBlocks',
            blocks=copy.deepcopy(self._block_cfgs[:self.current_choice]))
