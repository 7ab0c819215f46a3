"""Single-path one-shot training: a subnet per iteration (SPOS uniform,
sandwich, FairNAS)."""
import json
import os.path as osp
import random
from typing import Optional, Sequence, Union

from mmengine.dist import get_rank, is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log

from mmnas_tricks.models.mutables import (extreme_subnet, get_subnet,
                                          named_mutables, sample_subnet,
                                          set_subnet)
from mmnas_tricks.registry import HOOKS
from mmnas_tricks.structures import subnet_key
from mmnas_tricks.utils.io import atomic_write_text
from .utils import unwrap_model

EVAL_SUBNETS = ('first', 'last', 'keep')
STRATEGIES = ('uniform', 'sandwich', 'fair')


@HOOKS.register_module()
class SampleSubnetHook(Hook):
    """Set a subnet before every training iteration (single-path one-shot
    supernet training; docs/tricks.md, T1.4):

    - ``'uniform'``: every mutable uniformly at random (SPOS, Guo et al.,
      ECCV 2020);
    - ``'sandwich'``: the largest, the smallest and a random subnet in turn
      (the sandwich rule of BigNAS / Yu et al., ICCV 2019, one subnet per
      iteration rather than accumulated in one step);
    - ``'fair'``: every mutable with n choices takes each of them exactly
      once in every block of n iterations, in a random order (FairNAS's
      strict fairness, Chu et al., ICCV 2021, per iteration).

    With ``flops_window=(low, high)`` the random subnets (every draw of
    ``'uniform'``, the third of ``'sandwich'``) come from a pool of subnets
    whose FLOPs lie within ``low`` to ``high`` times the first subnet's (the
    baseline of our spaces): ``pool_size`` random subnets drawn once, before
    training, from ``seed`` alone, counted at the config's input size, and
    those inside the window kept (written to
    ``<work_dir>/subnet_pool.json``). The supernet then trains the region a
    FLOPs-constrained search scores instead of the middle of the space,
    where uniform sampling puts most subnets. The sandwich's largest and
    smallest subnets stay the space's.

    The subnet of iteration ``t`` is a function of ``seed`` and ``t`` only
    (``random.Random(f'{seed}-{t}')``): every rank of a distributed run sets
    the same subnet without communicating, and a resumed run continues the
    same sequence (no state to save). Before validation and testing the
    model is set to ``eval_subnet``, and the training subnet is restored
    afterwards.

    Args:
        seed (int): Seed of the subnet sequence. Defaults to 0.
        strategy (str): ``'uniform'``, ``'sandwich'`` or ``'fair'``.
            Defaults to ``'uniform'``.
        include (str | Sequence[str], optional): fnmatch patterns of the
            mutables to sample (others keep their choice: sequential
            search). Defaults to None (all).
        trace (bool): Every rank writes the subnets it set, one JSON line
            per iteration, to ``<work_dir>/subnet_trace/rank{r}.jsonl`` at
            the end of training (to check that the ranks agree). Defaults to
            False.
        eval_subnet (str | dict): ``'first'`` (every mutable's first
            choice: the plain architecture in the heads and FPN necks),
            ``'last'``, ``'keep'`` (the last sampled) or a subnet dict.
            Defaults to ``'first'``.
        fixed (dict, optional): ``{mutable name: choice}`` pinned for the
            whole run (set and switched to ``fixed`` mode before training,
            so they are never sampled and keep their choice in validation):
            a few-shot sub-supernet (docs/tricks.md, T5.1,
            :mod:`mmnas_tricks.engine.few_shot`). Defaults to None.
        flops_window (Sequence[float], optional): ``(low, high)``, FLOPs as
            fractions of the first subnet's, of the random subnets. Defaults
            to None (the whole space).
        pool_size (int): Random subnets drawn for the window's pool.
            Defaults to 200.
        input_shape (Sequence[int], optional): (C, H, W) the pool's FLOPs
            are counted at. Defaults to None: the config's
            (:func:`~mmnas_tricks.models.resources.input_size`).

    Example:
        >>> custom_hooks = [dict(type='mmnas_tricks.SampleSubnetHook', seed=0)]
    """

    priority = 'NORMAL'
    search_only = True  # dropped from exported configs

    def __init__(self,
                 seed: int = 0,
                 strategy: str = 'uniform',
                 include: Optional[Union[str, Sequence[str]]] = None,
                 eval_subnet: Union[str, dict] = 'first',
                 trace: bool = False,
                 fixed: Optional[dict] = None,
                 flops_window: Optional[Sequence[float]] = None,
                 pool_size: int = 200,
                 input_shape: Optional[Sequence[int]] = None) -> None:
        if not isinstance(eval_subnet,
                          dict) and eval_subnet not in EVAL_SUBNETS:
            raise ValueError(f'eval_subnet={eval_subnet!r} is not a subnet '
                             f'dict or one of {list(EVAL_SUBNETS)}')
        if strategy not in STRATEGIES:
            raise ValueError(f'strategy={strategy!r} is not one of '
                             f'{list(STRATEGIES)}')
        self.seed = int(seed)
        self.strategy = strategy
        self.trace = trace
        self._trace: list = []
        self.include = include
        self.eval_subnet = eval_subnet
        if fixed is not None and not isinstance(fixed, dict):
            raise TypeError(f'fixed must be a dict mutable name -> choice, '
                            f'got {type(fixed).__name__}')
        self.fixed = dict(fixed or {})
        self._train_subnet = None
        self.flops_window = None
        if flops_window is not None:
            window = tuple(flops_window)
            if len(window) != 2 or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool)
                    for v in window) or not 0 <= window[0] < window[1]:
                raise ValueError(f'flops_window={flops_window!r} must be '
                                 '(low, high) with 0 <= low < high')
            if strategy == 'fair':
                raise ValueError('flops_window does not combine with '
                                 "strategy='fair' (its choices are "
                                 'balanced per mutable, not drawn)')
            if include is not None or fixed:
                raise ValueError('flops_window does not combine with '
                                 'include or fixed (the pool is of whole '
                                 'subnets)')
            if int(pool_size) != pool_size or pool_size < 1:
                raise ValueError(f'pool_size={pool_size!r} must be a '
                                 'positive int')
            self.flops_window = tuple(float(v) for v in window)
        self.pool_size = int(pool_size)
        self.input_shape = input_shape
        self.pool: Optional[list] = None

    @staticmethod
    def _model(runner):
        return unwrap_model(runner)

    def before_train(self, runner) -> None:
        if self.fixed:
            self.pin(self._model(runner))
        if not named_mutables(self._model(runner), searchable_only=True):
            raise ValueError('SampleSubnetHook found no searchable mutable in '
                             'the model; is a searchable backbone, neck or '
                             'head in the config?')
        if self.flops_window is not None and self.pool is None:
            from mmnas_tricks.models.resources import input_size
            size = input_size(runner.cfg, self.input_shape)
            records = self.build_pool(self._model(runner), size.shape)
            low, high = self.flops_window
            print_log(
                f'SampleSubnetHook: {len(self.pool)} of {self.pool_size} '
                f'random subnets within {low:g}-{high:g}x the first '
                f"subnet's FLOPs (at {size}); the random subnets are drawn "
                'from them',
                logger='current')
            if is_main_process():
                from mmnas_tricks.utils import dump_json_atomic
                dump_json_atomic(
                    dict(
                        flops_window=[low, high],
                        pool_size=self.pool_size,
                        seed=self.seed,
                        input_size=size.hw,
                        subnets=records),
                    osp.join(runner.work_dir, 'subnet_pool.json'))

    def build_pool(self, model, input_shape: Sequence[int]) -> list:
        """Draw ``pool_size`` random subnets from ``seed`` (whole subnets,
        duplicates dropped), keep those within ``flops_window`` (FLOPs at
        ``input_shape`` over the first subnet's) as :attr:`pool`, and return
        every drawn one as ``{'subnet': key, 'flops_ratio': r, 'kept':
        bool}``."""
        from mmnas_tricks.models.inherit import plain_subnet
        from mmnas_tricks.models.resources import ResourceTable
        table = ResourceTable(model, input_shape)
        base = table(plain_subnet(model))['flops']
        rng = random.Random(f'{self.seed}-pool')
        low, high = self.flops_window
        drawn, records, pool = set(), [], []
        for _ in range(self.pool_size):
            subnet = sample_subnet(model, rng, apply=False)
            key = subnet_key(subnet)
            if key in drawn:
                continue
            drawn.add(key)
            ratio = table(subnet)['flops'] / base
            kept = low <= ratio <= high
            records.append(
                dict(subnet=key, flops_ratio=round(ratio, 4), kept=kept))
            if kept:
                pool.append(subnet)
        if not pool:
            ratios = [r['flops_ratio'] for r in records]
            raise ValueError(
                f'SampleSubnetHook: none of {len(records)} random subnets '
                f'is within flops_window={list(self.flops_window)} (their '
                f'FLOPs are {min(ratios):.2f}-{max(ratios):.2f}x the first '
                "subnet's); widen the window or raise pool_size")
        self.pool = pool
        return records

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch=None) -> None:
        model = self._model(runner)
        set_subnet(model, self.subnet_at(model, runner.iter))
        if self.trace:
            self._trace.append(
                json.dumps(
                    dict(
                        iter=runner.iter,
                        subnet=subnet_key(get_subnet(model)))))

    def pin(self, model) -> None:
        """Set the ``fixed`` choices and switch those mutables to fixed
        mode (validated first: an unknown name or a choice that is not a
        candidate raises :class:`SubnetError` naming the valid ones)."""
        set_subnet(model, self.fixed, strict=False)
        mutables = named_mutables(model)
        for name in self.fixed:
            mutables[name].set_mode('fixed')

    def after_train(self, runner) -> None:
        if self.trace:
            path = osp.join(runner.work_dir, 'subnet_trace',
                            f'rank{get_rank()}.jsonl')
            atomic_write_text(path, '\n'.join(self._trace) + '\n')

    def subnet_at(self, model, it: int) -> dict:
        """The (whole) subnet this hook sets at iteration ``it``."""
        rng = random.Random(f'{self.seed}-{it}')
        if self.strategy == 'uniform' or (self.strategy == 'sandwich'
                                          and it % 3 == 2):
            if self.pool is not None:
                return dict(self.pool[rng.randrange(len(self.pool))])
            return sample_subnet(model, rng, include=self.include, apply=False)
        subnet = get_subnet(model)
        sampled = named_mutables(model, self.include, searchable_only=True)
        if self.strategy == 'sandwich':
            extreme = extreme_subnet(model, 'max' if it % 3 == 0 else 'min')
            subnet.update({n: extreme[n] for n in sampled})
            return subnet
        for name, m in sampled.items():  # fair
            n = m.num_choices
            order = random.Random(f'{self.seed}-{name}-{it // n}').sample(
                range(n), n)
            subnet[name] = m.choices[order[it % n]]
        return subnet

    def _eval_subnet(self, model) -> dict:
        if isinstance(self.eval_subnet, dict):
            return dict(self.eval_subnet)
        mutables = named_mutables(model)
        index = 0 if self.eval_subnet == 'first' else -1
        # fixed mutables (e.g. a finished stage of a sequential search)
        # keep their choice
        return {
            n: m.current_choice if m.mode == 'fixed' else m.choices[index]
            for n, m in mutables.items()
        }

    def _enter_eval(self, runner) -> None:
        model = self._model(runner)
        self._train_subnet = get_subnet(model)
        if self.eval_subnet != 'keep':
            set_subnet(model, self._eval_subnet(model))

    def _leave_eval(self, runner) -> None:
        if self._train_subnet is not None:
            set_subnet(self._model(runner), self._train_subnet)
            self._train_subnet = None

    def before_val_epoch(self, runner) -> None:
        self._enter_eval(runner)

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._leave_eval(runner)

    def before_test_epoch(self, runner) -> None:
        self._enter_eval(runner)

    def after_test_epoch(self, runner, metrics=None) -> None:
        self._leave_eval(runner)
