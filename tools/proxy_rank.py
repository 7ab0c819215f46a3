"""Rank consistency of a proxy (low-fidelity) setting: train the same
subnets under the full setting and under the proxy, and report how well the
proxy ranks them (Kendall tau, Spearman rho, top-k overlap; docs/tricks.md,
T4.1, T5.3).

The subnets are the baseline (every mutable's first choice) and random
distinct subnets of the supernet in CONFIG (its searchable mutables, seeded).
Each is exported as a plain config (``retrain`` recipe of CONFIG if it has
one) and trained from scratch twice: as it is (plus the ``--full``
overrides) and through ``proxy_config`` with the ``--proxy`` factors. Every
finished training is recorded at once in ``<work_dir>/proxy_rank.json``; a
rerun skips the finished ones (an interrupted training starts again).
Results: ``proxy_rank.{json,csv,png}``.

Example:
    python tools/proxy_rank.py \
      configs/supernets/fcos_r18w16_fpn-elastic_gn-head-elastic_12e_digits.py \
      --num-subnets 6 --proxy width_div=2 resolution_div=2 max_epochs=6
"""
import argparse
import csv
import io
import os.path as osp
import time

FACTORS = ('width_div', 'resolution_div', 'max_epochs', 'data_fraction')


def _factors(items):
    out = {}
    for item in items or []:
        key, _, value = item.partition('=')
        if key not in FACTORS or not value:
            raise SystemExit(f'bad factor {item!r}: use KEY=VALUE with KEY '
                             f'one of {list(FACTORS)}')
        out[key] = float(value) if key in ('resolution_div',
                                           'data_fraction') else int(value)
    return out


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='a supernet config')
    parser.add_argument('--num-subnets', type=int, default=6)
    parser.add_argument(
        '--seed',
        type=int,
        default=0,
        help='seed of the subnet draw and of every training (default 0)')
    parser.add_argument(
        '--proxy',
        nargs='+',
        default=['width_div=2'],
        help='proxy factors KEY=VALUE: ' + ', '.join(FACTORS))
    parser.add_argument(
        '--full',
        nargs='*',
        default=[],
        help='factors of the full setting (default: none)')
    parser.add_argument('--score-key', default='coco/bbox_mAP')
    parser.add_argument(
        '--work-dir', help='default: work_dirs/proxy_rank/'
        '<config name>')
    args = parser.parse_args(argv)
    if args.num_subnets < 2:
        parser.error(f'--num-subnets {args.num_subnets}: need >= 2')
    args.proxy = _factors(args.proxy)
    args.full = _factors(args.full)
    return args


def main(argv=None):
    args = parse_args(argv)
    from mmnas_tricks.engine.pipeline import retrain_recipe
    from mmnas_tricks.engine.proxy import proxy_tag
    from mmnas_tricks.engine.rank import (distinct_subnets, load_records,
                                          scatter_png, standalone_config,
                                          train_standalone)
    from mmnas_tricks.structures import subnet_key
    from mmnas_tricks.utils import (build_model, dump_json_atomic, load_config,
                                    rank_consistency)
    from mmnas_tricks.utils.io import atomic_write_text
    cfg = load_config(args.config)
    name = osp.splitext(osp.basename(args.config))[0]
    work = args.work_dir or osp.join('work_dirs', 'proxy_rank', name)
    path = osp.join(work, 'proxy_rank.json')
    state = load_records(path)
    state.update(
        config=args.config,
        proxy=args.proxy,
        full=args.full,
        proxy_tag=proxy_tag(**args.proxy),
        score_key=args.score_key,
        seed=args.seed)
    subnets = distinct_subnets(build_model(cfg), args.num_subnets, args.seed)
    for i, subnet in enumerate(subnets):
        key = subnet_key(subnet)
        rec = state['records'].setdefault(key, dict(index=i, subnet=subnet))
        for setting, factors in (('full', args.full), ('proxy', args.proxy)):
            if setting in rec:
                print(f'subnet {i} {setting}: {rec[setting]:.4f} (done)')
                continue
            static = standalone_config(cfg, subnet, args.seed,
                                       retrain_recipe(cfg), **factors)
            start = time.time()
            rec[setting] = train_standalone(
                static, osp.join(work, setting, f'subnet{i}'),
                f'proxy_rank_{setting}{i}', args.score_key)
            rec[f'{setting}_seconds'] = round(time.time() - start, 1)
            dump_json_atomic(state, path)
            print(f'subnet {i} {setting}: {rec[setting]:.4f}', flush=True)
    rows = sorted(state['records'].values(), key=lambda r: r['index'])
    rows = [r for r in rows if 'full' in r and 'proxy' in r]
    state['rank'] = rank_consistency([r['proxy'] for r in rows],
                                     [r['full'] for r in rows])
    dump_json_atomic(state, path)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ['index', 'full', 'proxy', 'full_seconds', 'proxy_seconds'])
    for r in rows:
        writer.writerow([
            r['index'], r['full'], r['proxy'],
            r.get('full_seconds'),
            r.get('proxy_seconds')
        ])
    atomic_write_text(osp.join(work, 'proxy_rank.csv'), out.getvalue())
    scatter_png([r['full'] for r in rows], [r['proxy'] for r in rows],
                [r['index'] for r in rows], f'full setting {args.score_key}',
                f'proxy {state["proxy_tag"]} {args.score_key}',
                f'Kendall tau {state["rank"]["kendall_tau"]:.3f}',
                osp.join(work, 'proxy_rank.png'))
    rank = state['rank']
    print(f'{state["proxy_tag"]} vs full on {rank["n"]} subnets: Kendall '
          f'tau {rank["kendall_tau"]:.3f}, Spearman rho '
          f'{rank["spearman_rho"]:.3f}, top-{rank["top_k"]} overlap '
          f'{rank["top_k_overlap"]:.2f}')
    return state


if __name__ == '__main__':
    main()
