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
import os
import os.path as osp

import torch

import mmnas_tricks.engine  # noqa: F401  (registers the hooks it strips)
from mmnas_tricks.models import (export_config, export_static,
                                 save_static_checkpoint)
from mmnas_tricks.models.mutables import BaseMutable, load_subnet, set_subnet
from mmnas_tricks.registry import HOOKS
from mmnas_tricks.utils import (atomic_write_text, build_model,
                                explain_unsafe_checkpoint, load_config)


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
        '--name', help='file stem of the outputs (default: the subnet file '
        "stem)")
    parser.add_argument(
        '--calibrate-bn', type=int, default=None, metavar='N',
        help='recompute the BatchNorm statistics of the subnet on N training '
        'batches before exporting (default: 20 with --checkpoint, else 0): '
        'a supernet\'s running statistics mix every sampled subnet')
    return parser.parse_args(argv)


def strip_search_settings(cfg) -> None:
    """Remove what only supernet training needs: hooks whose class says
    ``search_only = True`` and DDP's tolerance of unused parameters."""
    hooks = []
    for hook in cfg.get('custom_hooks', []) or []:
        type_ = hook.get('type', '')
        name = type_.split('.', 1)[1] if isinstance(type_, str) and \
            type_.startswith('mmnas_tricks.') else type_
        cls = HOOKS.module_dict.get(name) if isinstance(name, str) else None
        if not getattr(cls, 'search_only', False):
            hooks.append(hook)
    cfg.custom_hooks = hooks
    if 'find_unused_parameters' in cfg:
        cfg.find_unused_parameters = False


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
            load_checkpoint(model, args.checkpoint, map_location='cpu',
                            strict=True)
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
    model.eval()
    exported = export_config(cfg, subnet)
    strip_search_settings(exported)
    exported.load_from = None
    exported.resume = False
    name = args.name or osp.splitext(osp.basename(args.subnet))[0]
    out_dir = args.out_dir or osp.join(
        'work_dirs', osp.splitext(osp.basename(args.config))[0], 'export')
    os.makedirs(out_dir, exist_ok=True)
    cfg_path = osp.join(out_dir, f'{name}.py')
    ckpt_path = osp.join(out_dir, f'{name}.pth')

    # check before writing: the exported config's model takes the static
    # weights strictly and computes what the supernet computes
    static = export_static(model, subnet).eval()
    rebuilt = build_model(exported).eval()
    if any(isinstance(m, BaseMutable) for m in rebuilt.modules()):
        raise RuntimeError('the exported config still builds mutables')
    rebuilt.load_state_dict(static.state_dict(), strict=True)
    shape = cfg.model.get('data_preprocessor', {}).get('size') or (128, 128)
    x = torch.rand(1, 3, *shape) * 255
    with torch.no_grad():
        want = _flat(model._forward(x))
        got = _flat(rebuilt._forward(x))
    diff = max((a - b).abs().max().item() for a, b in zip(want, got))
    if len(want) != len(got) or diff > 1e-4:
        raise RuntimeError(f'exported model differs from the supernet: max '
                           f'abs difference {diff:.3g}')

    save_static_checkpoint(
        model, ckpt_path, subnet,
        meta=dict(meta=dict(meta), supernet_config=args.config,
                  supernet_checkpoint=args.checkpoint))
    atomic_write_text(cfg_path, exported.pretty_text)
    n_params = sum(p.numel() for p in rebuilt.parameters())
    print(f'exported {len(subnet)} choices: {n_params / 1e6:.3f} M params, '
          f'max abs difference to the supernet {diff:.2g}')
    print(f'config: {cfg_path}\ncheckpoint: {ckpt_path}')
    return cfg_path, ckpt_path


def _flat(out):
    if torch.is_tensor(out):
        return [out]
    return [t for item in out for t in _flat(item)]


if __name__ == '__main__':
    main()
