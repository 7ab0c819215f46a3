"""Describe the search space of a supernet config: its mutables, the size of
the space per component, and FLOPs / parameters of the first and last
subnets (every mutable at its first / last choice) and of the smallest and
largest (every numeric choice at its minimum / maximum: the FLOPs range, as
a ratio to the first subnet's) at the config's input size (``--shape``, else
its data preprocessor's ``size``, else its test pipeline's resize: the one
rule of every figure here, printed beside them).

Example:
    python tools/analysis/space_info.py \
        configs/supernets/fcos_mbv2-search_fpn_gn-head_12e_digits.py
"""
import argparse
import random
from collections import defaultdict

from mmnas_tricks.models.mutables import (extreme_subnet, named_mutables,
                                          sample_subnet, space_size)
from mmnas_tricks.models.resources import (input_size, size_text,
                                           subnet_resources,
                                           traced_input_shape)
from mmnas_tricks.structures import dump_subnet
from mmnas_tricks.utils import build_model, load_config


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='supernet config file')
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        default=None,
        metavar=('H', 'W'),
        help='input size for FLOPs (default: the data preprocessor\'s '
        '`size`, else the test pipeline\'s resize, padded as the network '
        'sees it)')
    parser.add_argument(
        '--list', action='store_true', help='list every mutable')
    parser.add_argument('--json', help='also write the summary to this file')
    parser.add_argument(
        '--write-subnet',
        nargs=2,
        metavar=('WHICH', 'PATH'),
        help='write a subnet file: WHICH is first, last, min, max or random '
        '(with --seed), PATH ends in .yaml / .yml / .json')
    parser.add_argument(
        '--seed', type=int, default=0, help='seed of --write-subnet random')
    return parser.parse_args(argv)


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
        parts={
            p: dict(mutables=n, space_size=space_size(model, f'{p}.*'))
            for p, n in per_part.items()
        })
    try:
        size = input_size(cfg, args.shape)
    except ValueError as e:
        raise SystemExit(str(e))
    shape = size.shape
    for which in ('first', 'last', 'min', 'max'):
        subnet = pick_subnet(model, which)
        summary[f'{which}_subnet'] = dict(
            subnet_resources(model, subnet, input_shape=shape),
            input_size=list(traced_input_shape(model, shape, subnet)[1:]))
    first = summary['first_subnet']['flops']
    summary['flops_range_vs_first'] = [
        summary['min_subnet']['flops'] / first,
        summary['max_subnet']['flops'] / first
    ]
    summary['input_size'] = size.hw
    summary['input_source'] = size.source
    if args.list:
        for name, m in mutables.items():
            print(f'{name}: {m.choices}')
    print(f"{args.config}\n  mutables: {summary['num_mutables']}, space size: "
          f"{summary['space_size']:.2e}")
    for part, info in summary['parts'].items():
        print(f"  {part}: {info['mutables']} mutables, "
              f"{info['space_size']:.2e} subnets")
    print(f'  input size {size}')
    for which in ('first', 'last', 'min', 'max'):
        r = summary[f'{which}_subnet']
        print(f"  {which} subnet at {size_text(r['input_size'])}: "
              f"{r['flops'] / 1e9:.3f} GFLOPs, {r['params'] / 1e6:.3f} M "
              'params')
    low, high = summary['flops_range_vs_first']
    print(f'  FLOPs range: {low:.2f}x to {high:.2f}x the first subnet\'s')
    if args.json:
        from mmnas_tricks.utils import dump_json_atomic
        dump_json_atomic(summary, args.json)
    if args.write_subnet:
        which, path = args.write_subnet
        subnet = pick_subnet(model, which, args.seed)
        dump_subnet(
            subnet,
            path,
            meta=dict(
                source=f'space_info {which}' +
                (f' seed {args.seed}' if which == 'random' else ''),
                config=args.config))
        print(f'  {which} subnet written to {path}')
    return summary


def pick_subnet(model, which: str, seed: int = 0) -> dict:
    if which in ('first', 'last'):
        index = 0 if which == 'first' else -1
        return {n: m.choices[index] for n, m in named_mutables(model).items()}
    if which in ('min', 'max'):
        return extreme_subnet(model, which)
    if which == 'random':
        return sample_subnet(model, random.Random(seed), apply=False)
    raise SystemExit(f'--write-subnet {which!r}: WHICH must be one of '
                     "['first', 'last', 'min', 'max', 'random']")


if __name__ == '__main__':
    main()
