"""Scheduled drop path on the searchable mutables' outputs."""
from typing import Optional, Sequence, Union

import torch
from mmengine.hooks import Hook

from mmnas_tricks.models.mutables import drop_path
from mmnas_tricks.registry import HOOKS
from .utils import progress, trick_mutables


@HOOKS.register_module()
class DropPathHook(Hook):
    """ScheduledDropPath on candidate ops (Zoph et al., "Learning
    Transferable Architectures", CVPR 2018; DARTS; search-phase variant of
    RobustDARTS, Zela et al., ICLR 2020; docs/tricks.md, T2.1).

    The output of every searchable mutable (the mixed edge in
    ``differentiable`` / ``all_on`` mode, the chosen candidate otherwise) is
    zeroed for a random subset of the examples and the rest scaled by
    ``1 / (1 - p)``; a chosen skip connection is never dropped, and nothing
    is dropped in eval mode. ``p = p_max * t / (T - end_offset)``, logged
    as ``train/drop_path_prob``; back to 0 after training.

    Works with every sampling and differentiable hook.

    Args:
        p_max (float): Final probability, in [0, 1). Defaults to 0.2
            (DARTS).
        by_epoch (bool): Step per epoch (as DARTS). Defaults to True.
        end_offset (int): 0: the last epoch runs at ``p_max * (E-1) / E``
            (DARTS); 1: at ``p_max`` (RobustDARTS). Defaults to 0.
        include (str | Sequence[str], optional): fnmatch patterns of the
            mutables. Defaults to None (every searchable one).

    Example:
        >>> custom_hooks = [dict(type='mmnas_tricks.DropPathHook', p_max=0.2)]
    """

    priority = 'NORMAL'
    search_only = True

    def __init__(self,
                 p_max: float = 0.2,
                 by_epoch: bool = True,
                 end_offset: int = 0,
                 include: Optional[Union[str, Sequence[str]]] = None) -> None:
        if not 0.0 <= p_max < 1.0:
            raise ValueError(f'p_max={p_max} is not in [0, 1)')
        if end_offset not in (0, 1):
            raise ValueError(f'end_offset={end_offset} is not 0 or 1')
        self.p_max = float(p_max)
        self.by_epoch = by_epoch
        self.end_offset = end_offset
        self.include = include
        #: the current probability (0 outside training)
        self.drop_path_prob = 0.0
        self._handles: list = []

    def before_train(self, runner) -> None:
        self._remove()
        self.attach(trick_mutables(self, runner, self.include).values())

    def attach(self, mutables) -> None:
        """Act on ``mutables`` (a forward hook on each, removed after
        training): what ``before_train`` does for the searchable ones."""
        # first among a mutable's forward hooks (drop path, then DARTS-'s
        # auxiliary skip, as DARTS- applies them)
        self._handles += [
            m.register_forward_hook(self._drop, prepend=True) for m in mutables
        ]

    def _drop(self, module, args, output):
        """Forward hook of each mutable: its output dropped per example
        while training (not a chosen skip, not a container of mutables)."""
        p = self.drop_path_prob
        if p <= 0 or not module.training or not torch.is_tensor(output) \
                or module.wraps_mutables or module.chosen_is_skip():
            return None
        return drop_path(output, p)

    def prob(self, runner) -> float:
        return self.p_max * progress(runner, self.by_epoch, self.end_offset)

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch=None) -> None:
        self.drop_path_prob = self.prob(runner)
        runner.message_hub.update_scalar('train/drop_path_prob',
                                         self.drop_path_prob)

    def _remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def after_train(self, runner) -> None:
        self.drop_path_prob = 0.0
        self._remove()
