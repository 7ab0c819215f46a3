"""Weights warm-up for differentiable search: alpha frozen at first."""
import math
from typing import Optional

import torch
from mmengine.hooks import Hook

from mmnas_tricks.registry import HOOKS
from .darts_hook import DartsHook
from .utils import check_companions, hooks_named, unwrap_model


@HOOKS.register_module()
class ArchWarmupHook(Hook):
    """Train only the weights for the first part of a differentiable search,
    then alpha too (docs/tricks.md, T1.1; the Bag of Tricks recommends the
    first half of the budget, PC-DARTS 15 of 50 epochs): the :class:`DartsHook`
    of the runner takes no architecture step (no batch drawn, its Adam
    state untouched) until the warm-up ends. The mixed ops keep using
    softmax(alpha) at its initial (near uniform) value meanwhile.

    With ``uniform_mix=True`` the mixed ops also use uniform weights
    ``1 / n`` instead of softmax(alpha) during the warm-up (every candidate
    trained alike, as DARTS's initial alpha only approximately gives).

    The warm-up is ``warmup_epochs`` epochs, or ``warmup_iters``
    iterations, or else ``ceil(warmup_ratio * max_epochs)`` epochs
    (``by_epoch=True``) / ``ceil(warmup_ratio * max_iters)`` iterations.
    The state is logged as ``train/arch_update_enabled`` (0 / 1).

    Args:
        warmup_ratio (float): Fraction of training. Defaults to 0.5.
        warmup_epochs (int, optional): Epochs instead. Defaults to None.
        warmup_iters (int, optional): Iterations instead. Defaults to None.
        by_epoch (bool): With ``warmup_ratio``: count epochs (the switch
            happens at an epoch boundary) rather than iterations. Defaults
            to True.
        uniform_mix (bool): Mix uniformly during the warm-up. Defaults to
            False.

    Example:
        >>> custom_hooks = [
        ...     dict(type='mmnas_tricks.DartsHook', arch_dataloader=...),
        ...     dict(type='mmnas_tricks.ArchWarmupHook', warmup_epochs=15)]
    """

    priority = 'HIGH'  # before DartsHook's architecture step
    search_only = True

    def __init__(self,
                 warmup_ratio: float = 0.5,
                 warmup_epochs: Optional[int] = None,
                 warmup_iters: Optional[int] = None,
                 by_epoch: bool = True,
                 uniform_mix: bool = False) -> None:
        if warmup_epochs is not None and warmup_iters is not None:
            raise ValueError(f'give warmup_epochs={warmup_epochs} or '
                             f'warmup_iters={warmup_iters}, not both')
        for name, value in (('warmup_epochs', warmup_epochs), ('warmup_iters',
                                                               warmup_iters)):
            if value is not None and value < 0:
                raise ValueError(f'{name}={value} must be >= 0')
        if not 0.0 <= warmup_ratio <= 1.0:
            raise ValueError(f'warmup_ratio={warmup_ratio} is not in [0, 1]')
        self.warmup_ratio = warmup_ratio
        self.warmup_epochs = warmup_epochs
        self.warmup_iters = warmup_iters
        self.by_epoch = by_epoch
        self.uniform_mix = uniform_mix
        self._darts: Optional[DartsHook] = None

    def before_train(self, runner) -> None:
        check_companions(
            self,
            runner,
            requires=('DartsHook', ),
            conflicts=('ArchPerturbHook', ) if self.uniform_mix else (),
            why='both replace the mixing weights (uniform_mix=True)')
        self._darts = hooks_named(runner, 'DartsHook')[0]

    def in_warmup(self, runner) -> bool:
        """Whether the current iteration is still in the warm-up."""
        if self.warmup_iters is not None:
            return runner.iter < self.warmup_iters
        if self.warmup_epochs is not None:
            return runner.epoch < self.warmup_epochs
        if self.by_epoch:
            return runner.epoch < math.ceil(
                self.warmup_ratio * runner.max_epochs)
        return runner.iter < math.ceil(self.warmup_ratio * runner.max_iters)

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch=None) -> None:
        enabled = not self.in_warmup(runner)
        self._darts.arch_update_enabled = enabled
        if self.uniform_mix:
            model = unwrap_model(runner)
            for m in self._darts.mutables(model).values():
                if enabled:
                    m.release_weights(self)
                else:
                    m.override_weights(
                        torch.full((m.num_choices, ),
                                   1.0 / m.num_choices,
                                   device=m.arch_alpha.device), self)
        runner.message_hub.update_scalar('train/arch_update_enabled',
                                         float(enabled))
