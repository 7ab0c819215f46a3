"""Elastic depth: a stage runs its first d blocks."""
import copy
from typing import Iterator, List, Sequence

import torch
import torch.nn as nn
from mmengine.registry import DefaultScope

from mmnas_tricks.registry import MODELS
from .base import BaseMutable, integral


def _build(cfgs: Sequence[dict]) -> List[nn.Module]:
    with DefaultScope.overwrite_default_scope('mmnas_tricks'):
        return [MODELS.build(copy.deepcopy(dict(c))) for c in cfgs]


@MODELS.register_module()
class SequentialBlocks(nn.Sequential):
    """The static form of :class:`DepthChoice`: blocks built from configs
    (in the ``mmnas_tricks`` scope), run in order; parameter names
    ``0.…``, ``1.…`` as in the supernet (and as in mmdet's towers).

    Args:
        blocks (list[dict]): Block configs.
    """

    def __init__(self, blocks: Sequence[dict]) -> None:
        super().__init__(*_build(blocks))


@MODELS.register_module()
class DepthChoice(BaseMutable):
    """A stage of blocks whose depth is a choice; depth d runs the first d
    blocks, so the blocks (weights) are shared between depths (Once-for-All,
    Cai et al., ICLR 2020).

    The blocks are the children ``0``, ``1``, … (as in an ``nn.Sequential``
    or mmdet's ``cls_convs`` tower), and iterating the stage yields what to
    run in order: the first d blocks in ``fixed`` / ``sampled`` mode, or one
    callable that mixes the depths in the other modes. So a DepthChoice can
    stand in for a ``ModuleList`` that a head iterates
    (``for layer in self.cls_convs: x = layer(x)``).

    Modes: ``fixed`` / ``sampled`` run the first d blocks; ``differentiable``
    returns ``sum_i softmax(alpha)_i * out(d_i)``, the mix of the outputs
    after each candidate depth; ``all_on`` mixes the same outputs with
    per-example path-dropout masks. Blocks past the largest depth are never
    built. Blocks are built in the ``mmnas_tricks`` scope (mmdet's as
    ``'mmdet.X'``).

    Args:
        blocks (list[dict]): Configs of the blocks, as many as the largest
            depth; the blocks from the smallest depth on must keep the shape
            of their input (the output of any depth is the stage output).
        depths (Sequence[int]): Candidate depths (>= 1); the first is the
            default choice.
        init_cfg (dict, optional): Initialisation. Defaults to None.

    Example:
        >>> stage = DepthChoice(
        ...     [dict(type='MBConv', in_channels=8, out_channels=8)] * 4,
        ...     depths=(2, 3, 4))
    """

    wraps_mutables = True  # its blocks' own mutables take drop path

    def __init__(self,
                 blocks: Sequence[dict],
                 depths: Sequence[int],
                 init_cfg=None) -> None:
        depths = [integral(d) for d in depths]
        if not blocks:
            raise ValueError('DepthChoice needs at least one block config')
        bad = [
            d for d in depths
            if type(d) is not int or not 1 <= d <= len(blocks)
        ]
        if bad:
            raise ValueError(f'depths {bad} are not in [1, number of blocks='
                             f'{len(blocks)}]')
        super().__init__(depths, init_cfg)
        self._block_cfgs = [copy.deepcopy(dict(c)) for c in blocks]
        for i, block in enumerate(_build(self._block_cfgs[:max(depths)])):
            self.add_module(str(i), block)

    def _normalise(self, choice):
        return integral(choice)

    @property
    def blocks(self) -> List[nn.Module]:
        """Every built block, in order."""
        return [self._modules[str(i)] for i in range(max(self.choices))]

    def __len__(self) -> int:
        return max(self.choices)

    def __getitem__(self, index):
        return self.blocks[index]

    def __iter__(self) -> Iterator:
        if self.mode in ('fixed', 'sampled'):
            return iter(self.blocks[:self.current_choice])
        return iter([self._mix])

    def _mix(self, x: torch.Tensor) -> torch.Tensor:
        outs = {}
        for i, block in enumerate(self.blocks):
            x = block(x)
            outs[i + 1] = x
        if self.mode == 'differentiable':
            return sum(w * outs[d]
                       for w, d in zip(self.arch_weights(), self.choices))
        mask = self.path_mask(x.shape[0], x.device)
        return sum(mask[:, i].view(-1, 1, 1, 1) * outs[d]
                   for i, d in enumerate(self.choices))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self:
            x = layer(x)
        return x

    def export_module(self) -> nn.Module:
        static = SequentialBlocks([])
        for i, block in enumerate(self.blocks[:self.current_choice]):
            static.add_module(str(i), block)
        return static

    def export_cfg(self) -> dict:
        return dict(
            type='mmnas_tricks.SequentialBlocks',
            blocks=copy.deepcopy(self._block_cfgs[:self.current_choice]))
