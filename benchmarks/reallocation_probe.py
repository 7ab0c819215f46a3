"""Where is the headroom at the baseline's FLOPs? Hand-made re-allocations
of the baseline FCOS, trained alone.

The baseline (``configs/baselines/fcos_r18w16_fpn_gn-head_12e_digits.py``:
ResNet-18 at base width 16, a 64-channel FPN, two 4-conv GroupNorm towers of
64 channels, 128 px) spends about 60 % of its FLOPs in the head towers. Each
variant moves FLOPs from one part to another with plain mmdet options
(``stacked_convs``, ``feat_channels``, the ResNet's ``depth`` and
``base_channels``, the input size) or is a subnet of the whole-detector
space (per-stage depths and widths; exported as the search exports one),
is written as a plain config
``<work-dir>/<name>.py`` and trained with ``tools/train.py`` and the
baseline's recipe (seed 0 by default) in ``<work-dir>/<name>``; a finished
one is not retrained, an interrupted one resumes. FLOPs are counted at the
variant's input size.

Example:
    python benchmarks/reallocation_probe.py --flops-only   # seconds
    python benchmarks/reallocation_probe.py                # ~5 min a variant
Writes benchmarks/results/reallocation_probe.json (and .csv, .png).
"""
import argparse
import json
import os
import os.path as osp
import sys

from common import machine, train_or_resume, write_result

BASELINE = 'configs/baselines/fcos_r18w16_fpn_gn-head_12e_digits.py'


def _backbone(width=16, depth=18):
    """The ResNet's options and the FPN in-channels that follow."""
    return {
        'model.backbone.base_channels': width,
        'model.backbone.depth': depth,
        'model.neck.in_channels': [2 * width, 4 * width, 8 * width],
    }


def _feat(fpn, towers=None):
    """FPN width ``fpn`` and tower width ``towers`` (default: ``fpn``);
    GroupNorm keeps the baseline's 4 channels per group."""
    towers = towers or fpn
    return {
        'model.neck.out_channels': fpn,
        'model.bbox_head.in_channels': fpn,
        'model.bbox_head.feat_channels': towers,
        'model.bbox_head.norm_cfg.num_groups': towers // 4,
    }


def _size(size):
    """Every pipeline's Resize at ``size`` x ``size``."""
    return {'_size': size}


WHOLE = 'configs/supernets/fcos_whole-elastic_r18w16_fpn_gn-head_12e_digits.py'


def _whole(size, widths, depths, fpn, towers, tower_depth):
    """A subnet of the whole-detector space (:data:`WHOLE`), as changes
    of its first subnet (the baseline): input size, per-stage backbone
    widths and depths, FPN and tower widths, both towers' depth."""
    subnet = {
        'data_preprocessor.size': size,
        'neck.width': fpn,
        'bbox_head.width': towers,
        'bbox_head.cls_convs': tower_depth,
        'bbox_head.reg_convs': tower_depth
    }
    for i, (width, depth) in enumerate(zip(widths, depths)):
        subnet[f'backbone.widths.{i}'] = width
        subnet[f'backbone.layer{i + 1}'] = depth
    return subnet


#: name -> (description, cfg options changed from the baseline, or
#: ``{'_subnet': changes of the whole-detector space's first subnet}``)
VARIANTS = {
    'baseline': ('the baseline itself', {}),
    'head2_w24': ('2-conv towers; backbone base width 24 (x1.5)', {
        'model.bbox_head.stacked_convs': 2,
        **_backbone(width=24)
    }),
    'head2_r34': ('2-conv towers; ResNet-34 depths (3-4-6-3) at width 16', {
        'model.bbox_head.stacked_convs': 2,
        **_backbone(depth=34)
    }),
    'head2_160px_w12': ('2-conv towers; input 160 px; backbone width 12', {
        'model.bbox_head.stacked_convs': 2,
        **_backbone(width=12),
        **_size(160)
    }),
    'head3_w20': ('3-conv towers; backbone base width 20', {
        'model.bbox_head.stacked_convs': 3,
        **_backbone(width=20)
    }),
    'feat48_w24': ('48-channel towers and FPN; backbone base width 24', {
        'model.bbox_head.feat_channels': 48,
        'model.bbox_head.in_channels': 48,
        'model.neck.out_channels': 48,
        **_backbone(width=24)
    }),
    'feat48_160px_w12': ('48-channel towers and FPN; input 160 px; '
                         'backbone width 12', {
                             'model.bbox_head.feat_channels': 48,
                             'model.bbox_head.in_channels': 48,
                             'model.neck.out_channels': 48,
                             **_backbone(width=12),
                             **_size(160)
                         }),
    # below width x0.5 (0.27x the baseline's FLOPs): resolution paid for by
    # towers narrower than the whole-detector space's narrowest (32)
    'feat16_160px_w8': ('16-channel towers and FPN; input 160 px; backbone '
                        'width 8', {
                            **_feat(16),
                            **_backbone(width=8),
                            **_size(160)
                        }),
    'feat24_160px_w8': ('24-channel towers and FPN; input 160 px; backbone '
                        'width 8', {
                            **_feat(24),
                            **_backbone(width=8),
                            **_size(160)
                        }),
    'fpn32_head16_160px_w8': ('32-channel FPN, 16-channel towers; input '
                              '160 px; backbone width 8', {
                                  **_feat(32, 16),
                                  **_backbone(width=8),
                                  **_size(160)
                              }),
    'feat24_w8': ('24-channel towers and FPN; backbone width 8 (128 px)', {
        **_feat(24),
        **_backbone(width=8)
    }),
    # below width x0.5 with shallower towers, per-stage depths and widths:
    # subnets of the whole-detector space (its tower depths 4 / 3 / 2,
    # which the main job pins at 4), exported as plain configs
    'towers2_160px_w8_d1112': ('2-conv towers, FPN and towers 32; input '
                               '160 px; backbone 8/16/32/64, depths '
                               '1/1/1/2', {
                                   '_subnet':
                                   _whole(160, (8, 16, 32, 64), (1, 1, 1, 2),
                                          32, 32, 2)
                               }),
    'towers2_w12_d2221': ('2-conv towers, FPN and towers 32; backbone '
                          '12/24/48/96, depths 2/2/2/1 (128 px)', {
                              '_subnet':
                              _whole(128, (12, 24, 48, 96), (2, 2, 2, 1), 32,
                                     32, 2)
                          }),
    'towers2_w8-8-12-12': ('2-conv towers, FPN and towers 32; backbone '
                           '8/16/48/96 (128 px)', {
                               '_subnet':
                               _whole(128, (8, 16, 48, 96), (2, 2, 2, 2), 32,
                                      32, 2)
                           }),
    'towers3_w8': ('width x0.5 with 3-conv towers (128 px)', {
        '_subnet':
        _whole(128, (8, 16, 32, 64), (2, 2, 2, 2), 32, 32, 3)
    }),
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--names', nargs='+', default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--flops-only',
        action='store_true',
        help='count FLOPs and parameters, train nothing')
    parser.add_argument('--work-dir', default='work_dirs/reallocation_probe')
    parser.add_argument(
        '--out', default='benchmarks/results/reallocation_probe.json')
    return parser.parse_args()


def variant_config(name: str):
    """The baseline config with the variant's options; its input size."""
    from mmnas_tricks.utils import load_config
    options = dict(VARIANTS[name][1])
    if '_subnet' in options:
        return _subnet_config(options['_subnet'])
    cfg = load_config(BASELINE)
    size = options.pop('_size', 128)
    cfg.merge_from_dict(options)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        for step in cfg[loader].dataset.pipeline:
            if step.type == 'Resize':
                step.scale = (size, size)
    return cfg, size


def _subnet_config(changes: dict):
    """The plain config of a subnet of :data:`WHOLE` (the way the search
    exports one, with the baseline's recipe); its input size."""
    from mmnas_tricks.engine.export import strip_search_settings
    from mmnas_tricks.models import export_config
    from mmnas_tricks.models.inherit import plain_subnet
    from mmnas_tricks.utils import build_model, load_config
    cfg = load_config(WHOLE)
    model = build_model(cfg)
    subnet = {**plain_subnet(model), **changes}
    static = export_config(cfg, subnet, model)
    strip_search_settings(static)
    return static, changes['data_preprocessor.size']


def export(name: str, work_dir: str):
    """Write ``<work_dir>/<name>.py``; returns (path, GFLOPs, M params)."""
    from mmnas_tricks.models import subnet_resources
    from mmnas_tricks.models.resources import input_size
    from mmnas_tricks.utils import atomic_write_text, build_model
    cfg, _ = variant_config(name)
    path = osp.join(work_dir, f'{name}.py')
    atomic_write_text(path, cfg.pretty_text)
    res = subnet_resources(
        build_model(cfg), {}, input_shape=input_size(cfg).shape)
    return path, round(res['flops'] / 1e9, 4), round(res['params'] / 1e6, 4)


def plot(rows, path):
    from mmnas_tricks.utils.io import new_figure, save_png_atomic
    fig, ax = new_figure((6, 4))
    for row in rows:
        if row.get('bbox_mAP') is None:
            continue
        ax.scatter(
            row['gflops'],
            row['bbox_mAP'],
            c='k' if row['name'] == 'baseline' else 'C0')
        ax.annotate(
            row['name'], (row['gflops'], row['bbox_mAP']),
            fontsize=7,
            xytext=(3, 3),
            textcoords='offset points')
    ax.set_xlabel('GFLOPs (at the variant\'s input size)')
    ax.set_ylabel('bbox mAP (digits val, seed 0)')
    ax.set_title('Re-allocations of the baseline FCOS, trained alone')
    save_png_atomic(fig, path, dpi=120)


def main():
    args = parse_args()
    os.makedirs(args.work_dir, exist_ok=True)
    rows = []
    for name in args.names:
        path, gflops, params = export(name, args.work_dir)
        row = dict(
            name=name,
            what=VARIANTS[name][0],
            options=VARIANTS[name][1],
            gflops=gflops,
            params_m=params,
            config=path)
        if not args.flops_only:
            metrics, seconds = train_or_resume(path,
                                               osp.join(args.work_dir, name),
                                               args.seed)
            row['bbox_mAP'] = metrics['coco/bbox_mAP']
            if seconds is not None:
                row['train_seconds'] = round(seconds, 1)
        rows.append(row)
        print(
            f'{name}: {gflops} GFLOPs, {params} M params, '
            f'bbox mAP {row.get("bbox_mAP")}',
            flush=True)
        if not args.flops_only:  # every training recorded as it finishes
            write_all(rows, args)
    if args.flops_only:
        print(json.dumps(rows, indent=1))


def write_all(rows, args):
    base = next((r['gflops'] for r in rows if r['name'] == 'baseline'),
                None) or export('baseline', args.work_dir)[1]
    for row in rows:
        row['flops_vs_baseline'] = round(row['gflops'] / base, 3)
    stem = args.out[:-len('.json')]
    from mmnas_tricks.utils import dump_csv_atomic
    dump_csv_atomic(rows, stem + '.csv', [
        'name', 'gflops', 'flops_vs_baseline', 'params_m', 'bbox_mAP',
        'train_seconds', 'what'
    ])
    plot(rows, stem + '.png')
    write_result(
        dict(
            machine('cpu'),
            benchmark='reallocation_probe',
            baseline=BASELINE,
            seed=args.seed,
            rows=rows,
            command=' '.join(['python'] + sys.argv)), args.out)


if __name__ == '__main__':
    main()
