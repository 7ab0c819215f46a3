"""Bender-style path dropout: every candidate on, dropped at a rising rate."""
from typing import Optional, Sequence, Union

from mmengine.hooks import Hook

from mmnas_tricks.registry import HOOKS
from .utils import check_companions, progress, trick_mutables


@HOOKS.register_module()
class PathDropoutHook(Hook):
    """Train a one-shot supernet with every candidate on and path dropout
    (Bender et al., "Understanding and Simplifying One-Shot Architecture
    Search", ICML 2018; docs/tricks.md, T1.2).

    The searchable mutables run in ``all_on`` mode: the output is the sum of
    every candidate, each multiplied by a per-example 0/1 mask. The rate
    ``r(t) = r_max * t / T`` rises linearly from 0; a mutable with ``k``
    candidates drops each with probability ``r(t) ** (1 / k)`` (so that,
    before the guard, all ``k`` would be dropped with probability ``r``,
    whatever ``k``), and one random candidate is kept where all were
    dropped: a path is never cut entirely. No rescaling: the evaluation of a
    candidate zeroes the others. The rate is logged as
    ``train/path_dropout_rate``.

    Validation and testing run the single candidates of the current subnet
    (``sampled`` mode); training resumes in ``all_on`` mode.

    Args:
        r_max (float): The final rate, in [0, 1). Defaults to 0.1
            (docs/tricks.md; Bender et al. found 0 and large rates both
            worse).
        by_epoch (bool): Step the rate per epoch rather than per iteration.
            Defaults to False.
        include (str | Sequence[str], optional): fnmatch patterns of the
            mutables trained with all candidates on. Defaults to None (every
            searchable one).

    Example:
        >>> custom_hooks = [dict(type='mmnas_tricks.PathDropoutHook',
        ...                      r_max=0.25)]
    """

    priority = 'NORMAL'
    search_only = True

    def __init__(self,
                 r_max: float = 0.1,
                 by_epoch: bool = False,
                 include: Optional[Union[str, Sequence[str]]] = None) -> None:
        if not 0.0 <= r_max < 1.0:
            raise ValueError(f'r_max={r_max} is not in [0, 1)')
        self.r_max = float(r_max)
        self.by_epoch = by_epoch
        self.include = include
        self._mutables = {}

    def before_train(self, runner) -> None:
        check_companions(
            self,
            runner,
            conflicts=('DartsHook', 'SampleSubnetHook', 'AllOpsWarmupHook'),
            why='path dropout trains every candidate at once; the others '
            'run one candidate (sampling) or a softmax mix (DARTS)')
        self._mutables = trick_mutables(self, runner, self.include)
        self._set_mode('all_on')

    def _set_mode(self, mode: str) -> None:
        for m in self._mutables.values():
            m.set_mode(mode)

    def rate(self, runner) -> float:
        """``r(t)``, the probability that all candidates of a mutable would
        be dropped."""
        return self.r_max * progress(runner, self.by_epoch)

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch=None) -> None:
        r = self.rate(runner)
        for m in self._mutables.values():
            m.set_mode('all_on', drop_prob=r**(1.0 / m.num_choices))
        runner.message_hub.update_scalar('train/path_dropout_rate', r)

    def before_val_epoch(self, runner) -> None:
        self._set_mode('sampled')

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._set_mode('all_on')

    def before_test_epoch(self, runner) -> None:
        self._set_mode('sampled')

    def after_train(self, runner) -> None:
        self._set_mode('sampled')
