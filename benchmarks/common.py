"""What the benchmark scripts share: the machine's description, device
timing, digits batches, medians and the JSON they write.

The scripts run as ``python benchmarks/<name>.py`` (this folder is then on
``sys.path``); none of this is part of the package.
"""
import json
import os
import platform
import statistics
import time
from typing import Callable, List, Sequence

import torch


def add_common_args(parser, timing: bool = False) -> None:
    """``--out`` and ``--device``; with ``timing`` also ``--batches``,
    ``--batch-size`` and ``--repeats`` of the side-by-side timings."""
    if timing:
        parser.add_argument('--batches', type=int, default=8)
        parser.add_argument('--batch-size', type=int, default=16)
        parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument(
        '--out',
        default=None,
        help='default: benchmarks/results/<name>[_cuda].json')
    parser.add_argument(
        '--device',
        default='cpu',
        help="'cpu' (default) or 'cuda' (the GPU machine, see "
        'benchmarks/gpu/run.sh)')


def check_device(device: str) -> torch.device:
    if device not in ('cpu', 'cuda') and not device.startswith('cuda:'):
        raise ValueError(f"--device {device!r} is not one of ['cpu', "
                         "'cuda', 'cuda:N']")
    if device.startswith('cuda') and not torch.cuda.is_available():
        raise RuntimeError(f'--device {device!r}: torch sees no CUDA device')
    return torch.device(device)


def result_path(name: str, device, out=None) -> str:
    """``out``, or ``benchmarks/results/<name>.json`` (CPU) /
    ``<name>_<device type>.json`` (e.g. ``_cuda``)."""
    device = torch.device(device)
    suffix = '' if device.type == 'cpu' else f'_{device.type}'
    return out or os.path.join('benchmarks', 'results', f'{name}{suffix}.json')


def machine(device) -> dict:
    """Where a figure was measured."""
    device = torch.device(device)
    info = dict(
        date=time.strftime('%Y-%m-%d'),
        torch=torch.__version__,
        python=platform.python_version(),
        cpu_cores=os.cpu_count(),
        torch_threads=torch.get_num_threads(),
        device=str(device))
    if device.type == 'cuda':
        info['gpu'] = torch.cuda.get_device_name(device)
        info['machine'] = f'{info["gpu"]}, {os.cpu_count()} CPU cores'
    else:
        info['machine'] = f'{os.cpu_count()} CPU cores, no GPU'
    return info


def synchronize(device) -> None:
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device) -> float:
    """Seconds ``fn()`` takes, the device's queued work included."""
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def load_cfg(path: str, work_dir: str):
    """The config as the tools load it, with a unique experiment name so
    that runners built side by side do not share a log folder."""
    from mmnas_tricks.utils import load_config
    cfg = load_config(path)
    cfg.work_dir = work_dir
    cfg.experiment_name = f'{os.path.basename(work_dir)}_{time.time_ns()}'
    return cfg


def heldout_dataloader(cfg, images: int, batch_size: int = 16) -> dict:
    """The search's held-out scoring loader of a digits config, cut to its
    first ``images`` images."""
    loader = cfg.digits_heldout_dataloader
    return dict(
        loader,
        batch_size=batch_size,
        dataset=dict(loader.dataset, indices=images))


def digits_batches(cfg, count: int, batch_size: int) -> List[dict]:
    """``count`` batches of the config's training dataloader (the digits
    data are built on first use)."""
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner
    loader_cfg = cfg.train_dataloader.copy()
    loader_cfg['batch_size'] = batch_size
    loader_cfg['num_workers'] = 0
    loader_cfg['persistent_workers'] = False
    with DefaultScope.overwrite_default_scope(
            cfg.get('default_scope') or 'mmdet'):
        loader = Runner.build_dataloader(loader_cfg, seed=0)
    batches = []
    while len(batches) < count:
        for data in loader:
            batches.append(data)
            if len(batches) == count:
                break
    return batches


def write_result(result: dict, out: str) -> None:
    """Print ``result`` and write it to ``out`` atomically."""
    from mmnas_tricks.utils import dump_json_atomic
    print(json.dumps(result, indent=1))
    dump_json_atomic(result, out)
    print(f'written: {out}')


def run_command(cmd, env=None) -> float:
    """Run ``cmd`` (its output kept unless it fails); returns seconds."""
    import subprocess
    import sys
    print('+', ' '.join(cmd), flush=True)
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, text=True, capture_output=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise RuntimeError(f'{" ".join(cmd[:3])} failed ({proc.returncode})')
    return time.perf_counter() - start


def train_or_resume(config: str,
                    run_dir: str,
                    seed: int,
                    test: bool = False,
                    threads: int = None):
    """``tools/train.py config`` in ``run_dir`` with ``seed``: skipped when
    it finished (``final_metrics.json``), resumed when it was interrupted.
    Returns (its final metrics, the seconds it took here or None); with
    ``test`` (``--test``) (final metrics, test metrics, seconds), a
    finished training without test metrics scored by ``tools/test.py`` on
    its last checkpoint. ``threads``: torch's threads in the training
    (``OMP_NUM_THREADS``; default: torch's own choice)."""
    import sys
    env = None if threads is None else dict(
        os.environ, OMP_NUM_THREADS=str(threads))
    final = os.path.join(run_dir, 'final_metrics.json')
    tested = os.path.join(run_dir, 'test_metrics.json')
    seconds = None
    if not os.path.isfile(final):
        resume = ['--resume'] if os.path.isfile(
            os.path.join(run_dir, 'last_checkpoint')) else []
        seconds = run_command([
            sys.executable, 'tools/train.py', config, '--work-dir', run_dir,
            *resume, *(['--test'] if test else []), '--cfg-options',
            f'randomness.seed={seed}'
        ], env)
    if test and not os.path.isfile(tested):
        with open(os.path.join(run_dir, 'last_checkpoint')) as f:
            checkpoint = f.read().strip()
        run_command([
            sys.executable, 'tools/test.py', config, checkpoint, '--work-dir',
            run_dir
        ], env)
    with open(final) as f:
        metrics = json.load(f)
    if not test:
        return metrics, seconds
    with open(tested) as f:
        return metrics, json.load(f), seconds


def train_many(tasks, jobs: int, done, test: bool = True) -> None:
    """:func:`train_or_resume` of every ``(config, run_dir, seed, tag)`` of
    ``tasks``, ``jobs`` at once in the order given (each with cores / jobs
    torch threads when ``jobs`` > 1: on 2 cores, 2 jobs of 1 thread train
    1.5x as many iterations a second as 1 of 2 threads), and ``done(tag,
    final metrics, test metrics, seconds)`` (with ``test``; else ``done(tag,
    final metrics, seconds)``) in this thread as each finishes."""
    from concurrent.futures import ThreadPoolExecutor, as_completed
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {
            pool.submit(
                train_or_resume,
                config,
                run_dir,
                seed,
                test=test,
                threads=threads): tag
            for config, run_dir, seed, tag in tasks
        }
        for future in as_completed(futures):
            done(futures[future], *future.result())


SUPERNETS = 'work_dirs/benchmarks/supernets'


def trained_supernet(config: str, epochs: int) -> str:
    """A checkpoint of the supernet of ``config`` trained ``epochs`` epochs
    with ``tools/train.py`` (no validation), trained unless it exists (in
    ``work_dirs/benchmarks/supernets/<config>_<epochs>e``, shared by the
    benchmarks), so that the benchmarks score candidates that detect
    digits."""
    import sys
    stem = os.path.splitext(os.path.basename(config))[0]
    work_dir = os.path.join(SUPERNETS, f'{stem}_{epochs}e')
    ckpt = os.path.join(work_dir, f'epoch_{epochs}.pth')
    if not os.path.isfile(ckpt):
        run_command([
            sys.executable, 'tools/train.py', config, '--work-dir', work_dir,
            '--cfg-options', f'train_cfg.max_epochs={epochs}',
            f'train_cfg.val_interval={epochs + 1}',
            'default_hooks.checkpoint.interval=1'
        ])
    return ckpt
