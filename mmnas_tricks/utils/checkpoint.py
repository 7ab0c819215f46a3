"""Load mmengine checkpoints on torch >= 2.6 without turning ``weights_only`` off.

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True`` and refuses
every pickled global that is not allow-listed. mmengine 0.10 checkpoints carry
a few such globals in their ``message_hub`` and ``meta`` entries
(``HistoryBuffer`` with numpy arrays and numpy scalars), so ``--resume``,
``load_from`` and ``tools/test.py`` fail with ``Unsupported global: ...``.

:func:`register_checkpoint_safe_globals` allow-lists exactly those classes
(``torch.serialization.add_safe_globals``); a checkpoint holding any other
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

# Exactly what mmengine 0.10 writes besides tensors and builtins: the
# message hub's HistoryBuffer (numpy arrays of logged scalars) and numpy
# scalars / dtypes in runtime info and meta. Found by
# torch.serialization.get_unsafe_globals_in_checkpoint on checkpoints that
# mmengine 0.10.7 wrote for mmdet and mmseg models (tests/test_utils).
_NUMPY_DTYPE_CLASSES = tuple(
    type(np.dtype(t)) for t in ('float64', 'float32', 'int64', 'int32', 'bool'))


def _numpy_reconstruct():
    # numpy 2 moved numpy.core to numpy._core; pickles name whichever wrote them.
    found = []
    for mod in ('numpy._core.multiarray', 'numpy.core.multiarray'):
        try:
            m = importlib.import_module(mod)
        except ImportError:
            continue
        found.append((m._reconstruct, f'{mod}._reconstruct'))
        found.append((m.scalar, f'{mod}.scalar'))
    return found


def checkpoint_safe_globals() -> List:
    """The globals allowed in mmengine checkpoints (classes and callables)."""
    from mmengine.logging import HistoryBuffer
    safe = [HistoryBuffer, np.ndarray, np.dtype, *_NUMPY_DTYPE_CLASSES]
    safe += _numpy_reconstruct()
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
