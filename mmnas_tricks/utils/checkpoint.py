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


def _qualname(obj) -> str:
    """``module.Name`` of a class (or the repr of anything else), without
    a memory address."""
    if inspect.isclass(obj):
        return f'{obj.__module__}.{obj.__qualname__}'
    return _ADDRESS.sub('', repr(obj))


def _history_buffer_getattr(obj, name):
    """Stands in for ``builtins.getattr`` while unpickling: only the
    statistics methods of ``HistoryBuffer`` may be looked up."""
    from mmengine.logging import HistoryBuffer
    allowed = set(_HISTORY_BUFFER_STATISTICS) | set(
        HistoryBuffer._statistics_methods)
    if obj is HistoryBuffer and name in allowed:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'refused getattr({_qualname(obj)}, {str(name)[:80]!r})')


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
        if not isinstance(obj, type):
            return (f'builtins.{attr} is a built-in function, and a '
                    'checkpoint calls it with arguments of its choosing')
        if attr in _CODE_BUILTIN_CLASSES:
            return (f'builtins.{attr} makes classes, attributes or objects '
                    'of any type, and so can run any code')
        return None
    if module.split('.')[0] in CODE_MODULES:
        return (f'{module} is a module that runs programs, reaches the '
                'operating system or executes code')
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


#: what a refusal advises: nothing to do for what can run code
DO_NOT_LOAD = ('Do not load this file: no checkpoint of an mmdet or mmseg '
               'model holds it.')

# torch's wordings: a global not allow-listed ('Unsupported global: GLOBAL
# builtins.eval' prints builtins bare: 'GLOBAL eval'), one whose module it
# blocks ('unsupported GLOBAL posix.system whose module posix is blocked'),
# a call of a function it does not know ('Trying to call reduce for
# unrecognized function <function HistoryBuffer.mean at 0x...>'), an object
# of a class it may not build ('Can only build Tensor, ... but got <class
# 'numpy.dtypes.ObjectDType'>'); and this module's own getattr refusal
_UNSUPPORTED = re.compile(r'[Uu]nsupported (?:global: )?GLOBAL ([\w.]+)')
_UNKNOWN_CALL = re.compile(r'unrecognized function <function ([\w.<>]+)')
_CANNOT_BUILD = re.compile(r"Can only build .* but got <class '([\w.]+)'>")
_GETATTR = re.compile(r"refused getattr\(([^,]+), '([^']*)'\)")
_ADDRESS = re.compile(r' at 0x[0-9a-fA-F]+')


def refusal(what: str, why: str, trust: Optional[str] = None) -> str:
    """The one wording of a refused checkpoint: what it holds, why that is
    refused, and what a person can do: allow one class with
    ``--trust-global`` (``trust``), or nothing (do not load the file)."""
    action = DO_NOT_LOAD if trust is None else (
        f'If you trust the source of the file and {trust} is a class of '
        f'plain data, allow that one class with `--trust-global {trust}` '
        '(tools/train.py, tools/test.py); weights_only stays on.')
    return f'checkpoint refused: it holds {what}, and {why}. {action}'


def _explain(text: str) -> str:
    """The :func:`refusal` of torch's weights-only error ``text``."""
    match = _UNSUPPORTED.search(text)
    if match is not None:
        name = py3_global(match.group(1))
        reason = code_global_reason(name)
        if reason is not None:
            return refusal(f'a pickled {name}', f'{reason}; it can run code')
        return refusal(
            f'a pickled object of type {name}',
            'that type is not on the allow-list of the classes mmengine '
            'checkpoints contain (a checkpoint can run code through an '
            'object it builds)',
            trust=name)
    match = _GETATTR.search(text)
    if match is not None:
        return refusal(
            f'the lookup getattr({match.group(1)}, {match.group(2)!r})',
            'a lookup reaches any function or attribute of an object (the '
            'one allowed is getattr(HistoryBuffer, <statistics method>), '
            "which mmengine's message hub pickles)")
    match = _UNKNOWN_CALL.search(text)
    if match is not None:
        return refusal(
            f'a call of the function {match.group(1)}',
            'a checkpoint calls a function with arguments of its choosing '
            '(mmengine checkpoints hold the statistics methods of '
            'HistoryBuffer, never call them)')
    match = _CANNOT_BUILD.search(text)
    if match is not None:
        name = match.group(1)
        if name.endswith('ObjectDType'):
            return refusal(
                'a numpy array of Python objects (dtype=object)',
                'its elements are arbitrary pickled objects; mmengine '
                'checkpoints hold numeric arrays only')
        return refusal(
            f'an object of type {name}', 'that type is not on the '
            'allow-list of the classes mmengine checkpoints contain',
            trust=name)
    first = _ADDRESS.sub('', text.strip().splitlines()[0])[:300]
    return refusal(f'what torch.load(weights_only=True) cannot read ({first})',
                   'it is not what an mmengine checkpoint holds')


@contextlib.contextmanager
def explain_unsafe_checkpoint():
    """Turn torch's weights-only refusal into an :class:`UnsafeCheckpointError`
    in the words of :func:`refusal`: what the checkpoint holds, why it is
    refused and what to do (never to turn ``weights_only`` off, never
    torch's own advice).

    Example:
        >>> with explain_unsafe_checkpoint():
        ...     runner.train()
    """
    try:
        yield
    except pickle.UnpicklingError as e:
        text = str(e)
        if 'Weights only load failed' in text:
            text = text.split('WeightsUnpickler error:')[-1]
        elif not (_UNSUPPORTED.search(text) or _GETATTR.search(text)):
            raise
        raise UnsafeCheckpointError(_explain(text), e) from None
