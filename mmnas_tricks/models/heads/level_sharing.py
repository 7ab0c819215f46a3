"""NAS-FCOS's weight-sharing level: the first tower layers of a dense head
hold one copy per FPN level, the rest are shared by the levels."""
import copy
from typing import List

import torch
import torch.nn as nn
from mmdet.models.dense_heads import FCOSHead
from mmdet.models.utils import multi_apply

from ..mutables import BaseMutable


class PerLevel(nn.Module):
    """One copy of a layer per FPN level (``levels.{l}``); the head sets
    :attr:`level` before each level's forward
    (:class:`LevelFCOSHead`)."""

    def __init__(self, layers: List[nn.Module]) -> None:
        super().__init__()
        self.levels = nn.ModuleList(layers)
        self.level = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.levels[self.level](x)


class LevelSharingChoice(BaseMutable):
    """The head's weight-sharing level ``s`` (choices ``0 .. num_layers``):
    tower layers with index ``< s`` have separate weights per FPN level,
    the others are shared by the levels (NAS-FCOS's head search; ``s = 0``
    is FCOS's head, shared throughout). The decision sits at the head
    (``level_sharing``); every tower layer is a :class:`LevelSharedLayer`
    that follows it. It has no weights and no forward of its own; its
    export is an empty module."""

    def __init__(self, num_layers: int, init_cfg=None) -> None:
        super().__init__(list(range(num_layers + 1)), init_cfg)

    def forward(self, x):
        raise RuntimeError('LevelSharingChoice is a decision only: the tower '
                           'layers (LevelSharedLayer) follow it')

    def export_module(self) -> nn.Module:
        return nn.Identity()

    def export_cfg(self) -> dict:
        return dict(share_level=self.current_choice)


class LevelSharedLayer(BaseMutable):
    """Tower layer ``index``, following the head's
    :class:`LevelSharingChoice`: ``shared`` (the layer, an op choice)
    where ``index >= s``, else ``per_level`` (one copy per level, each
    copy's op choices tied to the shared layer's: one op decision, weights
    per level). Fixed or sampled mode only. The export is the plain shared
    layer or a :class:`PerLevel` of the plain copies."""

    def __init__(self, layer: nn.Module, index: int,
                 decision: LevelSharingChoice, num_levels: int) -> None:
        super().__init__(decision.choices)
        self.index = index
        self.shared = layer
        leaders = {  # mutables the layer's mutables follow: not copied
            id(m.decider): m.decider
            for m in layer.modules() if isinstance(m, BaseMutable) and m.tied
        }
        copies = []
        for _ in range(num_levels):
            level = copy.deepcopy(layer, dict(leaders))
            for mine, theirs in zip(level.modules(), layer.modules()):
                if isinstance(mine, BaseMutable):  # one op decision
                    mine.tie_to(theirs.decider)
            copies.append(level)
        self.per_level = PerLevel(copies)
        self.tie_to(decision)

    def _chosen(self) -> nn.Module:
        if self.mode not in ('fixed', 'sampled'):
            raise ValueError(
                'the weight-sharing level (LevelSharedLayer) '
                f'runs in fixed or sampled mode, got {self.mode!r}')
        return self.per_level if self.index < self.current_choice \
            else self.shared

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._chosen()(x)

    def export_module(self) -> nn.Module:
        return self._chosen()

    def spread_inherited(self) -> str:
        """Copy the shared layer's weights into every level's copy (after
        a plain head's weights were inherited into it), so that a subnet
        with separate levels starts as the shared head."""
        state = self.shared.state_dict()
        for level in self.per_level.levels:
            level.load_state_dict(state)
        return 'the shared layer\'s weights copied to each level'


class LevelFCOSHead(FCOSHead):
    """mmdet's ``FCOSHead`` whose towers may hold per-level layers
    (:class:`PerLevel`): each level's forward first tells them its level.
    Everything else is ``FCOSHead``'s."""

    def forward(self, x):
        per_level = [m for m in self.modules() if isinstance(m, PerLevel)]

        def forward_level(feat, scale, stride, level: int):
            for m in per_level:
                m.level = level
            return self.forward_single(feat, scale, stride)

        return multi_apply(forward_level, x, self.scales, self.strides,
                           list(range(len(x))))


def make_levels_separable(head: nn.Module) -> LevelSharingChoice:
    """Wrap every tower layer of ``head`` (``cls_convs`` / ``reg_convs``,
    ``ModuleList`` towers) in a :class:`LevelSharedLayer` following one new
    :class:`LevelSharingChoice`, ``head.level_sharing``."""
    towers = [getattr(head, t) for t in ('cls_convs', 'reg_convs')]
    if not all(isinstance(t, nn.ModuleList) for t in towers):
        raise ValueError('the weight-sharing level needs towers of fixed '
                         'depth (no tower_depths)')
    head.level_sharing = LevelSharingChoice(len(towers[0]))
    for tower in towers:
        for i in range(len(tower)):
            tower[i] = LevelSharedLayer(tower[i], i, head.level_sharing,
                                        len(head.strides))
    return head.level_sharing
