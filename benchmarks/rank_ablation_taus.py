"""Rank quality of several supernets against one stand-alone truth: the
Kendall tau of each supernet's BN-calibrated estimates against the truth's
stand-alone scores, over all subnets and within a FLOPs window, beside
FLOPs alone's taus (the rank-quality bars of docs/benchmarks.md).

Usage (the run on record: docs/benchmarks.md, "Rank quality of the
whole-detector supernet"):
    python benchmarks/rank_ablation_taus.py TRUTH --window 0.85 1.0 \\
        --out OUT.json --estimates main=TRUTH sorted=ESTIMATES.json:sorted

``TRUTH`` is a ``tools/rank_correlation.py`` state file with stand-alone
scores; each ``NAME=FILE`` is another such file (its records'
``estimate_calibrated``) or ``NAME=FILE:KEY``, a JSON whose ``estimates``
(or top level) maps KEY to ``{subnet name: estimate}``. Subnets the truth
has not trained alone yet are left out (the count is written). Writes the
JSON and a CSV beside it; nothing is trained.
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))


def estimates_of(spec: str) -> dict:
    """``{subnet name: estimate}`` of a ``FILE`` or ``FILE:KEY`` spec."""
    path, _, key = spec.partition(':')
    with open(path) as f:
        data = json.load(f)
    if key:
        table = data.get('estimates', data)
        if key not in table:
            raise KeyError(f'{path}: no estimates {key!r} among '
                           f'{sorted(table)}')
        return dict(table[key])
    return {
        r['name']: r['estimate_calibrated']
        for r in data['records'].values() if 'estimate_calibrated' in r
    }


def main(argv=None):
    from mmnas_tricks.engine.tune import rank_objectives, read_truth
    from mmnas_tricks.utils.io import dump_csv_atomic, dump_json_atomic
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('truth')
    parser.add_argument(
        '--estimates', nargs='+', required=True, metavar='NAME=FILE[:KEY]')
    parser.add_argument('--window', nargs=2, type=float, default=None)
    parser.add_argument('--out', required=True)
    args = parser.parse_args(argv)
    truth = read_truth(args.truth)
    rows = []
    for spec in args.estimates:
        name, sep, source = spec.partition('=')
        if not sep:
            parser.error(f'--estimates {spec!r}: need NAME=FILE[:KEY]')
        est = estimates_of(source)
        missing = [r['name'] for r in truth if r['name'] not in est]
        if missing:
            parser.error(f'{source}: no estimate of {missing}')
        taus = rank_objectives([est[r['name']] for r in truth], truth,
                               args.window)
        rows.append(dict(supernet=name, source=source, **taus))
        print(f'{name:28s} ' + '  '.join(f'{k} {v:.3f}'
                                         for k, v in taus.items()))
    window = args.window
    inside = [
        r for r in truth
        if window and window[0] <= r['flops_ratio'] <= window[1]
    ]
    result = dict(
        truth=args.truth,
        subnets=len(truth),
        subnets_in_window=len(inside),
        window=window,
        standalone={r['name']: r['standalone']
                    for r in truth},
        rows=rows)
    dump_json_atomic(result, args.out)
    dump_csv_atomic(rows, osp.splitext(args.out)[0] + '.csv')


if __name__ == '__main__':
    main()
