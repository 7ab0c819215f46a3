"""Trick ablation: the same small search run several times, one trick
toggled per run, in one table: trick, rank correlation of the supernet's
estimates with stand-alone training, the found architecture's stand-alone
score, and the search's wall time (the experiment "Bag of Tricks for NAS"
asks the field to run).

CONFIG is a tools/nas.py pipeline config with an ``ablation`` dict::

    ablation = dict(
        supernet_epochs=6,          # each variant's supernet training
        search=dict(max_generations=2, population_size=10),  # nas.search +
        rank_subnets=10,            # baseline + random subnets (seeded)
        rank_seed=0,                # and of the stand-alone trainings
        standalone_epochs=4,        # stand-alone protocol (retrain recipe)
        tricks=dict(                # variant name -> what it changes
            baseline=dict(),
            tunas_warmup=dict(hooks=[dict(type='mmnas_tricks.AllOpsWarmupHook')]),
            no_bn_calibration=dict(search=dict(calibrate_bn=0)),
            uniform=dict(supernet=dict(custom_hooks=[...]))))

A variant may set ``supernet`` (merged into the supernet config),
``hooks`` (appended to its custom hooks), ``remove_hooks`` (hook type names
dropped) and ``search`` (merged into the search loop). Variants whose
supernet configs are identical share one supernet training. Every result
(supernet checkpoint, search result, estimates, stand-alone scores, shared
by subnet across variants) is recorded in ``<work_dir>/ablation.json`` as
soon as it exists; a rerun computes only what is missing.
``--standalone-from`` takes stand-alone scores from a
tools/rank_correlation.py result of the same space and protocol.
Results: ``<work_dir>/ablation.{json,csv,md,png}``.

With ``--truth`` (a tools/rank_correlation.py result with stand-alone
scores, e.g. a rank set's) the ablation measures rank quality only, and
trains nothing alone: each variant's supernet is trained once per
``--seeds`` seed (from ``--baseline-checkpoint`` where the pipeline inherits
its trained baseline), the truth's subnets are estimated with it as the
search estimates (BN-calibrated; a mutable the truth's space lacked, e.g. a
new activation choice, at its first choice) and each row gives the Kendall
tau of those estimates against the recorded stand-alone scores, over all
subnets and within ``--window``, as the mean and range over the seeds.
No search is run in this mode.

Examples:
    python tools/trick_ablation.py \
    configs/nas/ablation_spos_fcos_r18w16_fpn-elastic_gn-head-elastic_digits.py

    python tools/trick_ablation.py \
    configs/nas/ablation_recipe_fcos_whole-elastic_digits.py \
    --truth benchmarks/results/rank_whole_detector/rank_correlation_v2.json \
    --window 0.85 1.0 --seeds 0 1 2 --baseline-checkpoint \
    work_dirs/nsga2_fcos_whole-elastic_r18w16_digits/baseline/epoch_12.pth
"""
import argparse
import hashlib
import json
import os.path as osp
import time

TRICK_KEYS = ('supernet', 'hooks', 'remove_hooks', 'search')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        'config', help='pipeline config with an ablation '
        'dict')
    parser.add_argument(
        '--tricks',
        nargs='+',
        default=None,
        help='run only these variants (default: all)')
    parser.add_argument(
        '--standalone-from',
        metavar='JSON',
        default=None,
        help='rank_correlation.json whose stand-alone scores '
        'to reuse (same space, same --standalone-epochs)')
    parser.add_argument(
        '--truth',
        metavar='JSON',
        default=None,
        help='rank_correlation.json with stand-alone scores: rank quality '
        'only, against its subnets (no search, nothing trained alone)')
    parser.add_argument(
        '--seeds',
        type=int,
        nargs='+',
        default=[0],
        help='with --truth: one supernet per variant and seed (default: 0)')
    parser.add_argument(
        '--window',
        type=float,
        nargs=2,
        metavar=('LO', 'HI'),
        default=None,
        help='with --truth: also the tau within LO-HI x the baseline\'s '
        'FLOPs')
    parser.add_argument(
        '--baseline-checkpoint',
        default=None,
        help='with --truth: the trained baseline the supernets inherit '
        "(needed where the pipeline has nas.inherit='baseline')")
    parser.add_argument(
        '--work-dir', help='default: work_dirs/ablation/'
        '<config name>')
    args = parser.parse_args(argv)
    if not args.truth:
        for flag, value in (('--window', args.window),
                            ('--baseline-checkpoint',
                             args.baseline_checkpoint), ('--seeds',
                                                         args.seeds != [0])):
            if value:
                parser.error(f'{flag} needs --truth')
    elif not osp.isfile(args.truth):
        parser.error(f'--truth {args.truth!r} does not exist')
    elif args.standalone_from:
        parser.error('--truth and --standalone-from exclude each other: '
                     'with --truth nothing is trained alone')
    return args


def _digest(cfg) -> str:
    return hashlib.sha1(cfg.pretty_text.encode()).hexdigest()[:12]


def _hook_name(hook) -> str:
    return str(hook.get('type', '')).split('.')[-1]


def variant_configs(cfg, config_path: str, ablation: dict, name: str,
                    trick: dict) -> tuple:
    """The supernet and search configs of one variant."""
    from mmnas_tricks.engine.pipeline import stage_configs
    from mmnas_tricks.engine.proxy import proxy_config
    bad = sorted(set(trick) - set(TRICK_KEYS))
    if bad:
        raise ValueError(f'ablation.tricks.{name}: unknown keys {bad}; valid: '
                         f'{list(TRICK_KEYS)}')
    stages = stage_configs(cfg, config_path)
    supernet = stages['supernet']
    if trick.get('supernet'):
        supernet.merge_from_dict(dict(trick['supernet']))
    hooks = [
        h for h in supernet.get('custom_hooks', []) or []
        if _hook_name(h) not in set(trick.get('remove_hooks', ()))
    ]
    supernet.custom_hooks = hooks + list(trick.get('hooks', []))
    if ablation.get('supernet_epochs'):
        supernet = proxy_config(
            supernet, max_epochs=ablation['supernet_epochs'])
        supernet.pop('proxy', None)
    search = stages['search']
    loop = dict(search.train_cfg)
    loop.update(ablation.get('search', {}))
    loop.update(trick.get('search', {}))
    loop['export_best'] = False
    search.train_cfg = loop
    return supernet, search


def main(argv=None):
    args = parse_args(argv)
    from mmengine.runner import Runner

    from mmnas_tricks.engine.pipeline import search_data
    from mmnas_tricks.engine.rank import (SupernetScorer, distinct_subnets,
                                          standalone_config, train_resumable)
    from mmnas_tricks.engine.study import RankStudy
    from mmnas_tricks.structures import subnet_key
    from mmnas_tricks.utils import (build_model, explain_unsafe_checkpoint,
                                    load_config, rank_consistency)
    from mmnas_tricks.utils.io import atomic_write_text
    cfg = load_config(args.config)
    ablation = cfg.get('ablation')
    if not ablation or not ablation.get('tricks'):
        raise SystemExit(f'{args.config} has no ablation dict with tricks; '
                         'see tools/trick_ablation.py')
    ablation = ablation.to_dict() if hasattr(ablation,
                                             'to_dict') else dict(ablation)
    tricks = ablation['tricks']
    names = args.tricks or list(tricks)
    unknown = [n for n in names if n not in tricks]
    if unknown:
        raise SystemExit(f'--tricks {unknown}: not in the config; valid: '
                         f'{list(tricks)}')
    name = osp.splitext(osp.basename(args.config))[0]
    study = RankStudy(
        args.work_dir or osp.join('work_dirs', 'ablation', name), 'ablation')
    if args.truth:
        return rank_only(args, cfg, ablation, names, study)
    work, state = study.work_dir, study.state
    state.pop('records', None)
    supernets = state.setdefault('supernets', {})
    standalone = state.setdefault('standalone', {})
    variants = state.setdefault('variants', {})
    epochs = ablation.get('standalone_epochs')
    if args.standalone_from:
        with open(args.standalone_from) as f:
            other = json.load(f)
        if other.get('standalone_epochs', epochs) != epochs:
            raise SystemExit(
                f'{args.standalone_from} trained {other["standalone_epochs"]}'
                f' epochs, the ablation {epochs}')
        for key, rec in other['records'].items():
            if 'standalone' in rec and key not in standalone:
                # kept where it was trained with the same config (its
                # recorded fingerprint), see stand_alone
                standalone[key] = dict(
                    {
                        f: rec.get(f)
                        for f in ('subnet', 'standalone', 'standalone_seconds',
                                  'standalone_recipe')
                    },
                    standalone_from=args.standalone_from)

    save = study.save

    nas = cfg.nas
    plain = cfg.copy()
    plain.pop('nas', None)
    plain.pop('ablation', None)
    model = build_model(plain)
    rank_subnets = distinct_subnets(model, ablation.get('rank_subnets', 10),
                                    ablation.get('rank_seed', 0))
    score_key = nas.get('score_key', 'coco/bbox_mAP')

    def stand_alone(subnet) -> float:
        key = subnet_key(subnet)
        rec = standalone.setdefault(key, dict(subnet=subnet))
        index = list(standalone).index(key)  # its folder
        static = standalone_config(
            plain, subnet, ablation.get('rank_seed', 0), nas['retrain'],
            **({} if epochs is None else dict(max_epochs=epochs)))
        return study.train(
            rec,
            static,
            score_key,
            osp.join('standalone', f'subnet{index}'),
            f'ablation_standalone{index}',
            label=f'[ablation] stand-alone subnet {index}:')

    for trick_name in names:
        trick = tricks[trick_name] or {}
        supernet_cfg, search_cfg = variant_configs(cfg, args.config, ablation,
                                                   trick_name, trick)
        var = variants.setdefault(trick_name, dict(trick=trick))
        print(f'[ablation] {trick_name}', flush=True)
        digest = _digest(supernet_cfg)
        sup = supernets.setdefault(digest, {})
        if not sup.get('checkpoint'):
            start = time.time()
            sup['checkpoint'], _ = train_resumable(
                supernet_cfg, osp.join(work, 'supernets', digest),
                f'ablation_supernet_{digest}')
            sup['seconds'] = round(time.time() - start, 1)
            sup['first_trained_for'] = trick_name
            save()
        var['supernet'] = digest
        if 'best' not in var:
            search_cfg.train_cfg['supernet_checkpoint'] = sup['checkpoint']
            search_cfg.work_dir = osp.join(work, 'searches', trick_name)
            search_cfg.experiment_name = f'ablation_search_{time.time_ns()}'
            search_cfg.resume = osp.isfile(
                osp.join(search_cfg.work_dir, 'search', 'state.json'))
            start = time.time()
            runner = Runner.from_cfg(search_cfg)
            with explain_unsafe_checkpoint():
                runner.train()
            loop = runner.train_loop
            best = loop.best_subnet()
            top = loop.records[loop.best_key()]
            var.update(
                best=best,
                best_estimate=top['score'],
                found_flops=top['flops'],
                search_seconds=round(time.time() - start, 1))
            del runner, loop
            save()
        calib = int(search_cfg.train_cfg.get('calibrate_bn', 20))
        estimates = var.setdefault('estimates', {})
        if len(estimates) < len(rank_subnets):
            scorer = SupernetScorer(supernet_cfg, sup['checkpoint'],
                                    osp.join(work, 'scorer'), score_key, calib,
                                    ablation.get('rank_seed', 0),
                                    **search_data(cfg))
            for subnet in rank_subnets:
                key = subnet_key(subnet)
                if key not in estimates:
                    estimates[key] = scorer.score(subnet, calibrate=calib > 0)
                    save()
            del scorer
        truth = [stand_alone(s) for s in rank_subnets]
        var['rank'] = rank_consistency(
            [estimates[subnet_key(s)] for s in rank_subnets], truth)
        var['found_standalone'] = stand_alone(var['best'])
        save()
        print(
            f'[ablation] {trick_name}: Kendall tau '
            f'{var["rank"]["kendall_tau"]:.3f}, found '
            f'{var["found_standalone"]:.4f}',
            flush=True)

    rows = []
    for trick_name in names:
        var = variants[trick_name]
        sup = supernets[var['supernet']]
        rows.append(
            dict(
                trick=trick_name,
                kendall_tau=var['rank']['kendall_tau'],
                spearman_rho=var['rank']['spearman_rho'],
                top_k_overlap=var['rank']['top_k_overlap'],
                found_standalone=var['found_standalone'],
                found_gflops=var['found_flops'] / 1e9,
                supernet_seconds=sup['seconds'],
                search_seconds=var['search_seconds'],
                search_wall_seconds=sup['seconds'] + var['search_seconds']))
    state['table'] = rows
    study.write_table(rows)
    md = [
        '| trick | Kendall tau | Spearman rho | top-k overlap | found '
        f'stand-alone {score_key} | found GFLOPs | supernet + search (s) |',
        '|---|---|---|---|---|---|---|'
    ]
    md += [
        f'| {r["trick"]} | {r["kendall_tau"]:.3f} | '
        f'{r["spearman_rho"]:.3f} | {r["top_k_overlap"]:.2f} | '
        f'{r["found_standalone"]:.4f} | {r["found_gflops"]:.4f} | '
        f'{r["supernet_seconds"]:.0f} + {r["search_seconds"]:.0f} |'
        for r in rows
    ]
    atomic_write_text(osp.join(work, 'ablation.md'), '\n'.join(md) + '\n')
    _plot(rows, score_key, osp.join(work, 'ablation.png'))
    print('\n'.join(md))
    return state


def rank_only(args, cfg, ablation: dict, names: list, study) -> dict:
    """The ``--truth`` mode: per variant and seed, a supernet and the taus
    of its estimates of the truth's subnets; rows of mean and range."""
    from mmnas_tricks.engine.pipeline import stage_configs
    from mmnas_tricks.engine.tune import evaluate_supernet, read_truth
    from mmnas_tricks.utils.io import atomic_write_text
    inherit = stage_configs(cfg, args.config)['inherit'] == 'baseline'
    if inherit and not args.baseline_checkpoint:
        raise SystemExit(
            f'{args.config} inherits the trained baseline (nas.inherit='
            "'baseline'): name its checkpoint with --baseline-checkpoint "
            f'(tools/nas.py {args.config} --stages baseline trains it)')
    truth = read_truth(args.truth)
    tricks = ablation['tricks']
    score_key = cfg.nas.get('score_key', 'coco/bbox_mAP')
    calib = int(cfg.nas.search.get('calibrate_bn', 20))
    work, state = study.work_dir, study.state
    if state.get('truth') not in (None, args.truth):
        raise SystemExit(f'{osp.join(work, "ablation.json")} holds taus '
                         f'against {state["truth"]}, not {args.truth}; '
                         'use another --work-dir')
    state.update(truth=args.truth, window=args.window)
    variants = state.setdefault('rank_only', {})
    for trick_name in names:
        trick = tricks[trick_name] or {}
        supernet_cfg, _ = variant_configs(cfg, args.config, ablation,
                                          trick_name, trick)
        scored = cfg.copy()  # the variant's model and data, to score with
        if trick.get('supernet'):
            scored.merge_from_dict(dict(trick['supernet']))
        var = variants.setdefault(trick_name, dict(trick=trick, seeds={}))
        digest = _digest(supernet_cfg)
        if var.get('supernet') != digest:  # the variant's config changed
            var.update(supernet=digest, seeds={})
        for seed in args.seeds:
            if str(seed) in var['seeds']:
                continue
            print(f'[ablation] {trick_name}, seed {seed}', flush=True)
            out = evaluate_supernet(
                scored,
                supernet_cfg,
                truth,
                osp.join(work, 'supernets', f'{digest}_seed{seed}'),
                args.baseline_checkpoint if inherit else False,
                score_key,
                seed,
                calib,
                args.window,
                config_path=args.config)
            var['seeds'][str(seed)] = out
            study.save()
            print(
                f'[ablation] {trick_name}, seed {seed}: Kendall tau '
                f'{out["tau_all"]:.3f} over {len(truth)} subnets' +
                (f', {out["tau_window"]:.3f} in the window'
                 if 'tau_window' in out else ''),
                flush=True)
    rows = [
        _rank_row(trick_name, variants[trick_name]['seeds'])
        for trick_name in names
    ]
    state['table'] = rows
    study.write_table(rows)
    window = args.window and f'{args.window[0]}-{args.window[1]}x'
    md = [
        f'| trick | seeds | Kendall tau, all {len(truth)}: mean (range) | ' +
        (f'within {window}: mean (range) | ' if window else '') +
        'supernet (s) |', '|---|---|---|' + ('---|' if window else '') + '---|'
    ]
    for r in rows:
        md.append(f'| {r["trick"]} | {r["seeds"]} | '
                  f'{_spread(r, "tau_all")} | ' +
                  (f'{_spread(r, "tau_window")} | ' if window else '') +
                  f'{r["supernet_seconds"]:.0f} |')
    flops = next(iter(variants[names[0]]['seeds'].values()))
    md.append(f'| FLOPs alone | | {flops["flops_tau_all"]:.3f} | ' +
              (f'{flops["flops_tau_window"]:.3f} | ' if window else '') + ' |')
    atomic_write_text(osp.join(work, 'ablation.md'), '\n'.join(md) + '\n')
    _plot_rank_only(rows, bool(window), osp.join(work, 'ablation.png'))
    print('\n'.join(md))
    return state


def _rank_row(trick_name: str, seeds: dict) -> dict:
    """Mean, min and max of each tau over ``seeds`` (seed -> taus)."""
    row = dict(trick=trick_name, seeds=' '.join(seeds))
    for key in ('tau_all', 'tau_window'):
        values = [s[key] for s in seeds.values() if key in s]
        if values:
            row.update({
                key: sum(values) / len(values),
                f'{key}_min': min(values),
                f'{key}_max': max(values)
            })
    row['supernet_seconds'] = round(
        sum(s['supernet_seconds']
            for s in seeds.values()) / max(len(seeds), 1), 1)
    return row


def _spread(row: dict, key: str) -> str:
    if row['seeds'].count(' ') == 0:
        return f'{row[key]:.3f}'
    return f'{row[key]:.3f} ({row[key + "_min"]:.3f} to ' \
        f'{row[key + "_max"]:.3f})'


def _plot_rank_only(rows, window: bool, path: str) -> None:
    from mmnas_tricks.utils.io import new_figure, save_png_atomic
    keys = ['tau_all'] + (['tau_window'] if window else [])
    fig, axes = new_figure((4.5 * len(keys), 3.5), ncols=len(keys))
    axes = list(axes) if len(keys) > 1 else [axes]
    names = [r['trick'] for r in rows]
    for ax, key in zip(axes, keys):
        means = [r[key] for r in rows]
        err = [[max(m - r[f'{key}_min'], 0) for m, r in zip(means, rows)],
               [max(r[f'{key}_max'] - m, 0) for m, r in zip(means, rows)]]
        ax.bar(names, means, yerr=err, capsize=3)
        ax.set_ylabel(f'Kendall tau ({"all" if key == "tau_all" else "window"}'
                      '; range over seeds)')
        ax.tick_params(axis='x', rotation=30)
    save_png_atomic(fig, path)


def _plot(rows, score_key: str, path: str) -> None:
    from mmnas_tricks.utils.io import new_figure, save_png_atomic
    fig, axes = new_figure((9, 3.5), ncols=2)
    names = [r['trick'] for r in rows]
    axes[0].bar(names, [r['kendall_tau'] for r in rows])
    axes[0].set_ylabel('Kendall tau (estimate vs stand-alone)')
    axes[1].bar(names, [r['found_standalone'] for r in rows])
    axes[1].set_ylabel(f'found: stand-alone {score_key}')
    for ax in axes:
        ax.tick_params(axis='x', rotation=30)
    save_png_atomic(fig, path)


if __name__ == '__main__':
    main()
