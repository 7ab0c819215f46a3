"""Export a subnet of a supernet as a plain model: a config in which every
searchable module builds only its chosen candidates (no mutables), and a
checkpoint holding only the chosen weights (kernels cropped, channels
sliced). Both are checked before they are written: the exported config's
model loads the checkpoint with strict=True and computes what the supernet
computes for that subnet.

Example:
    python tools/export_subnet.py \
        configs/supernets/fcos_mbv2-search_fpn_gn-head_12e_digits.py \
        subnet.yaml --checkpoint work_dirs/supernet/epoch_12.pth \
        --out-dir work_dirs/exported
    python tools/test.py work_dirs/exported/subnet.py \
        work_dirs/exported/subnet.pth
"""
import argparse
import os.path as osp

from mmnas_tricks.engine.export import export_subnet_files
from mmnas_tricks.models.mutables import (load_subnet, set_subnet,
                                          subnet_param_count)
from mmnas_tricks.utils import (build_model, explain_unsafe_checkpoint,
                                load_config)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='supernet config file')
    parser.add_argument('subnet', help='subnet file (.yaml / .yml / .json)')
    parser.add_argument(
        '--checkpoint',
        help='supernet checkpoint whose chosen weights are exported '
        '(default: none; the checkpoint then holds the initial weights)')
    parser.add_argument(
        '--out-dir',
        help='output folder (default: work_dirs/<config name>/export)')
    parser.add_argument(
        '--name',
        help='file stem of the outputs (default: the subnet file '
        'stem)')
    parser.add_argument(
        '--calibrate-bn',
        type=int,
        default=None,
        metavar='N',
        help='recompute the BatchNorm statistics of the subnet on N training '
        'batches before exporting (default: 20 with --checkpoint, else 0): '
        'a supernet\'s running statistics mix every sampled subnet')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config)
    model = build_model(cfg)
    subnet, meta = load_subnet(args.subnet, model)
    if args.checkpoint:
        if not osp.isfile(args.checkpoint):
            raise FileNotFoundError(
                f'checkpoint {args.checkpoint!r} does not exist')
        from mmengine.runner import load_checkpoint
        with explain_unsafe_checkpoint():
            load_checkpoint(
                model, args.checkpoint, map_location='cpu', strict=True)
    set_subnet(model, subnet)
    num_calib = args.calibrate_bn
    if num_calib is None:
        num_calib = 20 if args.checkpoint else 0
    if num_calib > 0:
        from mmengine.registry import DefaultScope
        from mmengine.runner import Runner

        from mmnas_tricks.engine import calibrate_bn
        with DefaultScope.overwrite_default_scope(
                cfg.get('default_scope') or 'mmdet'):
            loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
            used = calibrate_bn(model, loader, num_calib)
        print(f'BN statistics recalibrated for the subnet on {used} '
              'training batches')
    name = args.name or osp.splitext(osp.basename(args.subnet))[0]
    out_dir = args.out_dir or osp.join(
        'work_dirs',
        osp.splitext(osp.basename(args.config))[0], 'export')
    cfg_path, ckpt_path, diff = export_subnet_files(
        cfg,
        model,
        subnet,
        out_dir,
        name,
        meta=dict(
            meta=dict(meta),
            supernet_config=args.config,
            supernet_checkpoint=args.checkpoint))
    n_params = subnet_param_count(model, subnet)
    print(f'exported {len(subnet)} choices: {n_params / 1e6:.3f} M params, '
          f'max abs difference to the supernet {diff:.2g}')
    print(f'config: {cfg_path}\ncheckpoint: {ckpt_path}')
    return cfg_path, ckpt_path


if __name__ == '__main__':
    main()
