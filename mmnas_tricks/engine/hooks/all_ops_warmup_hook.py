"""TuNAS warm-up: all candidates on, with a probability decaying to 0."""
import random
from typing import Optional, Sequence, Union

from mmengine.hooks import Hook

from mmnas_tricks.models.mutables import ChannelChoice, named_mutables
from mmnas_tricks.registry import HOOKS
from .utils import (check_companions, hooks_named, progress, trick_mutables,
                    unwrap_model)


@HOOKS.register_module()
class AllOpsWarmupHook(Hook):
    """Warm up a single-path supernet with every candidate on (Bender et
    al., "Can Weight Sharing Outperform Random Architecture Search?", CVPR
    2020 (TuNAS); docs/tricks.md, T1.3).

    During the first ``warmup_ratio`` of training, each searchable mutable
    independently runs, with probability ``p_all(t) = 1 - t / T_w``, every
    candidate with its output averaged (``all_on`` mode with
    ``average=True``), and otherwise the candidate the
    :class:`SampleSubnetHook` sampled. Width choices (``ChannelChoice``) take
    their largest width instead of a mix (TuNAS's filter warm-up). After the
    warm-up ``p_all = 0``: plain single-path training. The draws depend on
    ``seed``, the iteration and the mutable only, so every rank agrees. The
    realised fraction of mutables in all-ops mode is logged as
    ``train/all_ops_fraction`` (and ``p_all`` as ``train/all_ops_prob``).
    TuNAS's RL controller (its learning rate is 0 during the warm-up) has no
    counterpart here: searches run after training (T1.4).

    Args:
        warmup_ratio (float): Fraction of training, in (0, 1]. Defaults to
            0.25 (TuNAS).
        by_epoch (bool): Step ``p_all`` per epoch. Defaults to False.
        seed (int): Seed of the draws. Defaults to 0.
        include (str | Sequence[str], optional): fnmatch patterns of the
            mutables warmed up. Defaults to None (every searchable one).

    Example:
        >>> custom_hooks = [
        ...     dict(type='mmnas_tricks.SampleSubnetHook'),
        ...     dict(type='mmnas_tricks.AllOpsWarmupHook', warmup_ratio=0.25)]
    """

    priority = 'BELOW_NORMAL'  # after SampleSubnetHook has set the subnet
    search_only = True

    def __init__(self,
                 warmup_ratio: float = 0.25,
                 by_epoch: bool = False,
                 seed: int = 0,
                 include: Optional[Union[str, Sequence[str]]] = None) -> None:
        if not 0.0 < warmup_ratio <= 1.0:
            raise ValueError(f'warmup_ratio={warmup_ratio} is not in (0, 1]')
        self.warmup_ratio = float(warmup_ratio)
        self.by_epoch = by_epoch
        self.seed = int(seed)
        self.include = include
        self._mutables = {}

    def before_train(self, runner) -> None:
        check_companions(
            self,
            runner,
            requires=('SampleSubnetHook', ),
            conflicts=('DartsHook', 'PathDropoutHook'),
            why='the TuNAS warm-up mixes into single-path sampling')
        self._sampler = hooks_named(runner, 'SampleSubnetHook')[0]
        self._mutables = trick_mutables(self, runner, self.include)

    def all_ops_prob(self, runner) -> float:
        """``p_all(t) = 1 - min(t / T_w, 1)``."""
        return 1.0 - min(
            progress(runner, self.by_epoch) / self.warmup_ratio, 1.0)

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch=None) -> None:
        p_all = self.all_ops_prob(runner)
        on = 0
        # what the sampler samples now (a sequential search holds or fixes
        # the others)
        sampled = set(
            named_mutables(
                unwrap_model(runner),
                self._sampler.include,
                searchable_only=True))
        active = {n: m for n, m in self._mutables.items() if n in sampled}
        for m in self._mutables.values():
            if m.mode == 'all_on' and m.average_paths:  # last iteration's
                m.set_mode('sampled', average=False)
        for name, m in active.items():
            draw = random.Random(f'{self.seed}-{runner.iter}-{name}').random()
            if draw < p_all:
                on += 1
                if isinstance(m, ChannelChoice):
                    m.set_mode('sampled')
                    m.current_choice = max(m.choices)
                else:
                    m.set_mode('all_on', drop_prob=0.0, average=True)
            else:
                m.set_mode('sampled', average=False)
        runner.message_hub.update_scalar('train/all_ops_prob', p_all)
        runner.message_hub.update_scalar('train/all_ops_fraction',
                                         on / max(len(active), 1))

    def _single_path(self, runner=None) -> None:
        for m in self._mutables.values():
            if m.mode == 'all_on':
                m.set_mode('sampled', average=False)

    def before_val_epoch(self, runner) -> None:
        self._single_path()

    def after_train(self, runner) -> None:
        self._single_path()
