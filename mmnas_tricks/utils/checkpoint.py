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
import builtins
import contextlib
import importlib
import inspect
import pickle
import re
import sys
from typing import Iterable, List, Optional

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


def _empty_bytes(*args):
    """Stands in for ``builtins.bytes`` while unpickling: torch's protocol-2
    pickles write an empty ``bytes`` (an empty numpy array's data, a
    never-updated ``HistoryBuffer``) as the call ``bytes()``; that call, and
    only that one, is allowed (a non-empty ``bytes`` is pickled through
    ``_codecs.encode``, which torch allows itself)."""
    if args:
        raise pickle.UnpicklingError(
            f'refused bytes(<{len(args)} argument(s)>) in a checkpoint: only '
            'bytes() (an empty bytes object) is allow-listed')
    return b''


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
    safe.append((_empty_bytes, 'builtins.bytes'))
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


#: modules whose objects reach the system or run code: never allow-listed
CODE_MODULES = frozenset({
    'os', 'posix', 'nt', 'subprocess', 'sys', 'shutil', 'importlib', 'runpy',
    'pickle', '_pickle', 'marshal', 'shelve', 'socket', 'ctypes', 'code',
    'codeop', 'pty', 'multiprocessing', 'signal', 'webbrowser', 'pdb', 'bdb',
    'timeit', 'types', 'functools', 'operator', 'inspect', 'io', '_io',
    'pathlib', 'tempfile', 'asyncio', 'threading', '_thread', 'gc', 'ast',
    'platform', 'sysconfig', 'pydoc', 'cProfile', 'profile', 'trace', 'dill',
    'cloudpickle', 'joblib', 'yaml'
})
#: classes of builtins that are not plain data
_CODE_BUILTIN_CLASSES = frozenset({
    'type', 'object', 'super', 'property', 'classmethod', 'staticmethod',
    'memoryview', 'BaseException', 'Exception'
})


def py3_global(name: str) -> str:
    """``'module.attr'`` as Python 3 names it: a bare name is a builtin, and
    the Python 2 module names that protocol-2 pickles (torch's) write are
    mapped back (``commands`` -> ``subprocess``, ``__builtin__`` ->
    ``builtins``; :mod:`_compat_pickle`, the table :mod:`pickle` uses)."""
    import _compat_pickle
    module, _, attr = name.rpartition('.')
    module = _compat_pickle.IMPORT_MAPPING.get(module or '__builtin__', module)
    return f'{module}.{attr}'


def code_global_reason(name: str) -> Optional[str]:
    """Why the pickled global ``name`` (``'module.attr'``; a bare name is a
    builtin) can run code and must never be allow-listed, or None. Decided
    from the name, without importing anything the name points to: functions
    (a checkpoint calls them with arguments of its choosing), builtins that
    are not data classes, and everything in :data:`CODE_MODULES`; a
    function in a module not imported yet is refused by
    :func:`resolve_global` once imported. Anything else may still be
    unsafe: trust only its source."""
    module, attr = py3_global(name).rsplit('.', 1)
    if module == 'builtins':
        obj = getattr(builtins, attr, None)
        if not isinstance(obj, type) or attr in _CODE_BUILTIN_CLASSES:
            return (f'builtins.{attr} is a function or a type that builds '
                    'code or objects of any kind: a checkpoint can run code '
                    'through it')
        return None
    if module.split('.')[0] in CODE_MODULES:
        return (f'{module} holds what reaches the system or runs code')
    obj = getattr(sys.modules.get(module), attr, None)
    if obj is not None and not inspect.isclass(obj):
        return (f'{name} is a {type(obj).__name__}, not a class: a '
                'checkpoint calls it with arguments of its choosing')
    return None


def resolve_global(name: str):
    """Import ``'package.module.Name'`` and return the class, refusing what
    can run code (:func:`code_global_reason`).

    Raises:
        ValueError: ``name`` is not ``module.attribute``, cannot be imported,
            is not a class, or can run code (the message says why).
    """
    module, _, attr = name.rpartition('.')
    if not module:
        raise ValueError(f'--trust-global {name!r}: expected a dotted path '
                         'such as mypkg.module.MyClass')
    reason = code_global_reason(name)
    if reason is not None:
        raise ValueError(f'--trust-global {name!r} refused: {reason}')
    try:
        obj = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise ValueError(f'--trust-global {name!r}: cannot import it ({e})')
    if not inspect.isclass(obj):
        raise ValueError(f'--trust-global {name!r} refused: it is a '
                         f'{type(obj).__name__}, not a class; a checkpoint '
                         'calls what it names with arguments of its choosing')
    return obj


class UnsafeCheckpointError(RuntimeError):
    """A checkpoint holds a pickled object that is not allow-listed.

    ``torch_error`` is torch's own refusal, kept out of the traceback (its
    advice is to turn ``weights_only`` off)."""

    def __init__(self, message: str, torch_error: Exception = None) -> None:
        super().__init__(message)
        self.torch_error = torch_error


# torch's two wordings: a global not allow-listed ('Unsupported global:
# GLOBAL builtins.eval' prints builtins bare: 'GLOBAL eval'), and one whose
# module it blocks ('unsupported GLOBAL posix.system whose module posix is
# blocked')
_UNSUPPORTED = re.compile(r'[Uu]nsupported (?:global: )?GLOBAL ([\w.]+)')


@contextlib.contextmanager
def explain_unsafe_checkpoint():
    """Turn torch's weights-only refusal into an :class:`UnsafeCheckpointError`
    that names the pickled global and says what to do (never to turn
    ``weights_only`` off).

    Example:
        >>> with explain_unsafe_checkpoint():
        ...     runner.train()
    """
    try:
        yield
    except pickle.UnpicklingError as e:
        match = _UNSUPPORTED.search(str(e))
        if match is None:
            if 'Weights only load failed' not in str(e):
                raise
            detail = str(e).split('WeightsUnpickler error:')[-1].strip()
            raise UnsafeCheckpointError(
                'torch.load(weights_only=True) refused the checkpoint: '
                f'{detail.splitlines()[0][:300]}', e) from None
        name = py3_global(match.group(1))
        reason = code_global_reason(name)
        if reason is not None:
            raise UnsafeCheckpointError(
                f'the checkpoint holds a pickled {name}, which can run code '
                f'({reason}); refused. No checkpoint of an mmdet / mmseg '
                'model needs it: do not load this file.', e) from None
        raise UnsafeCheckpointError(
            f'the checkpoint holds a pickled object of type {name}, which is '
            'not on the allow-list of classes that mmengine checkpoints '
            'contain, so torch.load(weights_only=True) refused it. A '
            'checkpoint can run code through such objects: only if you trust '
            f'its source and {name} is a class, allow this one class with '
            f'`--trust-global {name}` (tools/train.py, tools/test.py) or '
            f'torch.serialization.add_safe_globals([{name}]); weights_only '
            'stays on.', e) from None
