import gc
import hashlib
import json
import os
import os.path as osp
import runpy
import shutil
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from filelock import FileLock
from mmengine.config import config as mmengine_config

from mmnas_tricks.datasets import DigitsSpec, build_digits
from mmnas_tricks.testing import config_dir, shrink_digits_cfg
from mmnas_tricks.utils import load_config

TINY_SPEC = dict(num_train=48, num_val=16, seed=3)
SEG_SUPERNET = osp.join(config_dir(), 'supernets',
                        'fpn_r18w16_fpn-search_head-search_12e_digits-seg.py')


def _memoized_format_code(format_code):
    """yapf's ``FormatCode`` remembering its answers. mmengine formats the
    whole config with yapf for ``Config.pretty_text`` seven times in a
    one-epoch Runner (the log, the dumped config, the visualizer and every
    checkpoint's meta), 0.4-1.6 s each for a digits config: a one-epoch tiny
    supernet Runner took 7.5 s without this and 5.0 s with it (the same
    config's second Runner 6.2 s and 2.5 s). The same text gets the same,
    identical answer."""
    answers = {}

    def cached(text, **kwargs):
        key = (text, repr(sorted(kwargs.items())))
        if key not in answers:
            answers[key] = format_code(text, **kwargs)
        return answers[key]

    return cached


mmengine_config.FormatCode = _memoized_format_code(mmengine_config.FormatCode)


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'heavy: runs a tool or a training end to end (tens of '
        'seconds); collected first, so that parallel workers finish together')
    # Under pytest-xdist (-n N), each worker gets its share of the cores for
    # torch's threads, and so do the tools it starts: N workers with all the
    # cores each oversubscribe them (measured on 2 cores: -n 2 with 2 threads
    # each took as long as the serial run).
    workers = os.environ.get('PYTEST_XDIST_WORKER_COUNT')
    if workers:
        threads = max(1, (os.cpu_count() or 1) // int(workers))
        torch.set_num_threads(threads)
        os.environ['OMP_NUM_THREADS'] = str(threads)


def pytest_collection_finish(session):
    # The objects alive now (torch, mmdet, mmseg and every test module)
    # live to the end of the session: left to the collector, every full
    # collection walks them again. mmengine's BaseDataset calls gc.collect()
    # after serializing each dataset: 32 s of the 136 s of tests/test_engine
    # here, 0.3 s per dataset.
    gc.freeze()


def pytest_collection_modifyitems(config, items):
    # the long tests first (a stable sort: otherwise in collection order), so
    # that no worker starts one of them when the others are nearly done
    items.sort(key=lambda item: item.get_closest_marker('heavy') is None)


def _digests(folder):
    """{relative path: sha256} of a folder's files."""
    digests = {}
    for dirpath, _, filenames in os.walk(folder):
        for name in filenames:
            path = osp.join(dirpath, name)
            with open(path, 'rb') as f:
                digests[osp.relpath(path, folder)] = hashlib.sha256(
                    f.read()).hexdigest()
    return digests


def _built_once(tmp_path_factory, name, build):
    """A folder that ``build(folder)`` fills once per test run, also when
    pytest-xdist runs several workers: the first worker that asks builds it
    in the run's temporary folder (under a file lock), the others wait for
    it and use the same files. Returns the folder and its files' digests."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get('PYTEST_XDIST_WORKER'):
        base = base.parent  # the run's folder, above each worker's own
    folder, done = base / name, base / f'{name}.sha256.json'
    with FileLock(str(base / f'{name}.lock')):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)  # a failed build
            folder.mkdir()
            build(folder)
            tmp = base / f'{name}.sha256.json.tmp'
            tmp.write_text(json.dumps(_digests(folder)))
            os.replace(tmp, done)
    return folder, json.loads(done.read_text())


def _read_only(tmp_path_factory, name, build):
    """A session fixture's body: the folder built once (see _built_once),
    then, at the end of the session, a check that no test wrote into it."""
    folder, digests = _built_once(tmp_path_factory, name, build)
    yield folder
    now = _digests(folder)
    changed = sorted(
        k for k in set(now) | set(digests) if now.get(k) != digests.get(k))
    assert not changed, (
        f'a test wrote into the shared, read-only {name} at {folder} '
        f'(changed, added or removed: {changed[:5]}): copy it into tmp_path '
        'first or set its own work_dir')


@pytest.fixture(scope='session')
def tiny_digits(tmp_path_factory):
    """A small digits build shared by the tests (48 train / 16 val);
    read-only."""

    def build(folder):
        build_digits(
            str(folder / 'digits'), DigitsSpec(**TINY_SPEC), progress=False)

    for folder in _read_only(tmp_path_factory, 'tiny_digits', build):
        yield str(folder / 'digits')


def seg_supernet_cfg(data_root, work_dir, name, max_epochs=2):
    """SEG_SUPERNET shrunk to the tiny digits at ``data_root``, seed 0: a
    segmentation supernet has BatchNorm in the searched heads (so BN
    calibration matters) and a score that is not 0 after a few iterations
    (a tiny detector's mAP is)."""
    cfg = shrink_digits_cfg(
        load_config(SEG_SUPERNET),
        data_root,
        TINY_SPEC,
        work_dir=work_dir,
        max_epochs=max_epochs,
        experiment_name=name)
    # a fixed supernet: an unseeded one sometimes left most candidates
    # predicting background only, i.e. tied scores
    cfg.randomness = dict(seed=0)
    return cfg


@pytest.fixture(scope='session')
def tiny_seg_supernet(tiny_digits, tmp_path_factory):
    """The digits segmentation supernet (seg_supernet_cfg: searched FPN and
    head, BatchNorm in the searched head) trained 2 epochs on tiny_digits
    with seed 0, a checkpoint after each: ``.config`` (its config file),
    ``.epoch_1`` and ``.epoch_2`` (mmengine checkpoints with message hub and
    HistoryBuffers). Shared by the search, few-shot and two-process tests;
    read-only (a test that trains from it sets its own work_dir)."""

    def build(folder):
        from mmengine.runner import Runner
        cfg = seg_supernet_cfg(tiny_digits, str(folder), 'tiny_seg_supernet')
        cfg.default_hooks.checkpoint.interval = 1
        cfg.dump(str(folder / 'supernet.py'))
        # mmengine keeps one visualizer per name in a process, and later
        # Runners that ask for the same name write their scalars into its
        # log folder: a name of its own for this one
        cfg.visualizer.name = 'tiny_seg_supernet'
        Runner.from_cfg(cfg).train()

    for folder in _read_only(tmp_path_factory, 'tiny_seg_supernet', build):
        yield SimpleNamespace(
            config=str(folder / 'supernet.py'),
            epoch_1=str(folder / 'epoch_1.pth'),
            epoch_2=str(folder / 'epoch_2.pth'))


@pytest.fixture(scope='session')
def repo_root():
    return osp.dirname(osp.dirname(osp.abspath(__file__)))


def _exec_script(path, argv):
    """Run ``python path *argv`` in this process: the script's own
    ``__main__`` block, its ``sys.argv`` and ``sys.path[0]`` as the
    interpreter sets them; a non-zero exit raises."""
    saved_argv, saved_path = sys.argv, list(sys.path)
    sys.argv = [path, *argv]
    sys.path.insert(0, osp.dirname(path))
    try:
        runpy.run_path(path, run_name='__main__')
    except SystemExit as exit_:
        if exit_.code not in (None, 0):
            raise
    finally:
        sys.argv = saved_argv
        sys.path[:] = saved_path


@pytest.fixture
def run_tool(repo_root, capfd, monkeypatch):
    """``run_tool('tools/train.py', *args)`` runs a command line of ours as
    ``python tools/train.py *args`` in ``repo_root`` would, but in this
    process (no interpreter start and imports, ~6 s a command here), and
    returns what it printed (stdout + stderr). For tests whose point is not
    the interpreter itself; one end-to-end test per command still runs it
    in a subprocess.

    With ``stages_in_process=True``, the ``python tools/train.py`` stages
    that ``tools/nas.py`` starts run in this process too.
    """
    monkeypatch.chdir(repo_root)

    def run(script, *args, stages_in_process=False):
        with monkeypatch.context() as patch:
            if stages_in_process:
                real = subprocess.run

                def fake_run(cmd, *a, **kw):
                    if list(cmd[:1]) == [sys.executable] and \
                            cmd[1].endswith('train.py'):
                        _exec_script(cmd[1], [str(c) for c in cmd[2:]])
                        return subprocess.CompletedProcess(cmd, 0)
                    return real(cmd, *a, **kw)

                patch.setattr(subprocess, 'run', fake_run)
            capfd.readouterr()
            try:
                _exec_script(
                    osp.join(repo_root, script), [str(a) for a in args])
            except BaseException:
                captured = capfd.readouterr()
                print(captured.out[-2000:], captured.err[-4000:])
                raise
        captured = capfd.readouterr()
        return captured.out + captured.err

    return run
