"""Single-path one-shot training: a random subnet per iteration (SPOS)."""
import random
from typing import Optional, Sequence, Union

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmnas_tricks.models.mutables import (get_subnet, named_mutables,
                                          sample_subnet, set_subnet)
from mmnas_tricks.registry import HOOKS

EVAL_SUBNETS = ('first', 'last', 'keep')


@HOOKS.register_module()
class SampleSubnetHook(Hook):
    """Set a uniformly sampled subnet before every training iteration
    (single-path one-shot, Guo et al., ECCV 2020 "SPOS"; TRICKS.md T1.4).

    The subnet of iteration ``t`` is drawn from ``random.Random(f'{seed}-{t}')``:
    every rank of a distributed run draws the same subnet without
    communicating, and a resumed run continues the same sequence. Before
    validation and testing the model is set to ``eval_subnet``, and the
    training subnet is restored afterwards.

    Args:
        seed (int): Seed of the subnet sequence. Defaults to 0.
        include (str | Sequence[str], optional): fnmatch patterns of the
            mutables to sample (others keep their choice: sequential
            search). Defaults to None (all).
        eval_subnet (str | dict): ``'first'`` (every mutable's first
            choice: the plain architecture in the heads and FPN necks),
            ``'last'``, ``'keep'`` (the last sampled) or a subnet dict.
            Defaults to ``'first'``.

    Example:
        >>> custom_hooks = [dict(type='mmnas_tricks.SampleSubnetHook', seed=0)]
    """

    priority = 'NORMAL'
    search_only = True  # dropped from exported configs

    def __init__(self,
                 seed: int = 0,
                 include: Optional[Union[str, Sequence[str]]] = None,
                 eval_subnet: Union[str, dict] = 'first') -> None:
        if not isinstance(eval_subnet, dict) and eval_subnet not in EVAL_SUBNETS:
            raise ValueError(f'eval_subnet={eval_subnet!r} is not a subnet '
                             f'dict or one of {list(EVAL_SUBNETS)}')
        self.seed = int(seed)
        self.include = include
        self.eval_subnet = eval_subnet
        self._train_subnet = None

    @staticmethod
    def _model(runner):
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    def before_train(self, runner) -> None:
        if not named_mutables(self._model(runner), searchable_only=True):
            raise ValueError('SampleSubnetHook found no searchable mutable in '
                             'the model; is a searchable backbone, neck or '
                             'head in the config?')

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        rng = random.Random(f'{self.seed}-{runner.iter}')
        sample_subnet(self._model(runner), rng, include=self.include)

    def _eval_subnet(self, model) -> dict:
        if isinstance(self.eval_subnet, dict):
            return dict(self.eval_subnet)
        mutables = named_mutables(model)
        index = 0 if self.eval_subnet == 'first' else -1
        return {n: m.choices[index] for n, m in mutables.items()}

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
