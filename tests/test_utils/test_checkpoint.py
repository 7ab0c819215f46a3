import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer

from mmnas_tricks.utils import (UnsafeCheckpointError, checkpoint_safe_globals,
                                explain_unsafe_checkpoint,
                                register_checkpoint_safe_globals)
from mmnas_tricks.utils.checkpoint import resolve_global


class Payload:
    pass


def test_mmengine_objects_load_with_weights_only(tmp_path):
    register_checkpoint_safe_globals()
    buf = HistoryBuffer()
    buf.update(1.5)
    buf.update(np.float64(2.5))
    obj = dict(
        message_hub=dict(log_scalars={'train/loss': buf}),
        meta=dict(
            score=np.float64(0.5),
            arr=np.arange(3, dtype=np.int64),
            f32=np.float32(1.0),
            flag=np.bool_(True)),
        state_dict={'w': torch.ones(2)})
    path = tmp_path / 'c.pth'
    torch.save(obj, path)
    loaded = torch.load(path)  # weights_only=True by default
    assert loaded['message_hub']['log_scalars']['train/loss'].mean() == 2.0
    assert loaded['meta']['arr'].tolist() == [0, 1, 2]


def test_allow_list_is_exact():
    names = {
        g[1] if isinstance(g, tuple) else f'{g.__module__}.{g.__qualname__}'
        for g in checkpoint_safe_globals()
    }
    dtypes = {n for n in names if n.startswith('numpy.dtypes.')}
    assert {
        'numpy.dtypes.Float64DType', 'numpy.dtypes.Int64DType',
        'numpy.dtypes.BoolDType'
    } <= dtypes
    assert 'numpy.dtypes.ObjectDType' not in dtypes
    assert names - dtypes == {
        'mmengine.logging.history_buffer.HistoryBuffer',
        'numpy.ndarray',
        'numpy.dtype',
        'numpy._core.multiarray._reconstruct',
        'numpy._core.multiarray.scalar',
        'numpy.core.multiarray._reconstruct',
        'numpy.core.multiarray.scalar',
        'builtins.getattr',
        'builtins.bytes'  # narrowed to bytes(): see the empty-bytes test
    }


class _GetAttr:
    """Pickles as getattr(HistoryBuffer, name)."""

    def __init__(self, name):
        self.name = name

    def __reduce__(self):
        return getattr, (HistoryBuffer, self.name)


def test_getattr_is_narrowed_to_history_buffer_statistics(tmp_path):
    register_checkpoint_safe_globals()
    path = tmp_path / 'ok.pth'
    torch.save(dict(m=_GetAttr('mean')), path)
    assert torch.load(path)['m'] is HistoryBuffer.mean
    path = tmp_path / 'bad.pth'
    torch.save(dict(m=_GetAttr('__init__')), path)
    with pytest.raises(
            pickle.UnpicklingError, match="refused getattr.*'__init__'"):
        torch.load(path)


def test_arbitrary_object_is_refused_with_advice(tmp_path):
    register_checkpoint_safe_globals()
    path = tmp_path / 'evil.pth'
    torch.save(dict(meta=Payload()), path)
    with pytest.raises(UnsafeCheckpointError) as e:
        with explain_unsafe_checkpoint():
            torch.load(path)
    assert f'{__name__}.Payload' in str(e.value)
    assert f'--trust-global {__name__}.Payload' in str(e.value)


def test_trust_global_allows_that_class_only(tmp_path):
    path = tmp_path / 'c.pth'
    torch.save(dict(meta=Payload()), path)
    register_checkpoint_safe_globals([f'{__name__}.Payload'])
    assert isinstance(torch.load(path)['meta'], Payload)


def test_other_unpickling_errors_pass_through():
    with pytest.raises(pickle.UnpicklingError, match='truncated'):
        with explain_unsafe_checkpoint():
            raise pickle.UnpicklingError('data truncated')


def test_resolve_global_errors():
    with pytest.raises(ValueError, match="'Nope'.*dotted path"):
        resolve_global('Nope')
    with pytest.raises(ValueError, match='cannot import'):
        resolve_global('no_such_module_x.Thing')


class _Call:
    """A pickle that calls ``fn(*args)`` when loaded."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


@pytest.mark.parametrize('fn,args,name', [
    (__import__('os').system, ('echo PWNED', ), 'posix.system'),
    (eval, ('1+1', ), 'builtins.eval'),
    (exec, ('x = 1', ), 'builtins.exec'),
    (__import__, ('os', ), 'builtins.__import__'),
    (__import__('subprocess').check_output,
     (['true'], ), 'subprocess.check_output'),
])
def test_code_running_globals_are_refused_and_never_trusted(
        tmp_path, fn, args, name):
    register_checkpoint_safe_globals()
    path = tmp_path / 'evil.pth'
    torch.save(dict(meta=_Call(fn, *args)), path)
    with pytest.raises(UnsafeCheckpointError) as e:
        with explain_unsafe_checkpoint():
            torch.load(path)
    message = str(e.value)
    assert name in message and 'can run code' in message
    assert '--trust-global' not in message
    assert 'weights_only=False' not in message
    with pytest.raises(ValueError, match=f"'{name}' refused"):
        resolve_global(name)
    with pytest.raises(ValueError, match='refused'):
        register_checkpoint_safe_globals([name])


def test_trust_global_admits_classes_only():
    with pytest.raises(ValueError, match='not a class'):
        resolve_global('json.dumps')
    with pytest.raises(ValueError, match='refused'):
        resolve_global('functools.partial')
    assert resolve_global(f'{__name__}.Payload') is Payload


def test_empty_bytes_of_genuine_checkpoints_load(tmp_path):
    """torch's protocol-2 pickles write an empty array's data and a fresh
    HistoryBuffer's as a call of builtins.bytes with no argument: that
    loads; any call of bytes with arguments (what could allocate or convert
    anything) is refused."""
    register_checkpoint_safe_globals()
    path = tmp_path / 'ok.pth'
    torch.save(dict(a=np.zeros(0), h=HistoryBuffer(), b=b''), path)
    got = torch.load(path)
    assert got['a'].shape == (0, ) and got['b'] == b''
    assert len(got['h']._log_history) == 0
    path = tmp_path / 'big.pth'
    torch.save(dict(b=_Call(bytes, 10**12)), path)
    with pytest.raises(pickle.UnpicklingError, match=r'refused bytes\('):
        torch.load(path)
