"""Seed-to-seed spread of a training recipe: train one config with several
seeds and summarise the final metric (mean, std, range, wall time).

Example:
    python benchmarks/baseline_seeds.py \
        configs/baselines/fcos_r18w16_fpn_gn-head_12e_digits.py \
        --seeds 1 2 3 --metric coco/bbox_mAP --jobs 1

Writes ``<out-dir>/<config>_seeds.json``, ``.csv`` and a ``.png`` plot.
``--jobs 2`` runs two seeds at once with one thread each (on 2 cores slightly
faster in total than one at a time with two threads; wall times are then per
run under that load).
A seed whose run finished before (``final_metrics.json`` and
``wall_time.json`` in its work dir) is not trained again, so a killed
benchmark resumes where it stopped.
"""
import argparse
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import time

from mmnas_tricks.utils import dump_csv_atomic, dump_json_atomic

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--seeds', type=int, nargs='+', default=[1, 2, 3])
    parser.add_argument('--metric', default='coco/bbox_mAP')
    parser.add_argument('--jobs', type=int, default=1)
    parser.add_argument('--out-dir', default='work_dirs/seeds')
    parser.add_argument(
        '--threads',
        type=int,
        default=None,
        help='OMP_NUM_THREADS per run (default: cores / jobs when jobs > 1)')
    parser.add_argument('--cfg-options', nargs='*', default=[])
    return parser.parse_args()


def launch(config, seed, work_dir, threads, cfg_options):
    env = dict(os.environ)
    if threads:
        env['OMP_NUM_THREADS'] = str(threads)
    cmd = [
        sys.executable,
        osp.join(REPO, 'tools', 'train.py'), config, '--work-dir', work_dir,
        '--cfg-options', f'randomness.seed={seed}', *cfg_options
    ]
    log = open(osp.join(work_dir + '.log'), 'w')
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=log), time.time()


def _finished(work_dir):
    """(metrics, wall seconds) of a finished run in work_dir, else None."""
    metrics = osp.join(work_dir, 'final_metrics.json')
    timing = osp.join(work_dir, 'wall_time.json')
    if not (osp.isfile(metrics) and osp.isfile(timing)):
        return None
    with open(metrics) as f, open(timing) as g:
        return json.load(f), json.load(g)['wall_s']


def main():
    args = parse_args()
    name = osp.splitext(osp.basename(args.config))[0]
    os.makedirs(args.out_dir, exist_ok=True)
    threads = args.threads or (max(1, (os.cpu_count() or 2) //
                                   args.jobs) if args.jobs > 1 else None)
    pending = list(args.seeds)
    running, rows = {}, []
    while pending or running:
        while pending and len(running) < args.jobs:
            seed = pending.pop(0)
            work_dir = osp.join(args.out_dir, f'{name}_seed{seed}')
            done = _finished(work_dir)
            if done is not None:  # a finished run is not repeated
                rows.append(
                    dict(
                        seed=seed, value=done[0][args.metric], wall_s=done[1]))
                continue
            os.makedirs(work_dir, exist_ok=True)
            running[seed] = (work_dir, *launch(args.config, seed, work_dir,
                                               threads, args.cfg_options))
        time.sleep(2)
        for seed, (work_dir, proc, start) in list(running.items()):
            if proc.poll() is None:
                continue
            del running[seed]
            wall = time.time() - start
            if proc.returncode != 0:
                raise SystemExit(f'seed {seed} failed; see {work_dir}.log')
            with open(osp.join(work_dir, 'final_metrics.json')) as f:
                metrics = json.load(f)
            dump_json_atomic(
                dict(wall_s=round(wall, 1), threads=threads),
                osp.join(work_dir, 'wall_time.json'))
            rows.append(
                dict(
                    seed=seed,
                    value=metrics[args.metric],
                    wall_s=round(wall, 1)))
            print(
                f'seed {seed}: {args.metric}={metrics[args.metric]:.4f} '
                f'({wall:.0f} s)',
                flush=True)
    rows.sort(key=lambda r: r['seed'])
    values = [r['value'] for r in rows]
    summary = dict(
        config=args.config,
        metric=args.metric,
        jobs=args.jobs,
        runs=rows,
        mean=statistics.mean(values),
        std=statistics.stdev(values) if len(values) > 1 else 0.0,
        range=max(values) - min(values),
        mean_wall_s=statistics.mean(r['wall_s'] for r in rows))
    print(json.dumps(summary, indent=2))
    dump_json_atomic(summary, osp.join(args.out_dir, f'{name}_seeds.json'))
    dump_csv_atomic(rows, osp.join(args.out_dir, f'{name}_seeds.csv'),
                    ['seed', 'value', 'wall_s'])
    plot(summary, osp.join(args.out_dir, f'{name}_seeds.png'))


def plot(summary, path):
    """One dot per seed, the mean as a line; written atomically."""
    from mmnas_tricks.utils.io import new_figure, save_png_atomic
    runs = summary['runs']
    fig, ax = new_figure((4, 3))
    ax.scatter([r['seed'] for r in runs], [r['value'] for r in runs])
    ax.axhline(
        summary['mean'],
        linestyle='--',
        color='gray',
        label=f"mean {summary['mean']:.3f}, range "
        f"{summary['range']:.3f}")
    ax.set_xlabel('seed')
    ax.set_ylabel(summary['metric'])
    ax.set_xticks([r['seed'] for r in runs])
    ax.set_title(osp.basename(summary['config']), fontsize=7)
    ax.legend(fontsize=7)
    save_png_atomic(fig, path)


if __name__ == '__main__':
    main()
