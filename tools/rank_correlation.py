"""How well a trained supernet ranks subnets: its estimate of each subnet
(without and with BN calibration) against the subnet trained alone
(Kendall tau, Spearman rho, top-k overlap; TRICKS.md T5.3).

With ``--few-shot MANIFEST`` (tools/few_shot.py) each subnet is also scored
by the sub-supernet that matches it (TRICKS.md T5.1), without and with BN
calibration.

CONFIG is the supernet config (or a tools/nas.py pipeline config: then its
search stage's held-out split, evaluator and score key are used, and its
``retrain`` recipe trains the subnets alone) and CHECKPOINT the trained
supernet. The subnets are the baseline (first choices) and random distinct
ones (``--num-subnets``, ``--seed``). Each estimate and each stand-alone
score is recorded in ``<work_dir>/rank_correlation.json`` as soon as it
exists; a rerun computes only what is missing (an interrupted stand-alone
training starts again). Results: ``rank_correlation.{json,csv,png}``.

Example:
    WORK_DIR=work_dirs/spos_fcos_r18w16_fpn-elastic_gn-head-elastic_digits
    python tools/rank_correlation.py \
        configs/nas/spos_fcos_r18w16_fpn-elastic_gn-head-elastic_digits.py \
        $WORK_DIR/supernet/epoch_12.pth \
        --num-subnets 10
"""
import argparse
import csv
import io
import os.path as osp
import sys
import time

HERE = osp.dirname(osp.abspath(__file__))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', help='the trained supernet')
    parser.add_argument('--num-subnets', type=int, default=10)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--calibrate-bn',
        type=int,
        default=10,
        help='training batches of BN calibration (default 10)')
    parser.add_argument(
        '--score-key',
        default=None,
        help='default: the pipeline\'s, else coco/bbox_mAP')
    parser.add_argument(
        '--standalone-epochs',
        type=int,
        default=None,
        help='epochs of each stand-alone training (default: '
        'the retrain recipe\'s)')
    parser.add_argument(
        '--few-shot',
        metavar='MANIFEST',
        default=None,
        help='a few-shot split (tools/few_shot.py): also '
        'rank with the matching sub-supernets')
    parser.add_argument(
        '--work-dir',
        help='default: work_dirs/'
        'rank_correlation/<config name>')
    args = parser.parse_args(argv)
    if args.num_subnets < 2:
        parser.error(f'--num-subnets {args.num_subnets}: need >= 2')
    if not osp.isfile(args.checkpoint):
        parser.error(f'checkpoint {args.checkpoint!r} does not exist')
    return args


def estimate_fields(args) -> list:
    """(record field, BN calibration batches) of every estimate."""
    fields = [('estimate', 0), ('estimate_calibrated', args.calibrate_bn)]
    if args.few_shot:
        fields += [('estimate_few_shot', 0),
                   ('estimate_few_shot_calibrated', args.calibrate_bn)]
    return fields


def estimates(cfg, args, subnets, work: str, done: dict) -> None:
    """Fill ``done[key][field]`` for every field of :func:`estimate_fields`,
    yielding after each."""
    from mmnas_tricks.engine.rank import SupernetScorer
    scorer = SupernetScorer(cfg, args.checkpoint, osp.join(work, 'estimate'),
                            args.score_key, args.calibrate_bn, args.seed)
    router = None
    if args.few_shot:
        from mmnas_tricks.engine.few_shot import FewShotRouter
        router = FewShotRouter(args.few_shot)
        router.check(scorer.model)
    for key, subnet in subnets:
        rec = done[key]
        for field, n in estimate_fields(args):
            if field in rec:
                continue
            rec[field] = scorer.score(
                subnet,
                calibrate=n > 0,
                router=router
                if field.startswith('estimate_few_shot') else None)
            yield


def main(argv=None):
    args = parse_args(argv)
    sys.path.insert(0, osp.dirname(HERE))
    from mmnas_tricks.engine.rank import (distinct_subnets, load_records,
                                          scatter_png, standalone_config,
                                          train_standalone)
    from mmnas_tricks.structures import subnet_key
    from mmnas_tricks.utils import (build_model, dump_json_atomic, load_config,
                                    rank_consistency)
    from mmnas_tricks.utils.io import atomic_write_text
    cfg = load_config(args.config)
    nas = cfg.get('nas') or {}
    args.score_key = args.score_key or nas.get('score_key', 'coco/bbox_mAP')
    name = osp.splitext(osp.basename(args.config))[0]
    work = args.work_dir or osp.join('work_dirs', 'rank_correlation', name)
    path = osp.join(work, 'rank_correlation.json')
    state = load_records(path)
    few_shot = None
    if args.few_shot:
        from mmnas_tricks.engine.few_shot import load_manifest
        few_shot = dict(
            manifest=args.few_shot,
            mutable=load_manifest(args.few_shot)['mutable'])
    if state.get('few_shot') and state['few_shot'] != few_shot:
        for rec in state['records'].values():  # another split's estimates
            rec.pop('estimate_few_shot', None)
            rec.pop('estimate_few_shot_calibrated', None)
    state['few_shot'] = few_shot
    state.update(
        config=args.config,
        checkpoint=args.checkpoint,
        score_key=args.score_key,
        seed=args.seed,
        calibrate_bn=args.calibrate_bn,
        standalone_epochs=args.standalone_epochs)
    subnets = distinct_subnets(build_model(cfg), args.num_subnets, args.seed)
    keyed = [(subnet_key(s), s) for s in subnets]
    for i, (key, subnet) in enumerate(keyed):
        state['records'].setdefault(key, dict(index=i, subnet=subnet))
    records = state['records']

    for _ in estimates(cfg, args, keyed, work, records):
        dump_json_atomic(state, path)
    print('supernet estimates done', flush=True)

    retrain_src = cfg.copy()
    if nas.get('retrain'):
        retrain_src['retrain'] = nas['retrain']
    retrain_src.pop('nas', None)
    for key, subnet in keyed:
        rec = records[key]
        if 'standalone' in rec:
            print(f'subnet {rec["index"]}: stand-alone {rec["standalone"]:.4f}'
                  ' (done)')
            continue
        static = standalone_config(
            retrain_src, subnet,
            **({} if args.standalone_epochs is None else dict(
                max_epochs=args.standalone_epochs)))
        start = time.time()
        rec['standalone'] = train_standalone(
            static, osp.join(work, 'standalone', f'subnet{rec["index"]}'),
            f'rank_standalone{rec["index"]}', args.score_key)
        rec['standalone_seconds'] = round(time.time() - start, 1)
        dump_json_atomic(state, path)
        print(
            f'subnet {rec["index"]}: stand-alone {rec["standalone"]:.4f}',
            flush=True)

    rows = sorted((records[k] for k, _ in keyed), key=lambda r: r['index'])
    truth = [r['standalone'] for r in rows]
    fields = [f for f, _ in estimate_fields(args)]
    state['rank'] = {
        field: rank_consistency([r[field] for r in rows], truth)
        for field in fields
    }
    dump_json_atomic(state, path)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(['index'] + fields + ['standalone', 'standalone_seconds'])
    for r in rows:
        writer.writerow(
            [r['index']] + [r[f] for f in fields] +
            [r['standalone'], r.get('standalone_seconds')])
    atomic_write_text(osp.join(work, 'rank_correlation.csv'), out.getvalue())
    tau = state['rank']['estimate_calibrated']['kendall_tau']
    scatter_png(truth, [r['estimate_calibrated'] for r in rows],
                [r['index'] for r in rows], f'stand-alone {args.score_key}',
                'supernet estimate (BN-calibrated)', f'Kendall tau {tau:.3f}',
                osp.join(work, 'rank_correlation.png'))
    if args.few_shot:
        tau = state['rank']['estimate_few_shot_calibrated']['kendall_tau']
        scatter_png(truth, [r['estimate_few_shot_calibrated']
                            for r in rows], [r['index'] for r in rows],
                    f'stand-alone {args.score_key}',
                    'few-shot estimate (BN-calibrated)',
                    f'few-shot, Kendall tau {tau:.3f}',
                    osp.join(work, 'rank_correlation_few_shot.png'))
    labels = dict(
        estimate='without BN calibration',
        estimate_calibrated='with BN calibration',
        estimate_few_shot='few-shot, without BN calibration',
        estimate_few_shot_calibrated='few-shot, with BN calibration')
    for field in fields:
        r = state['rank'][field]
        print(f'{labels[field]}, {r["n"]} subnets: Kendall tau '
              f'{r["kendall_tau"]:.3f}, Spearman rho {r["spearman_rho"]:.3f},'
              f' top-{r["top_k"]} overlap {r["top_k_overlap"]:.2f}')
    return state


if __name__ == '__main__':
    main()
