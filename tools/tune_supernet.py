"""Tune the supernet recipe of a tools/nas.py pipeline config for rank
quality (one-shot hyperparameter tuning, with Optuna).

Every trial trains the pipeline's supernet stage with one recipe (the keys
of ``mmnas_tricks.engine.tune.PARAMS``: lr, epochs, warmup_iters, strategy,
distill_weight, sort_channels, progressive; ``--params`` picks the tuned
ones, the others keep the config's values), estimates the subnets of a
recorded rank study (``--truth``, the ``rank_correlation.json`` of
``tools/rank_correlation.py``: subnets and their stand-alone scores) with
BN calibration, and is scored by the Kendall tau of the estimates against
the stand-alone scores: over all subnets, within ``--window LO HI`` x the
baseline's FLOPs, or their mean (``--objective``). Nothing is trained
alone per trial. The first trial is the config's own recipe, so the best
one is compared with today's default in the same study.

The study is an SQLite file (``<work-dir>/study.db``): run the command again
and it continues, a trial that was running when the study was killed is
retried with the same recipe and its supernet training resumes. One process
per study. Results, rewritten after every trial: ``<work-dir>/tune.json``
(best recipe, its taus, the default's), ``trials.csv`` and ``tune.png``
(every trial's tau and the best so far).

Example:
    python tools/tune_supernet.py \\
        configs/nas/nsga2_fcos_whole-elastic_r18w16_digits.py \\
        --truth benchmarks/results/rank_whole_detector/rank_correlation.json \\
        --window 0.85 1.0 --trials 12
"""
import argparse
import os
import os.path as osp


def parse_args(argv=None):
    from mmnas_tricks.engine.tune import OBJECTIVES, PARAMS
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='a tools/nas.py pipeline config')
    parser.add_argument(
        '--truth',
        required=True,
        help='rank_correlation.json of a rank study with stand-alone scores')
    parser.add_argument(
        '--trials',
        type=int,
        default=12,
        help='complete trials wanted in all (default 12)')
    parser.add_argument(
        '--params',
        nargs='+',
        default=list(PARAMS),
        choices=list(PARAMS),
        help='recipe keys to tune (default: all)')
    parser.add_argument(
        '--objective',
        default='all',
        choices=OBJECTIVES,
        help='Kendall tau over all subnets, within --window, or their mean '
        '(default: all)')
    parser.add_argument(
        '--window',
        nargs=2,
        type=float,
        metavar=('LO', 'HI'),
        help='FLOPs window (x the baseline\'s) of the in-window tau')
    parser.add_argument(
        '--baseline-checkpoint',
        help='the trained baseline the supernet inherits (default: the '
        "last checkpoint of work_dirs/<config name>/baseline, tools/nas.py's)")
    parser.add_argument('--calibrate-bn', type=int, default=10)
    parser.add_argument(
        '--seed',
        type=int,
        default=0,
        help='seed of the proposals and of every supernet training')
    parser.add_argument(
        '--prune-epochs',
        nargs='+',
        type=int,
        default=[],
        metavar='EPOCH',
        help='report each trial\'s tau after these epochs of its supernet '
        'training and stop the trials below the median of the earlier ones '
        '(Optuna\'s MedianPruner; default: no pruning)')
    parser.add_argument(
        '--prune-startup',
        type=int,
        default=2,
        help='complete trials before any is pruned (default 2)')
    parser.add_argument(
        '--work-dir', help='default: work_dirs/tune_supernet/<config name>')
    args = parser.parse_args(argv)
    if any(e < 1 for e in args.prune_epochs):
        parser.error(f'--prune-epochs {args.prune_epochs}: need epochs >= 1')
    if not osp.isfile(args.truth):
        parser.error(f'--truth {args.truth!r} does not exist')
    if args.trials < 1:
        parser.error(f'--trials {args.trials}: need >= 1')
    if args.objective != 'all' and not args.window:
        parser.error(f'--objective {args.objective} needs --window LO HI')
    if args.window and not 0 <= args.window[0] < args.window[1]:
        parser.error(f'--window {args.window}: need 0 <= LO < HI')
    return args


def baseline_checkpoint(config: str) -> str:
    """tools/nas.py's trained baseline of ``config``, if any."""
    name = osp.splitext(osp.basename(config))[0]
    last = osp.join('work_dirs', name, 'baseline', 'last_checkpoint')
    if osp.isfile(last):
        with open(last) as f:
            return f.read().strip()
    return ''


def write_results(study, args, work: str, default: dict) -> None:
    from mmnas_tricks.engine.tune import study_rows
    from mmnas_tricks.utils import dump_csv_atomic, dump_json_atomic
    from mmnas_tricks.utils.io import new_figure, save_png_atomic
    rows = study_rows(study)
    if not rows:
        return
    dump_csv_atomic(rows, osp.join(work, 'trials.csv'))
    best = max(rows, key=lambda r: r['value'])
    first = next(
        (r for r in rows if all(r.get(k) == default[k] for k in args.params)),
        None)
    dump_json_atomic(
        dict(
            config=args.config,
            truth=args.truth,
            objective=args.objective,
            window=args.window,
            params=args.params,
            seed=args.seed,
            trials=len(rows),
            default_recipe=default,
            default=first,
            best=best), osp.join(work, 'tune.json'))
    fig, ax = new_figure((6, 4))
    xs = [r['number'] for r in rows]
    ax.scatter(xs, [r['value'] for r in rows], label='trial')
    running, best_so_far = [], float('-inf')
    for r in rows:
        best_so_far = max(best_so_far, r['value'])
        running.append(best_so_far)
    ax.step(xs, running, where='post', color='C1', label='best so far')
    if first is not None:
        ax.axhline(first['value'], color='k', ls=':', label='default recipe')
    ax.set_xlabel('trial')
    ax.set_ylabel(f'Kendall tau ({args.objective})')
    ax.set_title(osp.basename(args.config), fontsize=8)
    ax.legend()
    save_png_atomic(fig, osp.join(work, 'tune.png'))


def main(argv=None):
    args = parse_args(argv)
    from mmnas_tricks.engine.tune import (default_recipe, evaluate_recipe,
                                          read_truth, run_study)
    from mmnas_tricks.utils import load_config
    cfg = load_config(args.config)
    nas = cfg.get('nas') or {}
    score_key = nas.get('score_key', 'coco/bbox_mAP')
    truth = read_truth(args.truth)
    name = osp.splitext(osp.basename(args.config))[0]
    work = args.work_dir or osp.join('work_dirs', 'tune_supernet', name)
    default = default_recipe(cfg)
    fixed = {k: v for k, v in default.items() if k not in args.params}
    checkpoint = args.baseline_checkpoint or baseline_checkpoint(args.config)
    print(
        f'{len(truth)} subnets with stand-alone scores from {args.truth}; '
        f'the config\'s recipe: {default}',
        flush=True)

    def evaluate(recipe, report=None):
        return evaluate_recipe(args.config, recipe, truth, work, checkpoint,
                               score_key, args.seed, args.calibrate_bn,
                               args.window, report, args.prune_epochs)

    pruner = None
    if args.prune_epochs:
        import optuna

        # Optuna's median pruner: stop a trial whose tau at a reporting
        # epoch is below the median of the earlier trials' there
        pruner = optuna.pruners.MedianPruner(
            n_startup_trials=args.prune_startup, n_warmup_steps=0)

    storage = 'sqlite:///' + osp.abspath(osp.join(work, 'study.db'))
    os.makedirs(work, exist_ok=True)
    study = run_study(
        name,
        storage,
        args.params,
        fixed,
        evaluate,
        args.trials,
        objective=args.objective,
        seed=args.seed,
        first=default,
        log=lambda line: print(line, flush=True),
        after_trial=lambda s: write_results(s, args, work, default),
        pruner=pruner)
    best = study.best_trial
    print(f'best of {args.trials}: trial {best.number}, {args.objective} tau '
          f'{best.value:.3f}, {best.params}; results in {work}')
    return study


if __name__ == '__main__':
    main()
