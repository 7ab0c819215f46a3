"""Scheduled drop path on the searchable mutables' outputs."""
from typing import Optional, Sequence, Union

from mmengine.hooks import Hook

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
        self._mutables = {}

    def before_train(self, runner) -> None:
        self._mutables = trick_mutables(self, runner, self.include)

    def prob(self, runner) -> float:
        return self.p_max * progress(runner, self.by_epoch, self.end_offset)

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch=None) -> None:
        p = self.prob(runner)
        for m in self._mutables.values():
            m.drop_path_prob = p
        runner.message_hub.update_scalar('train/drop_path_prob', p)

    def after_train(self, runner) -> None:
        for m in self._mutables.values():
            m.drop_path_prob = 0.0
