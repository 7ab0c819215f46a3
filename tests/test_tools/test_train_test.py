"""tools/train.py, --resume and tools/test.py on tiny digits, with torch's
default weights_only=True."""
import importlib.util
import json
import os
import os.path as osp
import pickle
import subprocess
import sys

import pytest
import torch

from mmnas_tricks.testing import shrink_digits_cfg
from mmnas_tricks.utils import (UnsafeCheckpointError, load_config,
                                register_checkpoint_safe_globals)
from ..conftest import TINY_SPEC

FCOS = 'configs/baselines/fcos_r18w16_fpn_gn-head_12e_digits.py'
RETINA = 'configs/baselines/retinanet_r18w16_fpn_12e_digits.py'
SEG = 'configs/baselines/fpn_r18w16_12e_digits-seg.py'


def _tiny_config(repo_root, tiny_digits, tmp_path, config, name, max_epochs=1):
    cfg = load_config(osp.join(repo_root, config))
    cfg = shrink_digits_cfg(
        cfg,
        tiny_digits,
        TINY_SPEC,
        work_dir=str(tmp_path / 'work'),
        max_epochs=max_epochs,
        experiment_name=name)
    if 'bbox_head' in cfg.model:
        # after a few iterations no score passes 0.05: keep every box so
        # that the metric has something to score
        cfg.model.test_cfg.score_thr = 0.0
        cfg.model.test_cfg.nms_pre = 100
    path = str(tmp_path / f'{name}.py')
    cfg.dump(path)
    return path, cfg.work_dir


def _run(repo_root, *args):
    out = subprocess.run([sys.executable, *args],
                         cwd=repo_root,
                         capture_output=True,
                         text=True)
    assert out.returncode == 0, (out.stdout[-2000:], out.stderr[-4000:])
    return out.stdout + out.stderr


def test_torch_default_is_weights_only():
    # The point of the exercise: nothing here turns weights_only off.
    import inspect
    assert torch.__version__ >= '2.6'
    sig = inspect.signature(torch.load)
    assert sig.parameters['weights_only'].default is None  # -> True


def _runner(repo_root, run_tool, in_process):
    """``_run`` (a subprocess) or the in-process ``run_tool``."""
    if in_process:
        return run_tool

    def run(*args):
        return _run(repo_root, *args)

    return run


# the detector's resume and test through real command lines (the end-to-end
# tests of train.py and test.py), everything else through the same command
# lines in-process
@pytest.mark.heavy
@pytest.mark.parametrize('config,in_process', [(FCOS, False), (SEG, True)])
def test_train_resume_and_test(repo_root, tiny_digits, tmp_path, config,
                               in_process, run_tool):
    cli = _runner(repo_root, run_tool, in_process)
    name = osp.basename(config)[:-3] + '_resume'
    path, work_dir = _tiny_config(
        repo_root, tiny_digits, tmp_path, config, name, max_epochs=1)
    log = run_tool('tools/train.py', path)
    assert 'final metrics:' in log
    ckpt = osp.join(work_dir, 'epoch_1.pth')
    assert osp.isfile(ckpt)
    # mmengine's checkpoint needs the allow-list (registered when
    # mmnas_tricks is imported), and nothing more
    register_checkpoint_safe_globals()
    assert torch.serialization.get_unsafe_globals_in_checkpoint(ckpt) == []
    torch.load(ckpt)  # weights_only=True by default

    # resume for one more epoch from the latest checkpoint
    log = cli('tools/train.py', path, '--resume', '--cfg-options',
              'train_cfg.max_epochs=2')
    assert 'resumed epoch: 1' in log, log[-3000:]
    assert 'Epoch(train)  [1]' not in log
    assert osp.isfile(osp.join(work_dir, 'epoch_2.pth'))

    # an explicit checkpoint path works too
    log = run_tool('tools/train.py', path, '--resume', ckpt, '--cfg-options',
                   'train_cfg.max_epochs=2')
    assert 'Epoch(train)  [1]' not in log

    # test the saved checkpoint
    log = cli('tools/test.py', path, osp.join(work_dir, 'epoch_2.pth'),
              '--work-dir', str(tmp_path / 'test'), '--out',
              str(tmp_path / 'preds.pkl'))
    with open(tmp_path / 'preds.pkl', 'rb') as f:
        preds = pickle.load(f)
    assert len(preds) == TINY_SPEC['num_val']
    with open(tmp_path / 'test' / 'test_metrics.json') as f:
        metrics = json.load(f)
    key = 'coco/bbox_mAP' if 'fcos' in config else 'mIoU'
    assert key in metrics and metrics[key] >= 0


class Arbitrary:
    """Stands for any pickled object a checkpoint should not carry."""

    def __init__(self, x=1):
        self.x = x


def test_checkpoint_with_arbitrary_object_is_refused(repo_root, tiny_digits,
                                                     tmp_path):
    from mmengine.runner import Runner

    from mmnas_tricks.utils import explain_unsafe_checkpoint
    path, _ = _tiny_config(repo_root, tiny_digits, tmp_path, FCOS,
                           'fcos_refuse')
    cfg = load_config(path)
    runner = Runner.from_cfg(cfg)
    ckpt = str(tmp_path / 'evil.pth')
    torch.save(
        dict(state_dict=runner.model.state_dict(), meta=dict(x=Arbitrary())),
        ckpt)
    with pytest.raises(UnsafeCheckpointError) as e:
        with explain_unsafe_checkpoint():
            runner.load_checkpoint(ckpt)
    msg = str(e.value)
    assert 'Arbitrary' in msg and '--trust-global' in msg
    assert 'weights_only stays on' in msg
    # torch's own refusal stays reachable, but is not chained into the
    # traceback, whose advice is to turn weights_only off
    assert isinstance(e.value.torch_error, pickle.UnpicklingError)
    assert e.value.__cause__ is None and e.value.__suppress_context__

    # through the command line: a clear message and a failing exit code
    out = subprocess.run([sys.executable, 'tools/test.py', path, ckpt],
                         cwd=repo_root,
                         capture_output=True,
                         text=True)
    assert out.returncode != 0
    assert 'UnsafeCheckpointError' in out.stderr
    assert '--trust-global' in out.stderr
    assert 'weights_only=False' not in out.stderr
    assert 'weights_only` set to `False' not in out.stderr


class _GetAttr:
    """Pickles as getattr(obj, name)."""

    def __init__(self, obj, name):
        self.obj, self.name = obj, name

    def __reduce__(self):
        return getattr, (self.obj, self.name)


class _CallMean:
    """Pickles as a call of HistoryBuffer.mean."""

    def __reduce__(self):
        from mmengine.logging import HistoryBuffer
        return HistoryBuffer.mean, (HistoryBuffer(), )


def _payloads():
    import numpy as np
    return {
        'getattr(ndarray.tofile)':
        (_GetAttr(np.ndarray, 'tofile'), 'the lookup getattr(numpy.ndarray, '
         "'tofile')"),
        'call HistoryBuffer.mean': (_CallMean(), 'a call of the function '
                                    'HistoryBuffer.mean'),
        'object array':
        (np.array([1, 'a', None],
                  dtype=object), 'a numpy array of Python objects'),
    }


@pytest.mark.parametrize('payload', list(_payloads()))
def test_refused_checkpoints_say_what_why_and_what_to_do(
        repo_root, tiny_digits, tmp_path, payload):
    """Every refusal of tools/test.py and tools/train.py --resume in one
    pattern, the project's words: what the checkpoint holds, why that is
    refused, what to do (for these: do not load it); no memory address,
    none of torch's advice."""
    from mmengine.runner import Runner
    obj, what = _payloads()[payload]
    path, _ = _tiny_config(repo_root, tiny_digits, tmp_path, FCOS,
                           f'fcos_refuse_{len(payload)}')
    state = Runner.from_cfg(load_config(path)).model.state_dict()
    ckpt = str(tmp_path / 'bad.pth')
    torch.save(dict(state_dict=state, meta=dict(x=obj)), ckpt)
    for tool, argv in (('test', [path,
                                 ckpt]), ('train', [path, '--resume', ckpt])):
        with pytest.raises(UnsafeCheckpointError) as e:
            _tool(repo_root, tool).main(argv)
        msg = str(e.value)
        assert msg.startswith(f'checkpoint refused: it holds {what}'), msg
        assert 'Do not load this file' in msg and '--trust-global' not in msg
        for leak in ('0x', 'add_safe_globals', 'weights_only=False',
                     'WeightsUnpickler', 'file an issue'):
            assert leak not in msg, (leak, msg)


def test_paths_that_are_not_checkpoint_files_say_what_they_are(
        repo_root, tmp_path):
    train = _tool(repo_root, 'train')
    test = _tool(repo_root, 'test')
    folder = tmp_path / 'epoch_1.pth'
    folder.mkdir()
    fifo = tmp_path / 'fifo.pth'
    os.mkfifo(fifo)
    config = osp.join(repo_root, FCOS)
    for path, error, match in ((folder, IsADirectoryError, 'is a directory'),
                               (fifo, OSError, 'is not a regular file'),
                               ('/dev/null', OSError,
                                'is not a regular file')):
        with pytest.raises(error, match=match):
            test.main([config, str(path)])
        with pytest.raises(error, match=f'--resume checkpoint .*{match}'):
            train.main([config, '--resume', str(path)])


def _tool(repo_root, name):
    spec = importlib.util.spec_from_file_location(
        f'_tool_{name}', osp.join(repo_root, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bad_paths_are_clear_errors(repo_root, tmp_path):
    train = _tool(repo_root, 'train')
    test = _tool(repo_root, 'test')
    with pytest.raises(
            FileNotFoundError,
            match="config file 'configs/nope.py' does not exist"):
        train.main(['configs/nope.py'])
    typo = FCOS.replace('digits', 'digit')
    with pytest.raises(
            FileNotFoundError,
            match='did you mean.*' + osp.basename(FCOS).replace('.', r'\.')):
        train.main([typo])
    with pytest.raises(
            FileNotFoundError,
            match="--resume checkpoint 'no.pth' does not exist"):
        train.main([osp.join(repo_root, FCOS), '--resume', 'no.pth'])
    with pytest.raises(
            FileNotFoundError, match="checkpoint 'no.pth' does not exist"):
        test.main([osp.join(repo_root, FCOS), 'no.pth'])
    with pytest.raises(ValueError, match="--trust-global 'Nope'"):
        train.main([osp.join(repo_root, FCOS), '--trust-global', 'Nope'])


def test_missing_dataset_folder_without_auto_build(repo_root, tmp_path):
    from mmengine.runner import Runner

    from mmnas_tricks.datasets import DigitsDatasetError
    cfg = load_config(osp.join(repo_root, FCOS))
    cfg = shrink_digits_cfg(
        cfg,
        str(tmp_path / 'absent'),
        TINY_SPEC,
        str(tmp_path / 'work'),
        experiment_name='fcos_absent')
    cfg.train_dataloader.dataset.auto_build = False
    runner = Runner.from_cfg(cfg)
    with pytest.raises(DigitsDatasetError, match='absent does not exist'):
        runner.train()


def test_train_flags_change_the_config(repo_root, tmp_path):
    train = _tool(repo_root, 'train')
    args = train.parse_args([
        osp.join(repo_root, FCOS), '--amp', '--auto-scale-lr', '--work-dir',
        str(tmp_path / 'w'), '--cfg-options', 'randomness.seed=7'
    ])
    cfg = train.build_cfg(args)
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.loss_scale == 'dynamic'
    assert cfg.auto_scale_lr.enable is True
    assert cfg.work_dir == str(tmp_path / 'w')
    assert cfg.randomness.seed == 7
    assert cfg.launcher == 'none'
    args = train.parse_args([osp.join(repo_root, FCOS), '--resume'])
    cfg = train.build_cfg(args)
    assert cfg.resume is True and cfg.load_from is None
    assert cfg.work_dir.endswith(osp.basename(FCOS)[:-3])
