"""How well each estimator of a subnet's stand-alone score ranks subnets, on
the truth it is developed on and on the held-out set nothing is chosen on
(both from ``benchmarks/rank_truth.py``): Kendall tau against the mean of
the seeds' stand-alone val scores, over each set and within each input
size, beside FLOPs alone and the seed-to-seed ceiling, with each
estimator's cost in stand-alone-training equivalents.

Estimators (``--estimators``; ``NAME`` is a supernet of ``--supernet``):

- ``flops``: FLOPs alone.
- ``supernet:NAME``: the supernet's BN-calibrated score on the search's
  held-out canvases, as the search scores a candidate
  (:class:`mmnas_tricks.engine.rank.SupernetScorer`).
- ``finetune<k>:NAME``: the held-out score after a ``k``-epoch fine-tune
  from the subnet's BN-calibrated supernet weights (the re-rank stage's
  estimate; :func:`mmnas_tricks.engine.rank.finetune_estimate_config`).
- ``zc:PROXY``: a zero-cost proxy of the exported subnet at its seeded
  initial weights on one training batch
  (:func:`mmnas_tricks.engine.zero_cost.zero_cost_scores`: ``grad_norm``,
  ``snip``, ``synflow``).
- ``predictor:EST[+EST...]``: a ridge regression from the estimates
  ``EST`` (of the above), log FLOPs and the input size (one-hot) to the
  stand-alone score, fitted on the truth set (its landmarks) and applied
  to the held-out one (on the truth set: leave-one-out predictions).

Estimates are recorded in ``<work-dir>/estimates.json`` as they are made
and reused when the command runs again (an interrupted fine-tune resumes).

Example:
    python benchmarks/rank_estimators.py \\
        --truth benchmarks/results/rank_truth/nsga2_fcos_whole-elastic_r18w16_digits.json \\
        --supernet main=configs/nas/nsga2_fcos_whole-elastic_r18w16_digits.py:work_dirs/nsga2_fcos_whole-elastic_r18w16_digits/supernet/epoch_6.pth \\
        --estimators flops supernet:main finetune1:main predictor:supernet:main
Writes benchmarks/results/rank_estimators.{json,csv,png}.
"""  # noqa: E501
import argparse
import json
import math
import os
import os.path as osp
import time

from common import machine, train_many, write_result


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--truth',
        required=True,
        help='a benchmarks/rank_truth.py results file')
    parser.add_argument(
        '--supernet',
        nargs='*',
        default=[],
        metavar='NAME=CONFIG:CHECKPOINT[@MANIFEST]',
        help='the supernets the estimators name (a pipeline config and its '
        'trained supernet; with @MANIFEST, a tools/few_shot.py split of it: '
        'each subnet scored by the sub-supernet of its choice, e.g. of its '
        'input size)')
    parser.add_argument(
        '--estimators',
        nargs='+',
        default=['flops'],
        help='flops, supernet:NAME, finetune<k>:NAME, zc:PROXY, '
        'predictor:EST[+EST...]')
    parser.add_argument('--calibrate-bn', type=int, default=10)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--finetune-lr',
        type=float,
        default=0.005,
        help="the fine-tunes' lr (default 0.005: the main job's re-rank)")
    parser.add_argument(
        '--jobs',
        type=int,
        default=1,
        help='fine-tunes run at once (common.train_many; default 1)')
    parser.add_argument('--work-dir', default='work_dirs/rank_estimators')
    parser.add_argument(
        '--out', default='benchmarks/results/rank_estimators.json')
    args = parser.parse_args(argv)
    if not osp.isfile(args.truth):
        parser.error(f'--truth {args.truth!r} does not exist')
    supernets = {}
    for item in args.supernet:
        name, sep, rest = item.partition('=')
        rest, _, manifest = rest.partition('@')
        config, sep2, checkpoint = rest.rpartition(':')
        if not (sep and sep2 and name and config and checkpoint):
            parser.error(f'--supernet {item!r}: expected '
                         'NAME=CONFIG:CHECKPOINT[@MANIFEST]')
        for path in (config, checkpoint) + ((manifest, ) if manifest else ()):
            if not osp.isfile(path):
                parser.error(f'--supernet {item!r}: {path!r} does not exist')
        supernets[name] = (config, checkpoint, manifest or None)
    args.supernets = supernets
    for est in args.estimators:
        try:
            parse_estimator(est, supernets)
        except ValueError as e:
            parser.error(str(e))
    return args


def parse_estimator(est: str, supernets: dict) -> tuple:
    """(kind, epochs, argument) of an estimator's name."""
    if est == 'flops':
        return 'flops', 0, None
    kind, sep, arg = est.partition(':')
    if kind == 'predictor' and sep:
        for base in arg.split('+'):
            if parse_estimator(base, supernets)[0] == 'predictor':
                raise ValueError(f'estimator {est!r}: a predictor of a '
                                 'predictor')
        return 'predictor', 0, arg
    if kind == 'zc':
        from mmnas_tricks.engine.zero_cost import PROXIES
        if arg not in PROXIES:
            raise ValueError(f'estimator {est!r}: zc:PROXY takes one of '
                             f'{list(PROXIES)}')
        return 'zc', 0, arg
    epochs = 0
    if kind.startswith('finetune'):
        digits = kind[len('finetune'):]
        if not digits.isdigit() or int(digits) < 1:
            raise ValueError(f'estimator {est!r}: finetune<k> needs k >= 1')
        kind, epochs = 'finetune', int(digits)
    if kind not in ('supernet', 'finetune') or not sep:
        raise ValueError(f'estimator {est!r} is not among flops, '
                         'supernet:NAME, finetune<k>:NAME, zc:PROXY, '
                         'predictor:EST')
    if arg not in supernets:
        raise ValueError(f'estimator {est!r}: no --supernet named {arg!r} '
                         f'(given: {sorted(supernets)})')
    return kind, epochs, arg


def read_sets(path: str) -> tuple:
    """(records of the truth sets, of the held-out sets, the ceilings) of a
    rank_truth results file; only subnets whose every seed finished."""
    with open(path) as f:
        result = json.load(f)
    done = [r for r in result['records'] if None not in r['scores']]
    for r in done:
        r['truth'] = sum(r['scores']) / len(r['scores'])
    return ([r for r in done if not r.get('held_out')],
            [r for r in done if r.get('held_out')], result.get('ceiling', {}))


class Estimates:
    """``<work_dir>/estimates.json``: estimator -> subnet key -> value, and
    the seconds each took; saved after every estimate."""

    def __init__(self, work_dir: str) -> None:
        self.path = osp.join(work_dir, 'estimates.json')
        self.state = dict(values={}, seconds={})
        if osp.isfile(self.path):
            with open(self.path) as f:
                self.state = json.load(f)

    def get(self, est: str, key: str):
        return self.state['values'].get(est, {}).get(key)

    def put(self, est: str, key: str, value: float, seconds: float) -> None:
        from mmnas_tricks.utils import dump_json_atomic
        self.state['values'].setdefault(est, {})[key] = value
        self.state['seconds'].setdefault(est, {})[key] = round(seconds, 2)
        dump_json_atomic(self.state, self.path)

    def seconds(self, est: str) -> float:
        values = list(self.state['seconds'].get(est, {}).values())
        return sum(values) / len(values) if values else 0.0


def get_scorer(name: str, args, scorers: dict):
    """The :class:`~mmnas_tricks.engine.rank.SupernetScorer` of the supernet
    ``name`` (built once): the search's scoring, its held-out canvases and
    BN calibration batches."""
    if name not in scorers:
        from mmnas_tricks.engine.pipeline import search_data
        from mmnas_tricks.engine.rank import SupernetScorer
        from mmnas_tricks.utils import load_config
        config, checkpoint, manifest = args.supernets[name]
        cfg = load_config(config)
        key = (cfg.get('nas') or {}).get('score_key', 'coco/bbox_mAP')
        scorer = SupernetScorer(cfg, checkpoint, osp.join(args.work_dir, name),
                                key, args.calibrate_bn, args.seed,
                                **search_data(cfg))
        scorer.router = None
        if manifest:
            from mmnas_tricks.engine.few_shot import FewShotRouter
            scorer.router = FewShotRouter(manifest)
            scorer.router.check(scorer.model)
        scorers[name] = scorer
    return scorers[name]


def supernet_estimates(est, name, records, args, store, scorers) -> None:
    """``supernet:NAME`` of every record (the search's own scoring)."""
    from mmnas_tricks.models.inherit import plain_subnet
    todo = [r for r in records if store.get(est, r['key']) is None]
    if not todo:
        return
    scorer = get_scorer(name, args, scorers)
    first = plain_subnet(scorer.model)
    for r in todo:
        start = time.time()
        value = scorer.score(
            dict(first, **r['subnet']),
            calibrate=args.calibrate_bn > 0,
            router=scorer.router)
        store.put(est, r['key'], value, time.time() - start)
        print(f'{est} {r["set"]} {r["name"]}: {value:.4f}', flush=True)


def finetune_estimates(est, name, epochs, records, args, store,
                       scorers) -> None:
    """``finetune<k>:NAME`` of every record: its BN-calibrated supernet
    weights exported, fine-tuned ``k`` epochs on the supernet's data and
    scored on the search's held-out split (``tools/train.py``, never the
    test split), ``args.jobs`` at once."""
    from mmnas_tricks.engine.bn_calibration import calibrate_bn
    from mmnas_tricks.engine.pipeline import retrain_recipe, search_data
    from mmnas_tricks.engine.rank import finetune_estimate_config
    from mmnas_tricks.models.export import save_static_checkpoint
    from mmnas_tricks.models.inherit import plain_subnet
    from mmnas_tricks.models.mutables import set_subnet
    from mmnas_tricks.utils import atomic_write_text, load_config
    cfg = load_config(args.supernets[name][0])
    score_key = (cfg.get('nas') or {}).get('score_key', 'coco/bbox_mAP')
    tasks = []
    for r in records:
        if store.get(est, r['key']) is not None:
            continue
        folder = osp.join(args.work_dir, est.replace(':', '_'),
                          f'{r["set"]}_{r["name"]}')
        weights = osp.join(folder, 'supernet_weights.pth')
        if not osp.isfile(weights):
            scorer = get_scorer(name, args, scorers)
            subnet = dict(plain_subnet(scorer.model), **r['subnet'])
            if scorer.router is not None:
                scorer.router.load_for(scorer.model, subnet)
            else:
                scorer.model.load_state_dict(scorer.state)
            set_subnet(scorer.model, subnet)
            if args.calibrate_bn:
                calibrate_bn(scorer.model, scorer.calib, args.calibrate_bn)
            os.makedirs(folder, exist_ok=True)
            save_static_checkpoint(scorer.model, weights, subnet)
        ft = finetune_estimate_config(
            cfg,
            r['subnet'],
            osp.abspath(weights),
            epochs,
            args.finetune_lr,
            args.seed,
            retrain=retrain_recipe(cfg),
            **search_data(cfg))
        path = osp.join(folder, 'finetune.py')
        atomic_write_text(path, ft.pretty_text)
        tasks.append((path, osp.join(folder, 'run'), args.seed, r))

    def done(r, metrics, seconds):
        value = float(metrics[score_key])
        store.put(est, r['key'], value, seconds or 0.0)
        print(f'{est} {r["set"]} {r["name"]}: {value:.4f}', flush=True)

    train_many(tasks, args.jobs, done, test=False)


def zc_estimates(est, proxy, records, args, store, batches) -> None:
    """``zc:PROXY`` of every record: its stand-alone config's model (the
    exported subnet) at its initial weights (seeded by ``args.seed``), on
    the first training batch of its own pipeline (its input size)."""
    import torch
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner

    from mmnas_tricks.engine.zero_cost import zero_cost_scores
    from mmnas_tricks.models.resources import input_size
    from mmnas_tricks.utils import build_model, load_config
    for r in records:
        if store.get(est, r['key']) is not None:
            continue
        start = time.time()
        cfg = load_config(r['config'])
        size = r['input_size']
        if size not in batches:
            loader = dict(
                cfg.train_dataloader, num_workers=0, persistent_workers=False)
            with DefaultScope.overwrite_default_scope(
                    cfg.get('default_scope') or 'mmdet'):
                batches[size] = next(
                    iter(Runner.build_dataloader(loader, seed=args.seed)))
        torch.manual_seed(args.seed)
        model = build_model(cfg)
        model.init_weights()
        value = zero_cost_scores(model, batches[size], (proxy, ),
                                 input_size(cfg).shape)[proxy]
        store.put(est, r['key'], value, time.time() - start)
        print(f'{est} {r["set"]} {r["name"]}: {value:.4g}', flush=True)


def features(r: dict, bases: list, sizes: list) -> list:
    """A predictor's inputs: the base estimates, log FLOPs and the input
    size one-hot."""
    return list(bases) + [math.log(r['flops_ratio'])] + [
        1.0 if r['input_size'] == s else 0.0 for s in sizes
    ]


def predictor_values(base_est: str, truth: list, held: list, store) -> tuple:
    """Ridge regression (scikit-learn, standardized inputs) of the truth
    set's stand-alone means on :func:`features` of the estimates
    ``base_est`` (``+``-joined; zero-cost proxies as logarithms, as they
    span orders of magnitude): leave-one-out predictions on the truth set,
    the fitted model's on the held-out set."""
    import numpy as np
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    bases = base_est.split('+')
    sizes = sorted({r['input_size'] for r in truth + held})

    def base(est, r):
        value = value_of(est, r, store)
        return math.log(value) if est.startswith('zc:') else value

    def xs(rows):
        return np.array(
            [features(r, [base(e, r) for e in bases], sizes) for r in rows])

    def model():
        return make_pipeline(StandardScaler(),
                             RidgeCV(alphas=np.logspace(-3, 3, 13)))

    x, y = xs(truth), np.array([r['truth'] for r in truth])
    loo = []
    for i in range(len(truth)):
        keep = np.arange(len(truth)) != i
        loo.append(float(model().fit(x[keep], y[keep]).predict(x[i:i + 1])[0]))
    fitted = model().fit(x, y)
    out = [float(v) for v in fitted.predict(xs(held))] if held else []
    return loo, out


def value_of(est: str, r: dict, store):
    if est == 'flops':
        return r['flops_ratio']
    return store.get(est, r['key'])


def taus(values: list, rows: list) -> dict:
    """Kendall tau of ``values`` against the rows' truth, over all and
    within each input size (None where fewer than 3 subnets)."""
    from mmnas_tricks.utils import rank_consistency

    def tau(idx):
        if len(idx) < 3:
            return None
        return round(
            rank_consistency([values[i] for i in idx],
                             [rows[i]['truth'] for i in idx])['kendall_tau'],
            4)

    sizes = sorted({r['input_size'] for r in rows})
    by_size = {
        str(s): tau([i for i, r in enumerate(rows) if r['input_size'] == s])
        for s in sizes
    }
    inside = [v for v in by_size.values() if v is not None]
    return dict(
        all=tau(list(range(len(rows)))),
        by_size=by_size,
        min_within=min(inside) if inside else None,
        mean_within=round(sum(inside) / len(inside), 4) if inside else None)


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.work_dir, exist_ok=True)
    truth, held, ceiling = read_sets(args.truth)
    store = Estimates(args.work_dir)
    scorers, batches = {}, {}
    for est in args.estimators:
        kind, epochs, arg = parse_estimator(est, args.supernets)
        bases = arg.split('+') if kind == 'predictor' else [est]
        for base in bases:
            k, e, a = parse_estimator(base, args.supernets)
            if k == 'supernet':
                supernet_estimates(base, a, truth + held, args, store, scorers)
            elif k == 'finetune':
                finetune_estimates(base, a, e, truth + held, args, store,
                                   scorers)
            elif k == 'zc':
                zc_estimates(base, a, truth + held, args, store, batches)
    # one stand-alone training, for the costs: the truth's mean seconds
    standalone = [
        s for r in truth + held for s in r.get('train_seconds') or [] if s
    ]
    sa = sum(standalone) / len(standalone) if standalone else None
    rows = []
    for est in args.estimators:
        kind, epochs, arg = parse_estimator(est, args.supernets)
        if kind == 'predictor':
            on_truth, on_held = predictor_values(arg, truth, held, store)
            seconds = sum(
                store.seconds(b) for b in arg.split('+') if b != 'flops')
            landmarks = len(truth)
        else:
            on_truth = [value_of(est, r, store) for r in truth]
            on_held = [value_of(est, r, store) for r in held]
            seconds = 0.0 if kind == 'flops' else store.seconds(est)
            landmarks = 0
        row = dict(
            estimator=est,
            truth=taus(on_truth, truth),
            held_out=taus(on_held, held) if len(held) >= 3 else None,
            seconds_per_subnet=round(seconds, 2),
            standalone_equivalents_per_subnet=None if sa is None else round(
                seconds / sa, 4),
            landmark_trainings=landmarks)
        rows.append(row)
        print(
            f'{est}: tau on the truth {row["truth"]["all"]}, within sizes '
            f'{row["truth"]["by_size"]}; held out '
            f'{row["held_out"] and row["held_out"]["all"]}',
            flush=True)
    write_all(rows, ceiling, truth, held, sa, args)


def write_all(rows, ceiling, truth, held, sa, args) -> None:
    from mmnas_tricks.utils import dump_csv_atomic
    stem = args.out[:-len('.json')]
    flat = []
    for r in rows:
        for split in ('truth', 'held_out'):
            if r[split] is None:
                continue
            flat.append(
                dict(
                    estimator=r['estimator'],
                    set=split,
                    tau=r[split]['all'],
                    min_within_size=r[split]['min_within'],
                    **{
                        f'tau_{s}px': v
                        for s, v in r[split]['by_size'].items()
                    },
                    standalone_equivalents=r[
                        'standalone_equivalents_per_subnet'],
                    landmarks=r['landmark_trainings']))
    dump_csv_atomic(flat, stem + '.csv')
    plot(rows, stem + '.png')
    write_result(
        dict(
            machine('cpu'),
            benchmark='rank_estimators',
            truth_file=args.truth,
            supernets=args.supernets,
            subnets=dict(truth=len(truth), held_out=len(held)),
            ceiling=ceiling,
            standalone_seconds=sa,
            rows=rows), args.out)


def plot(rows, path) -> None:
    """Each estimator's tau over all subnets and its lowest within an input
    size, on both sets."""
    from mmnas_tricks.utils.io import new_figure, save_png_atomic
    fig, ax = new_figure((7, 4))
    names = [r['estimator'] for r in rows]
    xs = range(len(rows))
    for i, (split, key, marker) in enumerate(
        (('truth', 'all', 'o'), ('truth', 'min_within', 'v'),
         ('held_out', 'all', 's'), ('held_out', 'min_within', 'D'))):
        ys = [(r[split] or {}).get(key) for r in rows]
        ax.scatter([x + 0.1 * i for x, y in zip(xs, ys) if y is not None],
                   [y for y in ys if y is not None],
                   marker=marker,
                   label=f'{split}: {key}')
    ax.set_xticks(list(xs))
    ax.set_xticklabels(names, rotation=20, fontsize=7)
    ax.set_ylabel('Kendall tau against the stand-alone mean')
    ax.axhline(0.6, color='grey', lw=0.5)
    ax.legend(fontsize=7)
    save_png_atomic(fig, path)


if __name__ == '__main__':
    main()
