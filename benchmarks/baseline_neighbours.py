"""Is anything in the main job's space better than the baseline at its
FLOPs? Equal-FLOPs neighbours of the baseline, trained alone.

In the main job's space (``configs/nas/spos_fcos_r18w16_fpn-elastic_gn-
head-elastic_digits.py``) a 3x3 conv dilated 2 costs what the plain 3x3
costs. Each neighbour (and the baseline subnet itself, which checks the
export) is exported from the supernet config like a found architecture
(``retrain`` recipe: the baseline's) and trained with ``tools/train.py``
(seed 0 by default) in ``<work-dir>/<name>``; a finished one is not
retrained, an interrupted one resumes.

Example:
    python benchmarks/baseline_neighbours.py          # ~5 min per subnet
Writes benchmarks/results/baseline_neighbours.json.
"""
import argparse
import os
import os.path as osp
import sys

from common import machine, train_or_resume, write_result

CONFIG = 'configs/nas/spos_fcos_r18w16_fpn-elastic_gn-head-elastic_digits.py'
#: name -> (description, {mutable: choice} changed from the baseline)
NEIGHBOURS = {
    'baseline': ('the baseline subnet itself (checks the export)', {}),
    'towers_d2': ('all 8 head tower convs dilated 2', {
        f'bbox_head.{b}_convs.{i}': (3, 2)
        for b in ('cls', 'reg') for i in range(4)
    }),
    'towers_last2_d2': ('the last 2 tower convs of each branch dilated 2', {
        f'bbox_head.{b}_convs.{i}': (3, 2)
        for b in ('cls', 'reg') for i in (2, 3)
    }),
    'fpn_d2': ('the 3 FPN output convs dilated 2',
               {f'neck.fpn_convs.{i}': (3, 2)
                for i in range(3)}),
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--names',
        nargs='+',
        default=list(NEIGHBOURS),
        choices=list(NEIGHBOURS))
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--work-dir', default='work_dirs/baseline_neighbours')
    parser.add_argument(
        '--out', default='benchmarks/results/baseline_neighbours.json')
    return parser.parse_args()


def export(name: str, work_dir: str):
    """Write ``<work_dir>/<name>.py``; returns (path, GFLOPs, baseline's)."""
    from mmnas_tricks.engine.export import apply_retrain, strip_search_settings
    from mmnas_tricks.models import export_config, subnet_resources
    from mmnas_tricks.models.inherit import plain_subnet
    from mmnas_tricks.models.resources import input_size
    from mmnas_tricks.utils import atomic_write_text, build_model, load_config
    cfg = load_config(CONFIG)
    retrain = cfg.pop('nas')['retrain']
    model = build_model(cfg)
    first = plain_subnet(model)
    subnet = dict(first, **NEIGHBOURS[name][1])
    static = apply_retrain(export_config(cfg, subnet), retrain)
    strip_search_settings(static)
    static.load_from = None
    path = osp.join(work_dir, f'{name}.py')
    atomic_write_text(path, static.pretty_text)
    shape = input_size(cfg).shape
    flops = [
        subnet_resources(model, s, shape)['flops'] / 1e9
        for s in (subnet, first)
    ]
    return path, round(flops[0], 4), round(flops[1], 4)


def main():
    args = parse_args()
    os.makedirs(args.work_dir, exist_ok=True)
    rows = []
    for name in args.names:
        path, gflops, base_gflops = export(name, args.work_dir)
        metrics, _ = train_or_resume(path, osp.join(args.work_dir, name),
                                     args.seed)
        score = metrics['coco/bbox_mAP']
        rows.append(
            dict(
                name=name,
                what=NEIGHBOURS[name][0],
                changes={k: list(v)
                         for k, v in NEIGHBOURS[name][1].items()},
                bbox_mAP=score,
                gflops=gflops,
                baseline_gflops=base_gflops,
                config=path))
        print(
            f'{name}: bbox mAP {score} at {gflops} GFLOPs '
            f'(baseline subnet {base_gflops})',
            flush=True)
    write_result(
        dict(
            machine('cpu'),
            benchmark='baseline_neighbours',
            config=CONFIG,
            seed=args.seed,
            rows=rows,
            command=' '.join(['python'] + sys.argv)), args.out)


if __name__ == '__main__':
    main()
