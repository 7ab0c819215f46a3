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
import os.path as osp

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
    from mmnas_tricks.engine.rank import distinct_subnets, standalone_config
    from mmnas_tricks.engine.study import RankStudy, rows_by_index
    from mmnas_tricks.structures import subnet_key
    from mmnas_tricks.utils import build_model, load_config
    cfg = load_config(args.config)
    name = osp.splitext(osp.basename(args.config))[0]
    study = RankStudy(
        args.work_dir or osp.join('work_dirs', 'proxy_rank', name),
        'proxy_rank')
    state = study.state
    state.update(
        config=args.config,
        proxy=args.proxy,
        full=args.full,
        proxy_tag=proxy_tag(**args.proxy),
        score_key=args.score_key,
        seed=args.seed)
    subnets = distinct_subnets(build_model(cfg), args.num_subnets, args.seed)
    keys = []
    for i, subnet in enumerate(subnets):
        keys.append(subnet_key(subnet))
        rec = study.records.setdefault(keys[-1], dict(index=i, subnet=subnet))
        for setting, factors in (('full', args.full), ('proxy', args.proxy)):
            static = standalone_config(cfg, subnet, args.seed,
                                       retrain_recipe(cfg), **factors)
            study.train(rec, static, args.score_key,
                        osp.join(setting,
                                 f'subnet{i}'), f'proxy_rank_{setting}{i}',
                        setting, f'subnet {i} {setting}:')
    rows = rows_by_index(study.records, keys, 'full', 'proxy')
    rank = state['rank'] = study.rank(rows, ['proxy'], truth='full')['proxy']
    study.write_table(
        rows, ['index', 'full', 'proxy', 'full_seconds', 'proxy_seconds'])
    study.scatter(rows, 'full', 'proxy', f'full setting {args.score_key}',
                  f'proxy {state["proxy_tag"]} {args.score_key}',
                  f'Kendall tau {rank["kendall_tau"]:.3f}')
    print(study.summary(f'{state["proxy_tag"]} vs full', rank))
    return state


if __name__ == '__main__':
    main()
