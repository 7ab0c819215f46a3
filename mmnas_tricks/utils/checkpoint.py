"""Load mmengine checkpoints on torch >= 2.6 keeping ``weights_only`` on.

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True`` and refuses
every pickled global that is not allow-listed. mmengine 0.10 checkpoints carry
a few such globals in their ``message_hub`` and ``meta`` entries
(``HistoryBuffer`` with numpy arrays and numpy scalars, and
``getattr(HistoryBuffer, 'mean')`` for its statistics methods), so
``--resume``, ``load_from`` and ``tools/test.py`` fail with
``Unsupported global: ...``.

:func:`register_checkpoint_safe_globals` allow-lists exactly those classes
(``torch.serialization.add_safe_globals``), with ``builtins.getattr``
narrowed to those statistics methods; a checkpoint holding any other
pickled object is still refused, and :func:`explain_unsafe_checkpoint` turns
that refusal into an error that says what to do.
"""
import contextlib
import importlib
import pickle
import re
from typing import Iterable, List

import numpy as np
import torch

# Exactly the globals that mmengine 0.10.7 checkpoints of mmdet / mmseg models
# hold besides tensors and builtins, as listed by
# torch.serialization.get_unsafe_globals_in_checkpoint: the message hub's
# HistoryBuffer (numpy arrays; its statistics methods pickled as
# getattr(HistoryBuffer, 'mean') etc.), numpy arrays, scalars and dtypes.
_HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')
_NUMERIC_TYPECODES = (
    np.typecodes['AllInteger'] + np.typecodes['AllFloat'] + '?')


def _history_buffer_getattr(obj, name):
    """Stands in for ``builtins.getattr`` while unpickling: only the
    statistics methods of ``HistoryBuffer`` may be looked up."""
    from mmengine.logging import HistoryBuffer
    allowed = set(_HISTORY_BUFFER_STATISTICS) | set(
        HistoryBuffer._statistics_methods)
    if obj is HistoryBuffer and name in allowed:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'refused getattr({obj!r}, {name!r}) in a checkpoint: only '
        'getattr(HistoryBuffer, <statistics method>) is allow-listed')


def checkpoint_safe_globals() -> List:
    """The globals allowed in mmengine checkpoints: classes, and
    ``(callable, 'pickled.name')`` pairs for names that differ."""
    from mmengine.logging import HistoryBuffer
    from numpy._core import multiarray
    safe = [HistoryBuffer, np.ndarray, np.dtype]
    # numpy 2 restores a dtype by BUILD on an instance of its class
    # (numpy.dtypes.Float64DType, ...): the numeric and bool ones only.
    safe += sorted({type(np.dtype(c))
                    for c in _NUMERIC_TYPECODES},
                   key=lambda t: t.__name__)
    # numpy 1.x pickles say numpy.core, numpy 2.x say numpy._core
    for mod in ('numpy._core.multiarray', 'numpy.core.multiarray'):
        safe.append((multiarray._reconstruct, f'{mod}._reconstruct'))
        safe.append((multiarray.scalar, f'{mod}.scalar'))
    safe.append((_history_buffer_getattr, 'builtins.getattr'))
    return safe


def register_checkpoint_safe_globals(extra: Iterable = ()) -> None:
    """Allow-list the globals of mmengine checkpoints for ``torch.load``.

    Idempotent. ``weights_only`` stays at torch's default.

    Args:
        extra (Iterable): More classes (or ``'module.Name'`` strings) to
            allow, e.g. from ``tools/train.py --trust-global``. Defaults to ().
    """
    if not hasattr(torch.serialization, 'add_safe_globals'):
        return  # torch < 2.4 has no weights_only default to satisfy
    torch.serialization.add_safe_globals(checkpoint_safe_globals())
    more = [resolve_global(e) if isinstance(e, str) else e for e in extra]
    if more:
        torch.serialization.add_safe_globals(more)


def resolve_global(name: str):
    """Import ``'package.module.Name'`` and return the object.

    Raises:
        ValueError: ``name`` is not ``module.attribute`` or cannot be imported.
    """
    module, _, attr = name.rpartition('.')
    if not module:
        raise ValueError(f'--trust-global {name!r}: expected a dotted path '
                         'such as mypkg.module.MyClass')
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise ValueError(f'--trust-global {name!r}: cannot import it ({e})')


class UnsafeCheckpointError(RuntimeError):
    """A checkpoint holds a pickled object that is not allow-listed."""


_UNSUPPORTED = re.compile(r'Unsupported global: GLOBAL ([\w.]+)')


@contextlib.contextmanager
def explain_unsafe_checkpoint():
    """Turn torch's weights-only refusal into an error that says what to do.

    Example:
        >>> with explain_unsafe_checkpoint():
        ...     runner.train()
    """
    try:
        yield
    except pickle.UnpicklingError as e:
        match = _UNSUPPORTED.search(str(e))
        if match is None:
            raise
        name = match.group(1)
        raise UnsafeCheckpointError(
            f'the checkpoint holds a pickled object of type {name}, which is '
            'not on the allow-list of classes that mmengine checkpoints '
            'contain, so torch.load(weights_only=True) refused it. A '
            'checkpoint can run code through such objects: only if you trust '
            f'its source, allow this one class with `--trust-global {name}` '
            '(tools/train.py, tools/test.py) or torch.serialization.'
            f'add_safe_globals([{name}]); weights_only stays on.') from e
