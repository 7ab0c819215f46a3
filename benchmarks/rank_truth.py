"""The stand-alone truth of the rank studies: every subnet of one or more rank
sets (a truth set to develop estimators on, and a held-out set disjoint from
it that nothing is tuned or chosen on) trained alone with the pipeline's
retrain recipe (the baseline's) and several seeds, each scored on val (what
an estimator is ranked against: the mean over the seeds) and on the test
split (reports only). The seed-to-seed Kendall tau of the val scores, over
each set and within each input size, is the ceiling an estimator is
measured against (an estimator cannot be asked to agree with one seed's
training better than another seed does).

Every training runs through ``tools/train.py --test`` in
``<work-dir>/<set>/<subnet>/seed<k>``, is recorded as it finishes and
skipped when the command is run again (an interrupted one resumes), so
hours of trainings come in pieces.

Example:
    python benchmarks/rank_truth.py \\
        configs/nas/nsga2_fcos_whole-elastic_r18w16_digits.py \\
        --rank-sets configs/nas/rank_sets/fcos_whole-elastic_truth.yaml \\
        configs/nas/rank_sets/fcos_whole-elastic_heldout.yaml \\
        --seeds 0 1 --jobs 2
Writes benchmarks/results/rank_truth/<config name>.{json,csv,png}.
"""
import argparse
import json
import os
import os.path as osp

from common import machine, train_many, write_result


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='the pipeline (or supernet) config')
    parser.add_argument(
        '--rank-sets',
        nargs='+',
        required=True,
        metavar='YAML',
        help='rank-set files (mmnas_tricks.engine.rank.read_rank_set); '
        "each is a set of its own in the results, named by its file's stem")
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    parser.add_argument(
        '--jobs',
        type=int,
        default=1,
        help='trainings run at once (common.train_many; default 1)')
    parser.add_argument(
        '--dry-run',
        action='store_true',
        help='resolve the subnets and write their configs and the results '
        'file (scores empty), train nothing')
    parser.add_argument(
        '--work-dir',
        default=None,
        help='default: work_dirs/rank_truth/'
        '<config name>')
    parser.add_argument(
        '--out',
        default=None,
        help='default: benchmarks/results/rank_truth/<config name>.json')
    args = parser.parse_args(argv)
    for path in [args.config] + args.rank_sets:
        if not osp.isfile(path):
            parser.error(f'{path!r} does not exist')
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f'--seeds {args.seeds}: a seed twice')
    return args


def digest(paths) -> str:
    """A digest of the rank-set files' texts (and of the sets they are
    disjoint from): equal digests, equal subnets."""
    import hashlib

    from mmnas_tricks.engine.rank import read_rank_set
    h = hashlib.sha256()
    for path in paths:
        for p in [path] + read_rank_set(path)['disjoint_from']:
            with open(p, 'rb') as f:
                h.update(f.read())
    return h.hexdigest()[:16]


def space_text(cfg) -> str:
    """The model config, as text: the space the subnets are drawn from."""
    return json.dumps(cfg.to_dict()['model'], sort_keys=True, default=repr)


def subnets_of(cfg, rank_sets, earlier: dict = None) -> list:
    """``(set name, subnet name, subnet, FLOPs ratio, input size)`` of every
    subnet of the rank sets, resolved on the config's supernet (a FLOPs
    trace per draw: tens of minutes for a few dozen subnets of a channel
    space), or read from ``earlier`` (a results file of the same space and
    rank sets)."""
    from mmnas_tricks.engine.rank import rank_set_subnets
    if earlier and earlier.get('rank_set_digest') == digest(
            rank_sets) and earlier.get('space') == space_text(cfg):
        return [(r['set'], r['name'], r['subnet'], r['flops_ratio'],
                 r['input_size']) for r in earlier['records']]
    from mmnas_tricks.models.mutables import set_subnet
    from mmnas_tricks.models.resources import input_size, traced_input_shape
    from mmnas_tricks.utils import build_model
    model = build_model(cfg)
    shape = input_size(cfg).shape
    out, cache = [], {}  # FLOPs by subnet, shared by the sets
    for path in rank_sets:
        name = osp.splitext(osp.basename(path))[0]
        for sub, subnet, ratio in rank_set_subnets(
                model, path, shape, flops_cache=cache):
            set_subnet(model, subnet)
            size = traced_input_shape(model, shape)[1]
            out.append((name, sub, subnet, ratio, size))
    return out


def ceiling(records: list, seeds: list) -> dict:
    """Kendall tau between the first two seeds' val scores of ``records``
    (every seed finished), over all of them and within each input size
    (``None`` where fewer than 3 subnets)."""
    from mmnas_tricks.utils import rank_consistency
    done = [r for r in records if None not in r['scores']]
    if len(seeds) < 2:
        return {}

    def tau(rows):
        if len(rows) < 3:
            return None
        return round(
            rank_consistency([r['scores'][0] for r in rows],
                             [r['scores'][1] for r in rows])['kendall_tau'], 4)

    sizes = sorted({r['input_size'] for r in done})
    return dict(
        n=len(done),
        all=tau(done),
        by_size={
            str(s): tau([r for r in done if r['input_size'] == s])
            for s in sizes
        })


def summarise(records: list, seeds: list) -> dict:
    for r in records:
        for key, prefix in (('scores', ''), ('test_scores', 'test_')):
            s = [v for v in r[key] if v is not None]
            r[prefix + 'mean'] = round(sum(s) / len(s), 4) if s else None
    sets = sorted({r['set'] for r in records})
    return {
        name: ceiling([r for r in records if r['set'] == name], seeds)
        for name in sets
    }


def write_all(records: list, args, out: str) -> None:
    from mmnas_tricks.utils import dump_csv_atomic
    ceilings = summarise(records, args.seeds)
    stem = out[:-len('.json')]
    dump_csv_atomic([{k: v
                      for k, v in r.items() if k != 'subnet'}
                     for r in records], stem + '.csv', [
                         'set', 'name', 'flops_ratio', 'gflops', 'input_size',
                         'mean', 'scores', 'test_mean', 'test_scores'
                     ])
    plot(records, args.seeds, stem + '.png')
    write_result(
        dict(
            machine('cpu'),
            benchmark='rank_truth',
            config=args.config,
            rank_sets=args.rank_sets,
            rank_set_digest=digest(args.rank_sets),
            space=args.space,
            seeds=args.seeds,
            score_key=records[0]['score_key'] if records else None,
            split='val: scores, mean (the truth estimators are ranked '
            'against); test (data/digits_test): test_scores, test_mean',
            ceiling=ceilings,
            records=records), out)


def plot(records: list, seeds: list, path: str) -> None:
    """Seed against seed (val), one colour per input size: how far two
    trainings of one subnet agree."""
    from mmnas_tricks.utils.io import new_figure, save_png_atomic
    done = [r for r in records if None not in r['scores']]
    if len(seeds) < 2 or not done:
        return
    fig, ax = new_figure((5, 4.5))
    for size in sorted({r['input_size'] for r in done}):
        mine = [r for r in done if r['input_size'] == size]
        ax.scatter([r['scores'][0] for r in mine],
                   [r['scores'][1] for r in mine],
                   label=f'{size} px')
    ax.set_xlabel(f'val score, seed {seeds[0]}')
    ax.set_ylabel(f'val score, seed {seeds[1]}')
    ax.set_title('Stand-alone trainings: seed against seed')
    ax.legend(fontsize=8)
    save_png_atomic(fig, path)


def main(argv=None):
    from mmnas_tricks.engine.pipeline import retrain_recipe
    from mmnas_tricks.engine.rank import config_fingerprint, standalone_config
    from mmnas_tricks.models.resources import config_resources
    from mmnas_tricks.structures import subnet_key
    from mmnas_tricks.utils import atomic_write_text, load_config
    args = parse_args(argv)
    cfg = load_config(args.config)
    score_key = (cfg.get('nas') or {}).get('score_key', 'coco/bbox_mAP')
    stem = osp.splitext(osp.basename(args.config))[0]
    work = args.work_dir or osp.join('work_dirs', 'rank_truth', stem)
    out = args.out or osp.join('benchmarks', 'results', 'rank_truth',
                               f'{stem}.json')
    os.makedirs(osp.dirname(out), exist_ok=True)
    earlier = None
    if osp.isfile(out):
        with open(out) as f:
            earlier = json.load(f)
    args.space = space_text(cfg)
    # a set disjoint from others is held out: nothing may be tuned on it
    # (mmnas_tricks.engine.tune.read_truth leaves it out unless asked)
    from mmnas_tricks.engine.rank import read_rank_set
    held = {
        osp.splitext(osp.basename(p))[0]:
        bool(read_rank_set(p)['disjoint_from'])
        for p in args.rank_sets
    }
    records, tasks = [], []
    for set_name, name, subnet, ratio, size in subnets_of(
            cfg, args.rank_sets, earlier):
        static = standalone_config(cfg, subnet, retrain=retrain_recipe(cfg))
        path = osp.join(work, set_name, f'{name}.py')
        atomic_write_text(path, static.pretty_text)
        res = config_resources(static, latency=False)
        records.append(
            dict(
                set=set_name,
                held_out=held[set_name],
                name=name,
                key=subnet_key(subnet),
                subnet=subnet,
                flops_ratio=round(ratio, 4),
                gflops=round(res['flops'] / 1e9, 4),
                params_m=round(res['params'] / 1e6, 4),
                input_size=size,
                config=path,
                fingerprint=config_fingerprint(static),
                score_key=score_key,
                seeds=list(args.seeds),
                scores=[None] * len(args.seeds),
                test_scores=[None] * len(args.seeds),
                train_seconds=[None] * len(args.seeds)))
    for k, seed in enumerate(args.seeds):  # every subnet's first seed first
        for r in records:
            tasks.append(
                (r['config'], osp.join(work, r['set'], r['name'],
                                       f'seed{seed}'), seed, (k, r)))

    def done(tag, metrics, test, seconds):
        k, r = tag
        r['scores'][k] = round(float(metrics[score_key]), 4)
        r['test_scores'][k] = round(float(test[score_key]), 4)
        if seconds is not None:
            r['train_seconds'][k] = round(seconds, 1)
        print(
            f'{r["set"]} {r["name"]} seed {r["seeds"][k]}: val '
            f'{r["scores"][k]}, test {r["test_scores"][k]}',
            flush=True)
        write_all(records, args, out)

    write_all(records, args, out)
    if not args.dry_run:
        train_many(tasks, args.jobs, done)
        write_all(records, args, out)


if __name__ == '__main__':
    main()
