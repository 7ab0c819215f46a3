"""The main job's full comparison: the baseline FCOS, the baseline scaled by
hand (every width x0.5 to x0.875, input 96 to 192 px, one block per stage,
and their compound grid within 0.2x-1.2x the baseline's FLOPs:
:mod:`mmnas_tricks.engine.hand_rules`, the rule EfficientNet's compound
scaling gives without a search) and the subnets the main job's search found
near 0.5x, 0.75x and 1.0x the baseline's FLOPs, each trained from scratch
with the baseline's recipe and 3 seeds, and scored on the val split (the
development split) and on the test split (1,000 canvases of another draw of
the val digits, ``data/digits_test``), which only reports: the rows' means,
the hand front (``hand_front``: the Pareto front of the hand rules' test
means) and the verdict are the test split's.

The found subnets come from the main job's supernet (``--nas-dir``, the
work dir of ``tools/nas.py configs/nas/nsga2_fcos_whole-elastic_r18w16_
digits.py``; without it only the hand rules are trained): for each budget
the pipeline re-ranked (``rerank/choice.json``), its re-ranked pick. A
budget it did not export is searched here on the same supernet, the way
Once-for-All serves a new deployment constraint (train once, search per
budget): ``tools/nas.py`` runs the main job's search and re-rank stages
with that budget exported in ``<work-dir>/search_<f>x`` (the main job's
search itself, or a search within a lower FLOPs window where
:data:`SEARCH_WINDOWS` says so), and its re-ranked pick is the budget's
subnet. Each is exported as a plain config the way the search exports
(``export_config`` + the retrain recipe).

Every training runs through ``tools/train.py --test`` in
``<work-dir>/<model>/seed<k>``, seed by seed (every model's seed 0 first),
is recorded as it finishes and skipped when the command is run again (an
interrupted one resumes). A run the main job itself trained, with the same
config and seed and scored on the test split (its baseline stage, the
retrain of each budget it exported), is read from its work dir instead of
trained again (``--no-reuse`` trains it here too; the rows say which seeds
were read: ``reused``); so is a seed of an earlier results file given with
``--recorded`` whose row has the same config fingerprint (every key that
decides the training, :func:`mmnas_tricks.engine.rank.config_fingerprint`)
and a test score (the rows say which: ``recorded``). The latency of every
model is measured side by side in the run that writes the results (batch
1, this machine): ``--latency-rounds`` rounds over every model, its fastest
round reported, every round's value kept (``latency_rounds_ms``). Nothing
else should run meanwhile: on this 2-core machine the rounds still come in
two states, one about twice the other, whatever the model (other processes
taking a core), so the fastest round, not the median, is the figure that
compares models (the convention of Python's ``timeit``).

Example:
    python benchmarks/main_job.py \
        --nas-dir work_dirs/nsga2_fcos_whole-elastic_r18w16_digits
    python benchmarks/main_job.py --roles baseline scaled-baseline  # hand
    python benchmarks/main_job.py --seeds 0 --models baseline res160
Writes benchmarks/results/main_job/results.{json,csv,png}.
"""
import argparse
import json
import os
import os.path as osp

from common import machine, train_many, write_result

#: the two main jobs: detection (the default) and segmentation, each with
#: its baseline, pipeline, score and the bars of the verdict: the found
#: subnet must beat the best hand rule at no more FLOPs by ``margin`` at each
#: budget, and at 1.0x the baseline by ``baseline_margin``
TASKS = dict(
    det=dict(
        baseline='configs/baselines/fcos_r18w16_fpn_gn-head_12e_digits.py',
        nas_config='configs/nas/nsga2_fcos_whole-elastic_r18w16_digits.py',
        score_key='coco/bbox_mAP',
        margin=0.005,
        baseline_margin=0.015,
        out='benchmarks/results/main_job/results.json',
        work_dir='work_dirs/main_job_benchmark'),
    seg=dict(
        baseline='configs/baselines/fpn_r18w16_12e_digits-seg.py',
        nas_config='configs/nas/nsga2_fpn_whole-elastic_r18w16_digits-seg.py',
        score_key='mIoU',
        margin=0.0,
        baseline_margin=0.5,
        out='benchmarks/results/main_job_seg/results.json',
        work_dir='work_dirs/main_job_seg_benchmark'))
BASELINE = TASKS['det']['baseline']
NAS_CONFIG = TASKS['det']['nas_config']
SCORE_KEY = TASKS['det']['score_key']
#: the found budgets (fractions of the baseline's FLOPs): 0.27x is at most
#: width x0.5's FLOPs (0.272x), the smallest hand-scaled baseline at 128 px
FRACTIONS = (0.27, 0.5, 0.75, 1.0)
#: the FLOPs window (the ``flops`` constraint) of the search of a budget the
#: main job does not export, where it is not the main job's own (0.3x-1x):
#: 0.27x lies below it
SEARCH_WINDOWS = {0.27: ('0.15*first', '0.3*first')}
#: the hand rules' FLOPs window (fractions of the baseline's)
GRID_FLOPS = (0.2, 1.2)
#: the budgets the verdict checks, and what a found subnet must beat there:
#: the best hand rule at no more FLOPs by MARGIN, and at 1.0x the baseline by
#: BASELINE_MARGIN; no hand-front point above the found front in FRONT_WINDOW
BUDGETS = (0.5, 0.75, 1.0)
MARGIN = TASKS['det']['margin']
BASELINE_MARGIN = TASKS['det']['baseline_margin']
FRONT_WINDOW = (0.3, 1.0)
ROLES = ('baseline', 'scaled-baseline', 'found')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--nas-dir',
        default=None,
        help="the main job's work dir (its search/search/ is read); "
        'without it no found rows')
    parser.add_argument(
        '--task',
        choices=sorted(TASKS),
        default='det',
        help='det: the FCOS main job (default); seg: the Semantic FPN one')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument(
        '--models',
        nargs='+',
        default=None,
        help='only these rows (default: all): baseline, the hand rules '
        '(width_x<r>, res<px>, depth<n>, joined: width_x0.75_res160), ' +
        ', '.join(f'found_{f:g}x' for f in FRACTIONS))
    parser.add_argument(
        '--roles',
        nargs='+',
        default=list(ROLES),
        choices=ROLES,
        help='only the rows of these roles (default: all)')
    parser.add_argument(
        '--no-reuse',
        action='store_true',
        help='train every run here, also those the main job trained with '
        'the same config and seed (its baseline and retrain stages)')
    parser.add_argument(
        '--recorded',
        nargs='+',
        default=[],
        metavar='JSON',
        help='earlier results files of this benchmark: a seed recorded '
        'there, with its test score, for a row with the same config '
        'fingerprint is read, not trained again')
    parser.add_argument(
        '--latency-rounds',
        type=int,
        default=11,
        help='rounds of the side-by-side latency pass (each model measured '
        'once a round; the fastest round is reported)')
    parser.add_argument(
        '--latency-repeats',
        type=int,
        default=20,
        help='forwards per latency measurement (their median)')
    parser.add_argument(
        '--jobs',
        type=int,
        default=1,
        help='trainings run at once (common.train_many; default 1)')
    parser.add_argument(
        '--work-dir', default=None, help="default: the task's (TASKS)")
    parser.add_argument(
        '--out',
        default=None,
        help="default: the task's, benchmarks/results/main_job[_seg]/"
        'results.json')
    args = parser.parse_args(argv)
    use_task(args.task)
    args.work_dir = args.work_dir or TASKS[args.task]['work_dir']
    args.out = args.out or TASKS[args.task]['out']
    return args


def use_task(task: str) -> None:
    """Point the module's settings (BASELINE, NAS_CONFIG, SCORE_KEY and
    the margins) at ``task`` of :data:`TASKS`."""
    global BASELINE, NAS_CONFIG, SCORE_KEY, MARGIN, BASELINE_MARGIN
    t = TASKS[task]
    BASELINE, NAS_CONFIG, SCORE_KEY = t['baseline'], t['nas_config'], t[
        'score_key']
    MARGIN, BASELINE_MARGIN = t['margin'], t['baseline_margin']


def _load(path):
    from mmnas_tricks.utils import load_config
    return load_config(path)


def scaled_config(name: str):
    """The baseline config scaled by the hand rule ``name``
    (:func:`mmnas_tricks.engine.hand_rules.parse_rule`)."""
    from mmnas_tricks.engine.hand_rules import parse_rule, scale_config
    return scale_config(
        _load(BASELINE), parse_rule(name, base_size=128), where=BASELINE)


def hand_rules() -> list:
    """(name, description, config) of every hand rule of the default grid
    (:func:`mmnas_tricks.engine.hand_rules.grid`) whose FLOPs lie within
    :data:`GRID_FLOPS` of the baseline's, the baseline itself left out."""
    from mmnas_tricks.engine.hand_rules import grid, scale_config
    base = _load(BASELINE)
    reference = resources(base)['gflops']
    out = []
    for rule in grid(base_size=128, base_depth=2):
        if rule.name == 'baseline':
            continue
        cfg = scale_config(base, rule, where=BASELINE)
        ratio = resources(cfg)['gflops'] / reference
        if GRID_FLOPS[0] <= ratio <= GRID_FLOPS[1]:
            out.append((rule.name, rule.describe(), cfg))
    return out


def _picks(nas_dir: str) -> dict:
    """Export name (``best_subnet_<f>x``) -> the re-ranked pick's record,
    of the budgets a pipeline run in ``nas_dir`` re-ranked."""
    choice_path = osp.join(nas_dir, 'rerank', 'choice.json')
    if not osp.isfile(choice_path):
        return {}
    with open(choice_path) as f:
        choice = json.load(f)
    by_name = {c['name']: c for c in choice['candidates']}
    return {
        export: by_name[pick['reranked']]
        for export, pick in choice['picks'].items()
    }


def search_config(fraction: float, path: str) -> None:
    """Write the main job's config with ``fraction`` its only export (and
    the search window of :data:`SEARCH_WINDOWS`) to ``path``."""
    from mmnas_tricks.utils import atomic_write_text
    lines = [
        f'# benchmarks/main_job.py: the main job searched for a '
        f'{fraction:g}x budget', f'_base_ = [{osp.abspath(NAS_CONFIG)!r}]',
        'nas = dict(', f'    baseline={osp.abspath(BASELINE)!r},',
        f'    search=dict(export_flops=({fraction!r}, )'
    ]
    if fraction in SEARCH_WINDOWS:
        lines[-1] += (f',\n                constraints=dict(flops='
                      f'{tuple(SEARCH_WINDOWS[fraction])!r})')
    lines[-1] += '))'
    atomic_write_text(path, '\n'.join(lines) + '\n')


def search_budget(nas_dir: str, fraction: float, work_dir: str) -> str:
    """The work dir of the main job's search and re-rank stages run for a
    ``fraction`` budget on the main job's trained supernet (its baseline
    and supernet stages are taken from ``nas_dir``, not trained again);
    finished stages are skipped when run again."""
    import shutil
    import subprocess
    import sys

    from mmnas_tricks.utils import dump_json_atomic
    with open(osp.join(nas_dir, 'nas_state.json')) as f:
        state = json.load(f)
    if not all(state.get(s, {}).get('done') for s in ('baseline', 'supernet')):
        raise FileNotFoundError(
            f'{nas_dir} has no finished baseline and supernet stages: run the '
            'main job first')
    out = osp.join(work_dir, f'search_{fraction:g}x')
    os.makedirs(out, exist_ok=True)
    for stage in ('baseline', 'supernet'):  # pointers to the main job's
        os.makedirs(osp.join(out, stage), exist_ok=True)
        for name in ('final_metrics.json', 'last_checkpoint'):
            shutil.copyfile(
                osp.join(nas_dir, stage, name), osp.join(out, stage, name))
    mine_path = osp.join(out, 'nas_state.json')
    mine = {}
    if osp.isfile(mine_path):
        with open(mine_path) as f:
            mine = json.load(f)
    mine.update({s: state[s] for s in ('baseline', 'supernet')})
    dump_json_atomic(mine, mine_path)
    config = osp.join(out, f'search_{fraction:g}x.py')
    search_config(fraction, config)
    subprocess.run([
        sys.executable, 'tools/nas.py', config, '--work-dir', out, '--stages',
        'search', 'rerank'
    ],
                   check=True)
    return out


def found_configs(nas_dir: str, work_dir: str = None) -> dict:
    """``found_<f>x`` -> (plain config, the candidate's record) for each
    budget of :data:`FRACTIONS` with a candidate within it: the main job's
    re-ranked pick, else (with ``work_dir``) the re-ranked pick of a search
    for that budget on the main job's supernet (:func:`search_budget`),
    else the main job's best scored candidate within it."""
    from mmnas_tricks.engine.export import apply_retrain
    from mmnas_tricks.engine.pipeline import stage_configs
    from mmnas_tricks.models.export import export_config
    from mmnas_tricks.models.mutables import set_subnet, validate_subnet
    from mmnas_tricks.utils import build_model
    search_dir = osp.join(nas_dir, 'search', 'search')
    with open(osp.join(search_dir, 'candidates.json')) as f:
        rows = json.load(f)  # best first
    with open(osp.join(search_dir, 'reference.json')) as f:
        reference = json.load(f)
    search = stage_configs(_load(NAS_CONFIG), NAS_CONFIG)['search']
    model = build_model(search)
    picks = _picks(nas_dir)  # the budgets the pipeline exported
    out = {}
    for fraction in FRACTIONS:
        export = f'best_subnet_{fraction:g}x'
        row = picks.get(export)
        if row is None and work_dir is not None:
            row = _picks(search_budget(nas_dir, fraction,
                                       work_dir)).get(export)
        if row is None:
            row = next(
                (r
                 for r in rows if r['flops'] <= fraction * reference['flops']),
                None)
        if row is None:
            continue
        subnet = validate_subnet(model, json.loads(row['subnet']))
        set_subnet(model, subnet)
        cfg = export_config(
            apply_retrain(search, search.train_cfg.get('retrain')), subnet,
            model)
        out[f'found_{fraction:g}x'] = (cfg, row)
    return out


#: the keys of a training config that decide its result
RECIPE_KEYS = ('model', 'train_dataloader', 'val_dataloader',
               'test_dataloader', 'val_evaluator', 'test_evaluator',
               'optim_wrapper', 'param_scheduler', 'train_cfg', 'val_cfg',
               'test_cfg', 'custom_hooks', 'load_from', 'randomness')


def pipeline_run(nas_dir: str, stage: str, cfg, seed: int):
    """((final metrics, test metrics), work dir) of the main job's own
    training ``stage`` (``baseline``, ``retrain_<f>x``) where it trained
    what ``cfg`` with ``seed`` trains (every key of RECIPE_KEYS of the
    config it dumped into its work dir equal to ``cfg``'s) and scored its
    final weights on the test split (``test_metrics.json``). None
    otherwise. Training is deterministic here (the main job run twice gave
    the same scores to the last digit), so such a run is that seed's
    result."""
    import copy
    work = osp.join(nas_dir, stage)
    final = osp.join(work, 'final_metrics.json')
    test = osp.join(work, 'test_metrics.json')
    if not (osp.isfile(final) and osp.isfile(test)):
        return None
    dumped = sorted(f for f in os.listdir(work) if f.endswith('.py'))
    if len(dumped) != 1:
        return None
    theirs = _load(osp.join(work, dumped[0]))
    mine = copy.deepcopy(cfg)
    mine.merge_from_dict({'randomness.seed': seed})

    def recipe(c):
        d = c.to_dict()
        return json.dumps({k: d.get(k)
                           for k in RECIPE_KEYS},
                          sort_keys=True,
                          default=str)

    if recipe(theirs) != recipe(mine):
        return None
    with open(final) as f, open(test) as g:
        return (json.load(f), json.load(g)), work


def resources(cfg) -> dict:
    from mmnas_tricks.models.resources import config_resources
    res = config_resources(cfg, latency=False)
    return dict(
        gflops=round(res['flops'] / 1e9, 4),
        params_m=round(res['params'] / 1e6, 4),
        input_size=res['input_size'][0],
        input_source=res['input_source'])


def latencies(cfgs, rounds: int, repeats: int) -> list:
    """Batch-1 latency (ms) of each config's model, side by side: ``rounds``
    rounds, each measuring every model in turn (:func:`measure_latency`,
    median of ``repeats`` forwards), and each model's fastest round, so
    that a drift of the machine's speed during the pass reaches every model
    alike and a slowed round (another process on a core) is not reported.
    Returns (fastest, the rounds' values) per config."""
    from mmnas_tricks.models.resources import input_size, measure_latency
    from mmnas_tricks.utils import build_model
    models = [(build_model(cfg), input_size(cfg).shape) for cfg in cfgs]
    for model, shape in models:  # warm-up, not recorded
        measure_latency(model, input_shape=shape, repeats=2)
    values = [[] for _ in models]
    for _ in range(rounds):
        for out, (model, shape) in zip(values, models):
            out.append(
                round(
                    measure_latency(model, input_shape=shape, repeats=repeats),
                    3))
    return [(round(min(v), 2), v) for v in values]


def recorded_scores(paths) -> dict:
    """(config fingerprint, seed) -> (val score, test score, the file) of
    the results files ``paths`` (rows without a fingerprint, and seeds
    without a test score, are not used)."""
    out = {}
    for path in paths:
        with open(path) as f:
            result = json.load(f)
        for row in result['rows']:
            if not row.get('fingerprint') or not row.get('test_scores'):
                continue
            seeds = row.get('seeds', result['seeds'])
            for seed, score, test in zip(seeds, row['scores'],
                                         row['test_scores']):
                if test is not None:
                    out.setdefault((row['fingerprint'], seed),
                                   (score, test, path))
    return out


def models_to_run(args) -> list:
    """(name, role, config, description) of every row the arguments ask
    for."""
    wanted = set(args.models) if args.models else None

    def asked(name, role):
        return role in args.roles and (wanted is None or name in wanted)

    models = []
    if asked('baseline', 'baseline'):
        models.append(
            ('baseline', 'baseline', _load(BASELINE), 'the baseline'))
    if 'scaled-baseline' in args.roles:
        grid_names = set()
        for name, what, cfg in hand_rules():
            grid_names.add(name)
            if asked(name, 'scaled-baseline'):
                models.append((name, 'scaled-baseline', cfg, what))
        for name in sorted((wanted or set()) - grid_names):
            if name != 'baseline' and not name.startswith('found_'):
                from mmnas_tricks.engine.hand_rules import parse_rule
                models.append((name, 'scaled-baseline', scaled_config(name),
                               parse_rule(name, 128).describe()))
    if 'found' in args.roles and args.nas_dir is not None and (
            wanted is None or any(m.startswith('found_') for m in wanted)):
        for name, (cfg, row) in found_configs(args.nas_dir,
                                              args.work_dir).items():
            what = f'searched, supernet estimate {row["score"]:.4f}'
            if row.get('finetuned_score') is not None:
                what += (', re-ranked by a fine-tune estimate of '
                         f'{row["finetuned_score"]:.4f}')
            if asked(name, 'found'):
                models.append((name, 'found', cfg, what))
    return models


def main(argv=None):
    from mmnas_tricks.engine.rank import config_fingerprint
    from mmnas_tricks.utils import atomic_write_text
    args = parse_args(argv)
    models = models_to_run(args)
    recorded = recorded_scores(args.recorded)
    os.makedirs(args.work_dir, exist_ok=True)
    rows = []
    for name, role, cfg, what in models:
        path = osp.join(args.work_dir, f'{name}.py')
        atomic_write_text(path, cfg.pretty_text)
        rows.append(
            dict(
                model=name,
                role=role,
                what=what,
                config=path,
                fingerprint=config_fingerprint(cfg),
                seeds=list(args.seeds),
                scores=[None] * len(args.seeds),
                test_scores=[None] * len(args.seeds),
                train_seconds=[None] * len(args.seeds),
                **resources(cfg)))
    # seed by seed: every model's first seed before any second one
    todo = []
    for k, seed in enumerate(args.seeds):
        for (name, role, cfg, what), row in zip(models, rows):
            # the main job's own training of this model, if it had one
            stage = None
            if name == 'baseline':
                stage = 'baseline'
            elif role == 'found':
                stage = 'retrain_' + name[len('found_'):]
            reused = None
            if not (args.no_reuse or stage is None or args.nas_dir is None):
                reused = pipeline_run(args.nas_dir, stage, cfg, seed)
            if reused is not None:
                (metrics, test), work = reused
                row.setdefault('reused', {})[str(seed)] = work
                record(row, k, metrics[SCORE_KEY], test[SCORE_KEY])
            elif (row['fingerprint'], seed) in recorded:
                val, test_score, from_file = recorded[row['fingerprint'], seed]
                row.setdefault('recorded', {})[str(seed)] = from_file
                record(row, k, val, test_score)
            else:
                todo.append((k, seed, row))
    write_all(rows, args, measured=False)
    train_all(todo, args, rows)
    # side by side, in this one run
    for row, (fastest, rounds) in zip(
            rows,
            latencies([m[2] for m in models], args.latency_rounds,
                      args.latency_repeats)):
        row.update(latency_ms=fastest, latency_rounds_ms=rounds)
    write_all(rows, args, measured=True)


def record(row: dict, k: int, val, test, seconds=None) -> None:
    row['scores'][k] = round(float(val), 4)
    row['test_scores'][k] = round(float(test), 4)
    if seconds is not None:
        row['train_seconds'][k] = round(seconds, 1)
    print(
        f'{row["model"]} seed {row["seeds"][k]}: {SCORE_KEY} val '
        f'{row["scores"][k]}, test {row["test_scores"][k]}',
        flush=True)


def train_all(todo: list, args, rows: list) -> None:
    """Train (or resume, or read) every ``(k, seed, row)`` of ``todo``,
    ``args.jobs`` at once in the order given, each recorded (and the
    results written) as it finishes."""

    def done(job, metrics, test, seconds):
        k, _, row = job
        record(row, k, metrics[SCORE_KEY], test[SCORE_KEY], seconds)
        write_all(rows, args, measured=False)

    train_many([(row['config'],
                 osp.join(args.work_dir, row['model'], f'seed{seed}'), seed,
                 (k, seed, row)) for k, seed, row in todo], args.jobs, done)


def summarise(rows: list) -> dict:
    """Each row's means and ranges (``mean`` / ``range``: the test split;
    ``val_mean`` / ``val_range``: val) over its finished seeds; the hand
    front (the Pareto front of the baseline and the hand rules, test means
    over GFLOPs) and the verdict of the found rows against it
    (:func:`verdict`)."""
    from mmnas_tricks.engine.hand_rules import pareto_front
    for row in rows:
        for key, prefix in (('test_scores', ''), ('scores', 'val_')):
            s = [v for v in row[key] if v is not None]
            row[prefix + 'mean'] = round(sum(s) / len(s), 4) if s else None
            row[prefix + 'range'] = [min(s), max(s)] if s else None
    complete = [r for r in rows if None not in r['test_scores']]
    hand = [
        r for r in complete if r['role'] in ('baseline', 'scaled-baseline')
    ]
    front = [
        dict(
            model=r['model'],
            gflops=r['gflops'],
            mean=r['mean'],
            range=r['range']) for r in pareto_front(hand)
    ]
    return dict(hand_front=front, verdict=verdict(complete, front))


def verdict(rows: list, front: list) -> dict:
    """What the issue's bars say of the found rows (test means, every seed
    finished): at each budget of :data:`BUDGETS` the found subnet within it
    (its best) against the best hand-front point at no more FLOPs plus
    :data:`MARGIN`, at 1.0x also against the baseline plus
    :data:`BASELINE_MARGIN`, and every hand-front point in
    :data:`FRONT_WINDOW` against the best found subnet at no more FLOPs."""
    from mmnas_tricks.engine.hand_rules import best_at
    base = next((r for r in rows if r['role'] == 'baseline'), None)
    found = [r for r in rows if r['role'] == 'found']
    if base is None or not found or not front:
        return dict(complete=False)
    ref = base['gflops']
    out = dict(complete=True, budgets={})
    ok = True
    for budget in BUDGETS:
        mine = best_at(found, budget * ref)
        hand = best_at(front, mine['gflops']) if mine else None
        entry = dict(
            found=mine and mine['model'],
            found_mean=mine and mine['mean'],
            hand=hand and hand['model'],
            hand_mean=hand and hand['mean'])
        entry['beats_hand'] = bool(
            mine and (hand is None or mine['mean'] >= hand['mean'] + MARGIN))
        if budget == 1.0:
            entry['beats_baseline'] = bool(
                mine and mine['mean'] >= base['mean'] + BASELINE_MARGIN)
            ok = ok and entry['beats_baseline']
        ok = ok and entry['beats_hand']
        out['budgets'][f'{budget:g}x'] = entry
    above = []
    for p in front:
        if FRONT_WINDOW[0] * ref <= p['gflops'] <= FRONT_WINDOW[1] * ref:
            mine = best_at(found, p['gflops'])
            if mine is None or p['mean'] > mine['mean']:
                above.append(p['model'])
    out['hand_front_above_found'] = above
    out['holds'] = ok and not above
    return out


def write_all(rows, args, measured: bool) -> None:
    """results.json / .csv / .png; latencies only once they are measured
    (the last write)."""
    from mmnas_tricks.utils import dump_csv_atomic
    summary = summarise(rows)
    stem = args.out[:-len('.json')]
    os.makedirs(osp.dirname(args.out), exist_ok=True)
    dump_csv_atomic(rows, stem + '.csv', [
        'model', 'role', 'gflops', 'params_m', 'latency_ms', 'input_size',
        'mean', 'range', 'test_scores', 'val_mean', 'scores', 'what'
    ])
    plot(rows, summary['hand_front'], stem + '.png')
    write_result(
        dict(
            machine('cpu'),
            benchmark='main_job',
            task=args.task,
            baseline=BASELINE,
            nas_dir=args.nas_dir,
            seeds=args.seeds,
            score_key=SCORE_KEY,
            split='test (data/digits_test): mean, range, test_scores, '
            'hand_front, verdict; val: scores, val_mean, val_range',
            latency_measured=measured,
            rows=rows,
            **summary), args.out)


def plot(rows, front, path) -> None:
    """Test means (and ranges) over GFLOPs: the hand rules, their Pareto
    front as a line, the baseline and the found subnets."""
    from mmnas_tricks.utils.io import new_figure, save_png_atomic
    fig, ax = new_figure((7, 5))
    style = {
        'baseline': ('k', 's'),
        'scaled-baseline': ('tab:blue', 'o'),
        'found': ('tab:red', '*')
    }
    on_front = {p['model'] for p in front}
    for role, (colour, marker) in style.items():
        mine = sorted(
            (r for r in rows if r['role'] == role and r['mean'] is not None),
            key=lambda r: r['gflops'])
        if not mine:
            continue
        ax.errorbar([r['gflops'] for r in mine], [r['mean'] for r in mine],
                    yerr=[[r['mean'] - r['range'][0] for r in mine],
                          [r['range'][1] - r['mean'] for r in mine]],
                    fmt=marker + ('-' if role == 'found' else ''),
                    color=colour,
                    alpha=1.0 if role != 'scaled-baseline' else 0.6,
                    capsize=3,
                    label=role)
        for r in mine:
            if role != 'scaled-baseline' or r['model'] in on_front:
                ax.annotate(
                    r['model'], (r['gflops'], r['mean']),
                    fontsize=6,
                    xytext=(4, -8),
                    textcoords='offset points')
    if front:
        ax.step([p['gflops'] for p in front], [p['mean'] for p in front],
                where='post',
                color='tab:blue',
                label='hand front')
    ax.set_xlabel('GFLOPs (at the model\'s input size)')
    ax.set_ylabel(f'{SCORE_KEY}, digits test split (mean and range over '
                  'seeds)')
    ax.set_title('Found subnets against the baseline scaled by hand')
    ax.legend(fontsize=8)
    save_png_atomic(fig, path, dpi=120)


if __name__ == '__main__':
    main()
