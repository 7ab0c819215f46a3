"""What the trick hooks share: the unwrapped model, their companions in the
runner, and the training progress their schedules follow."""
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper


def unwrap_model(runner) -> nn.Module:
    """``runner.model`` without its DDP (or other) wrapper."""
    model = runner.model
    return model.module if is_model_wrapper(model) else model


def batch_loss(model: nn.Module, data_batch) -> torch.Tensor:
    """The total loss of ``data_batch`` (an mmengine model: its data
    preprocessor in training mode, ``mode='loss'``, ``parse_losses``), with
    the graph kept: what the architecture tricks differentiate."""
    data = model.data_preprocessor(data_batch, True)
    losses = model(**data, mode='loss')
    loss, _ = model.parse_losses(losses)
    return loss


def hooks_named(runner, name: str) -> List[Hook]:
    """The runner's hooks whose class is ``name`` (or derives from it)."""
    return [
        h for h in runner.hooks
        if any(c.__name__ == name for c in type(h).__mro__)
    ]


def hook_configs(hooks: Optional[Sequence[dict]], name: str) -> List[dict]:
    """The hook configs of type ``name`` (scoped, ``mmnas_tricks.X``, or
    not) in ``hooks``, a config's ``custom_hooks`` list."""
    return [
        h for h in hooks or [] if str(h.get('type', '')).split('.')[-1] == name
    ]


def check_companions(hook: Hook,
                     runner,
                     requires: Sequence[str] = (),
                     conflicts: Sequence[str] = (),
                     why: str = '') -> None:
    """Raise a ``ValueError`` naming both hooks when ``hook`` meets a hook
    it cannot run with, or misses one it needs (each trick hook calls this
    in ``before_train``: a config with every trick on either runs or says
    which two collide).

    Args:
        hook (Hook): The calling hook.
        runner: The runner.
        requires (Sequence[str]): Class names of hooks that must be there.
        conflicts (Sequence[str]): Class names of hooks that must not.
        why (str): The reason, appended to a conflict's message.
    """
    me = type(hook).__name__
    for name in conflicts:
        if hooks_named(runner, name):
            raise ValueError(f'{me} cannot be combined with {name} in one '
                             f'run' + (f': {why}' if why else ''))
    for name in requires:
        if not hooks_named(runner, name):
            raise ValueError(f'{me} needs a {name} in custom_hooks')


def progress(runner, by_epoch: bool, end_offset: int = 0) -> float:
    """``t / (T - end_offset)`` clipped to [0, 1]: ``t`` the current epoch
    (``by_epoch``, constant within an epoch) or iteration, ``T`` their
    number. ``end_offset=1`` makes the last epoch / iteration reach 1."""
    if by_epoch:
        t, total = runner.epoch, runner.max_epochs
    else:
        t, total = runner.iter, runner.max_iters
    span = total - end_offset
    if span <= 0:
        return 1.0
    return min(max(t / span, 0.0), 1.0)


def trick_mutables(hook: Hook,
                   runner,
                   include=None,
                   mode: Optional[str] = None,
                   required: bool = True) -> Dict[str, nn.Module]:
    """The searchable mutables (not ``fixed``) of the runner's model that
    ``hook`` acts on: matching ``include`` and, if given, in ``mode``.
    Raises a ``ValueError`` naming the hook when there is none and
    ``required``."""
    from mmnas_tricks.models.mutables import named_mutables
    found = {
        n: m
        for n, m in named_mutables(
            unwrap_model(runner), include, searchable_only=True).items()
        if mode is None or m.mode == mode
    }
    if required and not found:
        raise ValueError(
            f'{type(hook).__name__} found no searchable' +
            (f' {mode}' if mode else '') + ' mutable' +
            (f' matching include={include!r}' if include else '') +
            '; is a searchable backbone, neck or head in the config?')
    return found
