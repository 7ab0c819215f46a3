"""The main job's full comparison: the baseline FCOS, the baseline scaled by
hand (width x0.5 and x0.75, input 96 and 112 px: how a person shrinks a
model, the comparison Once-for-All and EfficientNet make) and the subnets the
main job's search found near 0.5x, 0.75x and 1.0x the baseline's FLOPs,
each trained from scratch with the baseline's recipe and 3 seeds.

The found subnets come from the main job's supernet (``--nas-dir``, the
work dir of ``tools/nas.py configs/nas/nsga2_fcos_whole-elastic_r18w16_
digits.py``): for each budget the pipeline re-ranked (``rerank/
choice.json``), its re-ranked pick. A budget it did not export is searched
here on the same supernet, the way Once-for-All serves a new deployment
constraint (train once, search per budget): ``tools/nas.py`` runs the main
job's search and re-rank stages with that budget exported in
``<work-dir>/search_<f>x`` (the main job's search itself, or a search
within a lower FLOPs window where :data:`SEARCH_WINDOWS` says so), and its
re-ranked pick is the budget's subnet. Each is exported as a plain config
the way the search exports (``export_config`` + the retrain recipe).

Every training runs through ``tools/train.py`` in
``<work-dir>/<model>/seed<k>``, is recorded as it finishes and skipped when
the command is run again (an interrupted one resumes). A run the main job
itself trained, with the same config and seed (its baseline stage, the
retrain of each budget it exported), is read from its work dir instead of
trained again (``--no-reuse`` trains it here too; the rows say which seeds
were read: ``reused``); so is a seed of an earlier results file given with
``--recorded`` whose row has the same config fingerprint (every key that
decides the training, :func:`mmnas_tricks.engine.rank.config_fingerprint`;
the rows say which: ``recorded``). The latency of every model is measured
side by side in the run that writes the results (batch 1, this machine):
``--latency-rounds`` rounds over every model, its fastest round reported,
every round's value kept (``latency_rounds_ms``). Nothing else should run
meanwhile: on this 2-core machine the rounds still come in two states, one
about twice the other, whatever the model (other processes taking a core),
so the fastest round, not the median, is the figure that compares models
(the convention of Python's ``timeit``).

Example:
    python benchmarks/main_job.py \
        --nas-dir work_dirs/nsga2_fcos_whole-elastic_r18w16_digits
    python benchmarks/main_job.py --nas-dir ... --seeds 0 --models baseline
Writes benchmarks/results/main_job/results.{json,csv,png}.
"""
import argparse
import json
import os
import os.path as osp

from common import machine, train_or_resume, write_result

BASELINE = 'configs/baselines/fcos_r18w16_fpn_gn-head_12e_digits.py'
NAS_CONFIG = 'configs/nas/nsga2_fcos_whole-elastic_r18w16_digits.py'
#: the found budgets (fractions of the baseline's FLOPs): 0.27x is at most
#: width x0.5's FLOPs (0.272x), the smallest hand-scaled baseline
FRACTIONS = (0.27, 0.5, 0.75, 1.0)
#: the FLOPs window (the ``flops`` constraint) of the search of a budget the
#: main job does not export, where it is not the main job's own (0.3x-1x):
#: 0.27x lies below it
SEARCH_WINDOWS = {0.27: ('0.15*first', '0.3*first')}
#: name -> (role, description)
SCALED = {
    'width_x0.5': 'every width x0.5 (backbone 8/16/32/64, FPN and towers 32)',
    'width_x0.75': 'every width x0.75 (backbone 12/24/48/96, FPN and '
    'towers 48)',
    'res96': 'input 96 px',
    # 112 px pads to 128 (pad divisor 32), so it
    # costs what the baseline costs with fewer pixels
    'res112': 'input 112 px (padded to 128)',
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--nas-dir',
        required=True,
        help="the main job's work dir (its search/search/ is read)")
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument(
        '--models',
        nargs='+',
        default=None,
        help='only these rows (default: all): baseline, ' + ', '.join(SCALED) +
        ', ' + ', '.join(f'found_{f:g}x' for f in FRACTIONS))
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
        'there for a row with the same config fingerprint is read, not '
        'trained again')
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
    parser.add_argument('--work-dir', default='work_dirs/main_job_benchmark')
    parser.add_argument(
        '--out', default='benchmarks/results/main_job/results.json')
    return parser.parse_args()


def _load(path):
    from mmnas_tricks.utils import load_config
    return load_config(path)


def scaled_config(name: str):
    """The baseline config scaled by hand as ``name`` says."""
    cfg = _load(BASELINE)
    if name.startswith('width_x'):
        r = float(name[len('width_x'):])
        base = int(16 * r)
        feat = int(64 * r)
        cfg.model.backbone.base_channels = base
        cfg.model.neck.in_channels = [2 * base, 4 * base, 8 * base]
        cfg.model.neck.out_channels = feat
        cfg.model.bbox_head.in_channels = feat
        cfg.model.bbox_head.feat_channels = feat
        # GroupNorm keeps its 4 channels per group
        cfg.model.bbox_head.norm_cfg.num_groups = feat // 4
    elif name.startswith('res'):
        size = int(name[len('res'):])
        for loader in ('train_dataloader', 'val_dataloader',
                       'test_dataloader'):
            for step in cfg[loader].dataset.pipeline:
                if step.type == 'Resize':
                    step.scale = (size, size)
    else:
        raise KeyError(f'{name!r} is not among {list(SCALED)}')
    return cfg


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
    """(final metrics, work dir) of the main job's own training ``stage``
    (``baseline``, ``retrain_<f>x``) where it trained what ``cfg`` with
    ``seed`` trains: every key of RECIPE_KEYS of the config it dumped into
    its work dir equal to ``cfg``'s. None otherwise. Training is
    deterministic here (the main job run twice gave the same scores to the
    last digit), so such a run is that seed's result."""
    import copy
    work = osp.join(nas_dir, stage)
    final = osp.join(work, 'final_metrics.json')
    if not osp.isfile(final):
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
    with open(final) as f:
        return json.load(f), work


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
    """(config fingerprint, seed) -> (bbox mAP, the file) of the results
    files ``paths`` (rows without a fingerprint are not used)."""
    out = {}
    for path in paths:
        with open(path) as f:
            result = json.load(f)
        for row in result['rows']:
            if not row.get('fingerprint'):
                continue
            seeds = row.get('seeds', result['seeds'])
            for seed, score in zip(seeds, row['scores']):
                out.setdefault((row['fingerprint'], seed), (score, path))
    return out


def main():
    from mmnas_tricks.engine.rank import config_fingerprint
    from mmnas_tricks.utils import atomic_write_text
    args = parse_args()
    wanted = set(args.models) if args.models else None
    models = [('baseline', 'baseline', _load(BASELINE), 'the baseline FCOS')]
    models += [(n, 'scaled-baseline', scaled_config(n), d)
               for n, d in SCALED.items()]
    if wanted is None or any(m.startswith('found_') for m in wanted):
        for name, (cfg, row) in found_configs(args.nas_dir,
                                              args.work_dir).items():
            what = f'searched, supernet estimate {row["score"]:.4f}'
            if row.get('finetuned_score') is not None:
                what += (', re-ranked by a fine-tune estimate of '
                         f'{row["finetuned_score"]:.4f}')
            models.append((name, 'found', cfg, what))
    if wanted is not None:
        models = [m for m in models if m[0] in wanted]
    recorded = recorded_scores(args.recorded)
    os.makedirs(args.work_dir, exist_ok=True)
    rows = []
    for name, role, cfg, what in models:
        path = osp.join(args.work_dir, f'{name}.py')
        atomic_write_text(path, cfg.pretty_text)
        fingerprint = config_fingerprint(cfg)
        row = dict(
            model=name,
            role=role,
            what=what,
            config=path,
            fingerprint=fingerprint,
            seeds=list(args.seeds),
            scores=[],
            train_seconds=[])
        rows.append(row)
        # the main job's own training of this model, if it had one
        if name == 'baseline':
            stage = 'baseline'
        elif role == 'found':
            stage = 'retrain_' + name[len('found_'):]
        else:
            stage = None
        for seed in args.seeds:
            reused = None if args.no_reuse or stage is None else pipeline_run(
                args.nas_dir, stage, cfg, seed)
            if reused is not None:
                score, seconds = reused[0]['coco/bbox_mAP'], None
                row.setdefault('reused', {})[str(seed)] = reused[1]
            elif (fingerprint, seed) in recorded:
                score, from_file = recorded[fingerprint, seed]
                seconds = None
                row.setdefault('recorded', {})[str(seed)] = from_file
            else:
                metrics, seconds = train_or_resume(
                    path, osp.join(args.work_dir, name, f'seed{seed}'), seed)
                score = metrics['coco/bbox_mAP']
            row['scores'].append(round(float(score), 4))
            if seconds is not None:
                row['train_seconds'].append(round(seconds, 1))
            print(
                f'{name} seed {seed}: bbox mAP {row["scores"][-1]}',
                flush=True)
            write_all(rows, args, measured=False)
    for (name, role, cfg, what), row in zip(models, rows):
        row.update(resources(cfg))
    # side by side, in this one run
    for row, (fastest, rounds) in zip(
            rows,
            latencies([m[2] for m in models], args.latency_rounds,
                      args.latency_repeats)):
        row.update(latency_ms=fastest, latency_rounds_ms=rounds)
    write_all(rows, args, measured=True)


def write_all(rows, args, measured: bool) -> None:
    """results.json / .csv / .png; resources only once they are measured
    (the last write)."""
    from mmnas_tricks.utils import dump_csv_atomic
    for row in rows:
        s = row['scores']
        row['mean'] = round(sum(s) / len(s), 4) if s else None
        row['range'] = [min(s), max(s)] if s else None
    stem = args.out[:-len('.json')]
    os.makedirs(osp.dirname(args.out), exist_ok=True)
    if measured:
        dump_csv_atomic(rows, stem + '.csv', [
            'model', 'role', 'gflops', 'params_m', 'latency_ms', 'input_size',
            'mean', 'range', 'scores', 'what'
        ])
        plot(rows, stem + '.png')
    write_result(
        dict(
            machine('cpu'),
            benchmark='main_job',
            nas_dir=args.nas_dir,
            seeds=args.seeds,
            score_key='coco/bbox_mAP',
            rows=rows), args.out)


def plot(rows, path) -> None:
    from mmnas_tricks.utils.io import new_figure, save_png_atomic
    fig, ax = new_figure((6, 4.5))
    style = {
        'baseline': ('k', 's'),
        'scaled-baseline': ('tab:blue', 'o'),
        'found': ('tab:red', '*')
    }
    for role, (colour, marker) in style.items():
        mine = sorted((r for r in rows if r['role'] == role and r['scores']),
                      key=lambda r: r['gflops'])
        if not mine:
            continue
        xs = [r['gflops'] for r in mine]
        ys = [r['mean'] for r in mine]
        err = [[r['mean'] - r['range'][0] for r in mine],
               [r['range'][1] - r['mean'] for r in mine]]
        ax.errorbar(
            xs,
            ys,
            yerr=err,
            fmt=marker + ('-' if role == 'found' else ''),
            color=colour,
            capsize=3,
            label=role)
        for r in mine:
            ax.annotate(
                r['model'], (r['gflops'], r['mean']),
                fontsize=7,
                xytext=(4, -8),
                textcoords='offset points')
    ax.set_xlabel('GFLOPs (at the model\'s input size)')
    ax.set_ylabel('bbox mAP, digits val (mean and range over seeds)')
    ax.set_title('Found subnets against the baseline scaled by hand')
    ax.legend()
    save_png_atomic(fig, path, dpi=120)


if __name__ == '__main__':
    main()
