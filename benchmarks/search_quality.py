"""Search quality on digits: what the one-command pipeline
found, retrained, next to the baselines of the same backbone.

Reads the pipeline results kept under ``benchmarks/results/nas_*``
(``tools/nas.py``'s ``results.json`` and ``nas_state.json``) and the
baselines' seed runs (``benchmarks/baseline_seeds.py``: FCOS, RetinaNet and
the FPN segmentor, ResNet-18 at base width 16), counts the baselines' FLOPs
and parameters (whole model, 128 x 128), and writes one table: score,
GFLOPs, params, supernet + search minutes and the whole pipeline's minutes.
``--run CONFIG NAME`` first runs (or resumes) ``tools/nas.py CONFIG`` and
keeps its results as ``benchmarks/results/nas_NAME``.

Example:
    python benchmarks/search_quality.py
    python benchmarks/search_quality.py --run \
        configs/nas/spos_fcos_r18w16_fpn-elastic_gn-head-elastic_digits.py \
        spos_fcos_elastic_digits                  # ~20 min more
Writes benchmarks/results/search_quality.{json,md,png}.
"""
import argparse
import json
import os
import os.path as osp
import shutil
import sys

from common import machine, run_command, write_result

RESULTS = 'benchmarks/results'
#: (name under benchmarks/results/nas_*, what it is)
RUNS = [
    ('spos_fcos_elastic_digits',
     'FCOS neck+head, SPOS sandwich, 12-epoch supernet (the main job)'),
    ('spos-tunas_fcos_elastic_digits',
     'FCOS neck+head, SPOS + TuNAS warm-up, 12-epoch supernet'),
    ('spos-tunas22_fcos_elastic_digits',
     'FCOS neck+head, SPOS + TuNAS warm-up, 22-epoch supernet'),
    ('spos_fpn_seg_digits', 'FPN segmentor neck+head, SPOS, 12-epoch '
     'supernet'),
]
#: (task, baseline config, its seed runs)
BASELINES = [
    ('detection', 'configs/baselines/fcos_r18w16_fpn_gn-head_12e_digits.py',
     'fcos_r18w16_fpn_gn-head_12e_digits_seeds.json'),
    ('detection', 'configs/baselines/retinanet_r18w16_fpn_12e_digits.py',
     'retinanet_r18w16_fpn_12e_digits_seeds.json'),
    ('segmentation', 'configs/baselines/fpn_r18w16_12e_digits-seg.py',
     'fpn_r18w16_12e_digits-seg_seeds.json'),
]
KEEP = ('results.json', 'results.md', 'results.csv', 'results.png',
        'nas_state.json', 'search/search/candidates.csv',
        'search/search/best_subnet.yaml', 'search/search/score_vs_flops.png')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--run',
        nargs=2,
        metavar=('CONFIG', 'NAME'),
        action='append',
        default=[])
    parser.add_argument(
        '--out', default=osp.join(RESULTS, 'search_quality.json'))
    return parser.parse_args()


def run_pipeline(config: str, name: str) -> None:
    work = osp.join('work_dirs', f'nas_{name}')
    run_command([sys.executable, 'tools/nas.py', config, '--work-dir', work])
    dest = osp.join(RESULTS, f'nas_{name}')
    os.makedirs(dest, exist_ok=True)
    for rel in KEEP:
        if osp.isfile(osp.join(work, rel)):
            shutil.copyfile(
                osp.join(work, rel), osp.join(dest, osp.basename(rel)))


def resources(config: str) -> dict:
    from mmnas_tricks.models import subnet_resources
    from mmnas_tricks.models.resources import input_size
    from mmnas_tricks.utils import load_config
    from mmnas_tricks.utils.launch import build_model
    cfg = load_config(config)
    size = input_size(cfg)
    res = subnet_resources(build_model(cfg), {}, input_shape=size.shape)
    return dict(
        gflops=round(res['flops'] / 1e9, 4),
        params_m=round(res['params'] / 1e6, 4),
        input_size=size.hw)


def baseline_rows() -> list:
    rows = []
    for task, config, seeds in BASELINES:
        path = osp.join(RESULTS, seeds)
        if not osp.isfile(path):
            print(f'skipped {config}: no {path}')
            continue
        with open(path) as f:
            runs = json.load(f)
        rows.append(
            dict(
                kind='baseline',
                task=task,
                name=osp.basename(config)[:-3],
                config=config,
                metric=runs['metric'],
                score=round(runs['mean'], 4),
                score_std=round(runs['std'], 4),
                seeds=len(runs['runs']),
                **resources(config)))
    return rows


def found_rows() -> list:
    rows = []
    for name, what in RUNS:
        path = osp.join(RESULTS, f'nas_{name}', 'results.json')
        if not osp.isfile(path):
            print(f'skipped {name}: no {path}')
            continue
        with open(path) as f:
            res = json.load(f)
        found = next(r for r in res['rows'] if r['model'] == 'found')
        base = next(r for r in res['rows'] if r['model'] == 'baseline')
        minutes = res.get('stage_minutes', {})
        rows.append(
            dict(
                kind='found',
                task='segmentation'
                if 'mIoU' in found['score_key'] else 'detection',
                name=name,
                what=what,
                metric=found['score_key'],
                score=found['score'],
                gflops=found['gflops'],
                params_m=found['params_m'],
                supernet_estimate=found.get('supernet_score'),
                baseline_same_seed=base['score'],
                baseline_gflops=base['gflops'],
                delta=round(found['score'] - base['score'], 4),
                flops_ratio=round(found['gflops'] / base['gflops'], 4),
                supernet_min=round(minutes.get('supernet', 0), 1),
                search_min=round(minutes.get('search', 0), 1),
                pipeline_min=round(sum(minutes.values()), 1),
                verdict=res.get('verdict')))
    return rows


def markdown(rows) -> str:
    lines = [
        '| model | task | score | GFLOPs | params (M) | supernet + '
        'search (min) | pipeline (min) |', '|---|---|---|---|---|---|---|'
    ]
    for r in rows:
        if r['kind'] == 'baseline':
            score = f'{r["score"]} ± {r["score_std"]} ({r["seeds"]} seeds)'
            cost = pipe = ''
        else:
            score = (f'{r["score"]} (baseline, same seed: '
                     f'{r["baseline_same_seed"]})')
            cost = f'{r["supernet_min"]} + {r["search_min"]}'
            pipe = str(r['pipeline_min'])
        lines.append(f'| {r.get("what", r["name"])} | {r["task"]} '
                     f'({r["metric"]}) | {score} | {r["gflops"]} | '
                     f'{r["params_m"]} | {cost} | {pipe} |')
    return '\n'.join(lines) + '\n'


def plot(rows, path: str) -> None:
    from mmnas_tricks.utils.io import new_figure, save_png_atomic
    tasks = sorted({r['task'] for r in rows})
    fig, axes = new_figure((6 * len(tasks), 4), len(tasks), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for r in (r for r in rows if r['task'] == task):
            marker = 'o' if r['kind'] == 'baseline' else '*'
            ax.errorbar(
                r['gflops'],
                r['score'],
                yerr=r.get('score_std'),
                fmt=marker,
                capsize=3,
                markersize=9,
                label=r['name'])
        ax.set_xlabel('GFLOPs (whole model, 128 x 128)')
        ax.set_ylabel(rows[0]['metric'] if task == 'detection' else 'mIoU')
        ax.set_title(task)
        ax.legend(fontsize=7)
    save_png_atomic(fig, path)


def main():
    args = parse_args()
    for config, name in args.run:
        run_pipeline(config, name)
    rows = baseline_rows() + found_rows()
    stem = args.out[:-len('.json')] if args.out.endswith('.json') \
        else args.out
    from mmnas_tricks.utils.io import atomic_write_text
    atomic_write_text(stem + '.md', markdown(rows))
    plot(rows, stem + '.png')
    write_result(
        dict(
            machine('cpu'),
            benchmark='search_quality',
            rows=rows,
            command=' '.join(['python'] + sys.argv)), args.out)
    print(markdown(rows))


if __name__ == '__main__':
    main()
