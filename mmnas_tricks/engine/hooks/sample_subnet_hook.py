"""Single-path one-shot training: a subnet per iteration (SPOS uniform,
sandwich, FairNAS)."""
import json
import os.path as osp
import random
from typing import Optional, Sequence, Union

from mmengine.dist import get_rank
from mmengine.hooks import Hook

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
    supernet training; TRICKS.md T1.4):

    - ``'uniform'``: every mutable uniformly at random (SPOS, Guo et al.,
      ECCV 2020);
    - ``'sandwich'``: the largest, the smallest and a random subnet in turn
      (the sandwich rule of BigNAS / Yu et al., ICCV 2019, one subnet per
      iteration rather than accumulated in one step);
    - ``'fair'``: every mutable with n choices takes each of them exactly
      once in every block of n iterations, in a random order (FairNAS's
      strict fairness, Chu et al., ICCV 2021, per iteration).

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
            a few-shot sub-supernet (TRICKS.md T5.1,
            :mod:`mmnas_tricks.engine.few_shot`). Defaults to None.

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
                 fixed: Optional[dict] = None) -> None:
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
