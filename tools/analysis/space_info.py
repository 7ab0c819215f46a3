"""Describe the search space of a supernet config: its mutables, the size of
the space per component, and FLOPs / parameters of the first and last
subnets (every mutable at its first / last choice) at the config's input.

Example:
    python tools/analysis/space_info.py \
        configs/supernets/fcos_mbv2-search_fpn_gn-head_12e_digits.py
"""
import argparse
import json
from collections import defaultdict

from mmnas_tricks.models.mutables import named_mutables, space_size
from mmnas_tricks.models.resources import subnet_resources
from mmnas_tricks.utils import build_model, load_config


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='supernet config file')
    parser.add_argument(
        '--shape', type=int, nargs=2, default=None, metavar=('H', 'W'),
        help='input size for FLOPs (default: the data preprocessor size, '
        'else 128 x 128 for digits configs, else 800 x 1333)')
    parser.add_argument(
        '--list', action='store_true', help='list every mutable')
    parser.add_argument('--json', help='also write the summary to this file')
    return parser.parse_args(argv)


def input_shape(cfg, shape=None):
    if shape:
        return (3, *shape)
    size = cfg.model.get('data_preprocessor', {}).get('size')
    if size:
        return (3, *size)
    return (3, 128, 128) if 'digits' in str(cfg.filename) else (3, 800, 1333)


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config)
    model = build_model(cfg)
    mutables = named_mutables(model)
    if not mutables:
        raise SystemExit(f'{args.config}: no mutable in this model (not a '
                         'supernet config)')
    per_part = defaultdict(int)
    for name in mutables:
        per_part[name.split('.')[0]] += 1
    summary = dict(
        config=args.config,
        num_mutables=len(mutables),
        space_size=space_size(model),
        parts={p: dict(mutables=n, space_size=space_size(model, f'{p}.*'))
               for p, n in per_part.items()})
    shape = input_shape(cfg, args.shape)
    for which, index in (('first', 0), ('last', -1)):
        subnet = {n: m.choices[index] for n, m in mutables.items()}
        summary[f'{which}_subnet'] = subnet_resources(
            model, subnet, input_shape=shape)
    summary['input_shape'] = list(shape)
    if args.list:
        for name, m in mutables.items():
            print(f'{name}: {m.choices}')
    print(f"{args.config}\n  mutables: {summary['num_mutables']}, space size: "
          f"{summary['space_size']:.2e}")
    for part, info in summary['parts'].items():
        print(f"  {part}: {info['mutables']} mutables, "
              f"{info['space_size']:.2e} subnets")
    for which in ('first', 'last'):
        r = summary[f'{which}_subnet']
        print(f"  {which} subnet at {shape}: {r['flops'] / 1e9:.3f} GFLOPs, "
              f"{r['params'] / 1e6:.3f} M params")
    if args.json:
        from mmnas_tricks.utils import dump_json_atomic
        dump_json_atomic(summary, args.json)
    return summary


if __name__ == '__main__':
    main()
