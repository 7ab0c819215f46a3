"""DARTS-: an auxiliary skip connection beside every mixed op, fading out."""
import math
from typing import Optional, Sequence, Union

import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log

from mmnas_tricks.registry import HOOKS
from .utils import check_companions, progress, trick_mutables

DECAYS = ('linear', 'cosine', 'slow_cosine')


@HOOKS.register_module()
class AuxSkipHook(Hook):
    """DARTS- (Chu et al., "DARTS-: Robustly Stepping out of Performance
    Collapse Without Indicators", ICLR 2021; docs/tricks.md, T2.5): every
    mixed op of a differentiable supernet returns ``mix(x) + beta * x``, an
    auxiliary skip connection outside the search (no alpha), whose weight
    ``beta`` decays from ``beta0`` to 0, so that the searchable skip
    candidate no longer wins for its gradient flow alone.

    ``beta(t) = beta0 * f(t / (T - end_offset))`` with ``f`` linear
    (``1 - s``), ``cosine`` (``(1 + cos(pi s)) / 2``) or ``slow_cosine``
    (``cos(pi s / 2)``), logged as ``train/aux_skip_beta``. With the default
    ``end_offset=1`` the last epoch runs with ``beta = 0`` (the paper's
    "decays to 0"; the reference code stops at ``beta0 / E``, which
    ``end_offset=0`` gives). The skip is added only where a mutable's
    output has its input's shape (stride 1, same channels); others are
    listed in the log at the start. It never enters the argmax subnet or
    the exported model, and is off in eval mode.

    Args:
        beta0 (float): Initial weight. Defaults to 1.0.
        decay (str): ``'linear'``, ``'cosine'`` or ``'slow_cosine'``.
            Defaults to ``'linear'`` (the paper's script).
        by_epoch (bool): Step per epoch (DARTS-). Defaults to True.
        end_offset (int): See above, 0 or 1. Defaults to 1.
        include (str | Sequence[str], optional): fnmatch patterns of the
            mutables. Defaults to None (every differentiable one).

    Example:
        >>> custom_hooks = [
        ...     dict(type='mmnas_tricks.DartsHook', arch_dataloader=...),
        ...     dict(type='mmnas_tricks.AuxSkipHook', beta0=1.0)]
    """

    priority = 'HIGH'  # set before DartsHook's arch step uses the mixed ops
    search_only = True

    def __init__(self,
                 beta0: float = 1.0,
                 decay: str = 'linear',
                 by_epoch: bool = True,
                 end_offset: int = 1,
                 include: Optional[Union[str, Sequence[str]]] = None) -> None:
        if decay not in DECAYS:
            raise ValueError(f'decay={decay!r} is not one of {list(DECAYS)}')
        if beta0 < 0:
            raise ValueError(f'beta0={beta0} must be >= 0')
        if end_offset not in (0, 1):
            raise ValueError(f'end_offset={end_offset} is not 0 or 1')
        self.beta0 = float(beta0)
        self.decay = decay
        self.by_epoch = by_epoch
        self.end_offset = end_offset
        self.include = include
        #: the current weight of the auxiliary skip (0 outside training)
        self.aux_skip_beta = 0.0
        self._handles: dict = {}

    def before_train(self, runner) -> None:
        check_companions(self, runner, requires=('DartsHook', ))
        self._remove()
        mutables = trick_mutables(self, runner, self.include, 'differentiable')
        self.attach(mutables.values())
        shapes = [
            n for n, m in mutables.items() if getattr(m, 'stride', 1) != 1 or
            getattr(m, 'in_channels', None) != getattr(m, 'out_channels', None)
        ]
        if shapes:
            print_log(
                'AuxSkipHook: no auxiliary skip where the output '
                f'shape differs from the input: {shapes}',
                logger='current')

    def beta(self, runner) -> float:
        s = progress(runner, self.by_epoch, self.end_offset)
        if s >= 1.0:
            return 0.0
        if self.decay == 'linear':
            f = 1.0 - s
        elif self.decay == 'cosine':
            f = (1.0 + math.cos(math.pi * s)) / 2.0
        else:
            f = math.cos(math.pi * s / 2.0)
        return self.beta0 * max(f, 0.0)

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch=None) -> None:
        self.aux_skip_beta = self.beta(runner)
        # the differentiable ones now (a sequential search changes them)
        mutables = trick_mutables(
            self, runner, self.include, 'differentiable', required=False)
        self.attach(mutables.values())
        runner.message_hub.update_scalar('train/aux_skip_beta',
                                         self.aux_skip_beta)

    def attach(self, mutables) -> None:
        """Act on ``mutables`` (a forward hook on each not hooked yet,
        removed after training)."""
        for m in mutables:
            if id(m) not in self._handles:
                self._handles[id(m)] = m.register_forward_hook(self._skip)

    def acts_on(self, mutable) -> bool:
        """Whether the skip is added to ``mutable``'s output now."""
        return id(mutable) in self._handles and self.aux_skip_beta > 0 \
            and mutable.mode == 'differentiable'

    def _skip(self, module, args, output):
        """Forward hook: ``beta * input`` added to a differentiable
        mutable's output while training, where the shapes match."""
        beta = self.aux_skip_beta
        if beta <= 0 or not module.training or \
                module.mode != 'differentiable' or not torch.is_tensor(output):
            return None
        x = args[0] if args else None
        if torch.is_tensor(x) and x.shape == output.shape:
            return output + beta * x
        return None

    def _remove(self) -> None:
        for handle in self._handles.values():
            handle.remove()
        self._handles = {}

    def after_train(self, runner) -> None:
        self.aux_skip_beta = 0.0
        self._remove()
