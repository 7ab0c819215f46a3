"""How well a trained supernet ranks subnets: its estimate of each subnet
(without and with BN calibration) against the subnet trained alone
(Kendall tau, Spearman rho, top-k overlap; docs/tricks.md, T5.3).

With ``--few-shot MANIFEST`` (tools/few_shot.py) each subnet is also scored
by the sub-supernet that matches it (docs/tricks.md, T5.1), without and with BN
calibration.

With ``--finetune-epochs N`` each subnet is also estimated by a short
fine-tuning from its supernet weights (BN calibrated; N epochs on the
search's training subset at the supernet's lr or ``--finetune-lr``, scored on
the held-out split): ``estimate_finetuned``, Once-for-All's deployment as an
estimator, what a re-ranking of the search's top subnets would cost per
subnet.

CONFIG is the supernet config (or a tools/nas.py pipeline config: then its
search stage's held-out split, evaluator and score key are used, and its
``retrain`` recipe trains the subnets alone) and CHECKPOINT the trained
supernet. The subnets are the baseline (first choices) and random distinct ones
(``--num-subnets``, ``--seed``), or the fixed list of a rank-set file
(``--rank-set``: named subnets and random ones within FLOPs windows,
``mmnas_tricks.engine.rank.read_rank_set``), so that every supernet recipe is
measured against the same subnets; ``--truth`` takes the stand-alone scores of
subnets an earlier study trained (another supernet, the same subnets and
stand-alone config) instead of training them again. Besides the estimates,
FLOPs alone are ranked against the stand-alone scores (a strong baseline every
estimator must beat), over all subnets and, with ``--window LO HI``, over those
within LO-HI x the first subnet's FLOPs. Each estimate and each stand-alone
score is recorded in ``<work_dir>/rank_correlation.json`` as soon as it exists;
a rerun computes only what is missing (an interrupted stand-alone training
starts again; a stand-alone score whose config changed since, e.g. a changed
``retrain`` recipe, is trained again). Results:
``rank_correlation.{json,csv,png}``.

Example:
    WORK_DIR=work_dirs/spos_fcos_r18w16_fpn-elastic_gn-head-elastic_digits
    python tools/rank_correlation.py \
        configs/nas/spos_fcos_r18w16_fpn-elastic_gn-head-elastic_digits.py \
        $WORK_DIR/supernet/epoch_12.pth \
        --num-subnets 10
"""
import argparse
import os
import os.path as osp


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', help='the trained supernet')
    parser.add_argument('--num-subnets', type=int, default=10)
    parser.add_argument(
        '--seed',
        type=int,
        default=0,
        help='seed of the subnet draw, the BN calibration batches and '
        'every stand-alone training (default 0)')
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
        '--rank-set',
        metavar='FILE',
        default=None,
        help='the subnets to compare (YAML rank set) instead of '
        '--num-subnets random ones')
    parser.add_argument(
        '--truth',
        metavar='JSON',
        default=None,
        help="an earlier study's rank_correlation.json: its stand-alone "
        'scores of the same subnets (same recipe) are reused')
    parser.add_argument(
        '--finetune-epochs',
        type=int,
        default=0,
        help='also estimate each subnet by fine-tuning it from its '
        'supernet weights (BN calibrated) for this many epochs on the '
        "search's data, scored on its held-out split (estimate_finetuned; "
        'default 0: not)')
    parser.add_argument(
        '--finetune-lr',
        type=float,
        default=None,
        help="lr of those fine-tunings (default: the supernet's)")
    parser.add_argument(
        '--window',
        nargs=2,
        type=float,
        metavar=('LO', 'HI'),
        default=None,
        help="also rank the subnets within LO-HI x the first subnet's "
        'FLOPs (e.g. 0.85 1.0)')
    parser.add_argument(
        '--work-dir',
        help='default: work_dirs/'
        'rank_correlation/<config name>')
    args = parser.parse_args(argv)
    if args.window and not 0 <= args.window[0] < args.window[1]:
        parser.error(f'--window {args.window}: need 0 <= LO < HI')
    if args.truth and not osp.isfile(args.truth):
        parser.error(f'--truth {args.truth!r} does not exist')
    if args.rank_set and not osp.isfile(args.rank_set):
        parser.error(f'--rank-set {args.rank_set!r} does not exist')
    if args.finetune_epochs < 0:
        parser.error(f'--finetune-epochs {args.finetune_epochs}: need >= 0')
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
    from mmnas_tricks.engine.pipeline import search_data
    from mmnas_tricks.engine.rank import SupernetScorer
    scorer = SupernetScorer(cfg, args.checkpoint, osp.join(work, 'estimate'),
                            args.score_key, args.calibrate_bn, args.seed,
                            **search_data(cfg))
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


def finetune_estimates(cfg, args, subnets, study) -> None:
    """With ``--finetune-epochs N``: ``estimate_finetuned`` of every subnet,
    the held-out score after fine-tuning it N epochs from its BN-calibrated
    supernet weights (:meth:`RankStudy.train`: resumable, kept while its
    config is unchanged)."""
    if not args.finetune_epochs:
        return
    from mmnas_tricks.engine.pipeline import retrain_recipe, search_data
    from mmnas_tricks.engine.rank import (SupernetScorer,
                                          finetune_estimate_config)
    from mmnas_tricks.models.export import save_static_checkpoint
    lr = args.finetune_lr or float(cfg.optim_wrapper.optimizer.lr)
    scorer = None
    for key, subnet in subnets:
        rec = study.records[key]
        folder = osp.join('finetune', f'subnet{rec["index"]}')
        weights = osp.join(study.work_dir, folder, 'supernet_weights.pth')
        ft = finetune_estimate_config(
            cfg,
            subnet,
            weights,
            args.finetune_epochs,
            lr,
            args.seed,
            retrain=retrain_recipe(cfg),
            **search_data(cfg))
        if study.trained(rec, ft, 'estimate_finetuned'):
            continue
        if not osp.isfile(weights):
            if scorer is None:
                scorer = SupernetScorer(cfg, args.checkpoint,
                                        osp.join(study.work_dir,
                                                 'estimate'), args.score_key,
                                        args.calibrate_bn, args.seed,
                                        **search_data(cfg))
            scorer.model.load_state_dict(scorer.state)
            from mmnas_tricks.engine.bn_calibration import calibrate_bn
            from mmnas_tricks.models.mutables import set_subnet
            set_subnet(scorer.model, subnet)
            if args.calibrate_bn:
                calibrate_bn(scorer.model, scorer.calib, args.calibrate_bn)
            os.makedirs(osp.dirname(weights), exist_ok=True)
            save_static_checkpoint(scorer.model, weights, subnet)
        study.train(rec, ft, args.score_key, folder,
                    f'rank_finetune{rec["index"]}', 'estimate_finetuned',
                    f'subnet {rec["index"]}: fine-tuned estimate')


def main(argv=None):
    args = parse_args(argv)
    from mmnas_tricks.engine.pipeline import retrain_recipe
    from mmnas_tricks.engine.rank import (config_fingerprint, distinct_subnets,
                                          rank_set_subnets, standalone_config)
    from mmnas_tricks.engine.study import RankStudy, rows_by_index
    from mmnas_tricks.models.resources import (input_size, subnet_resources,
                                               traced_input_shape)
    from mmnas_tricks.structures import subnet_key
    from mmnas_tricks.utils import build_model, load_config
    cfg = load_config(args.config)
    nas = cfg.get('nas') or {}
    args.score_key = args.score_key or nas.get('score_key', 'coco/bbox_mAP')
    name = osp.splitext(osp.basename(args.config))[0]
    study = RankStudy(
        args.work_dir or osp.join('work_dirs', 'rank_correlation', name),
        'rank_correlation')
    state, records = study.state, study.records
    few_shot = None
    if args.few_shot:
        from mmnas_tricks.engine.few_shot import load_manifest
        few_shot = dict(
            manifest=args.few_shot,
            mutable=load_manifest(args.few_shot)['mutable'])
    if state.get('few_shot') and state['few_shot'] != few_shot:
        for rec in records.values():  # another split's estimates
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
    state['rank_set'] = args.rank_set
    model = build_model(cfg)
    size = input_size(cfg)
    shape = size.shape
    state.update(input_size=size.hw, input_source=size.source)
    print(f'FLOPs ratios at {size}', flush=True)
    if args.rank_set:
        chosen = rank_set_subnets(model, args.rank_set, shape)
    else:
        subnets = distinct_subnets(model, args.num_subnets, args.seed)
        base = subnet_resources(model, subnets[0], shape)['flops']
        chosen = [(f'subnet{i}', s,
                   subnet_resources(model, s, shape)['flops'] / base)
                  for i, s in enumerate(subnets)]
    keyed = [(subnet_key(s), s) for _, s, _ in chosen]
    if state.get('checkpoint_estimated') not in (None, args.checkpoint):
        for rec in records.values():  # another supernet's
            for field in ('estimate', 'estimate_calibrated'):
                rec.pop(field, None)
    state['checkpoint_estimated'] = args.checkpoint
    for i, ((key, subnet), (label, _, ratio)) in enumerate(zip(keyed, chosen)):
        rec = records.setdefault(key, dict(subnet=subnet))
        rec.update(
            index=i,
            name=label,
            flops_ratio=round(ratio, 4),
            input_size=list(traced_input_shape(model, shape, subnet)[1:]))
    statics = {
        key: standalone_config(
            cfg, subnet, args.seed, retrain_recipe(cfg),
            **({} if args.standalone_epochs is None else dict(
                max_epochs=args.standalone_epochs)))
        for key, subnet in keyed
    }
    if args.truth:
        recipes = {key: config_fingerprint(c) for key, c in statics.items()}
        reused = reuse_truth(args, records, recipes)
        print(f'{reused} stand-alone scores taken from {args.truth}')

    for _ in estimates(cfg, args, keyed, study.work_dir, records):
        study.save()
    print('supernet estimates done', flush=True)
    finetune_estimates(cfg, args, keyed, study)

    # cheapest first: more results sooner from a study stopped early
    for key, _ in sorted(keyed, key=lambda k: records[k[0]]['flops_ratio']):
        i = records[key]['index']
        study.train(
            records[key],
            statics[key],
            args.score_key,
            osp.join('standalone', f'subnet{i}'),
            f'rank_standalone{i}',
            label=f'subnet {i}: stand-alone')

    rows = rows_by_index(records, [k for k, _ in keyed])
    fields = [f for f, _ in estimate_fields(args)]
    if args.finetune_epochs:
        fields.append('estimate_finetuned')
    state['rank'] = study.rank(rows, fields + ['flops_ratio'])
    state['rank']['flops'] = state['rank'].pop('flops_ratio')
    state.pop('rank_window', None)  # an earlier run's window, if any
    if args.window:
        lo, hi = args.window
        inside = [r for r in rows if lo <= r['flops_ratio'] <= hi]
        window = study.rank(inside, fields + ['flops_ratio']) \
            if len(inside) >= 2 else {}
        if window:
            window['flops'] = window.pop('flops_ratio')
        state['rank_window'] = dict(window=[lo, hi], n=len(inside), **window)
    study.write_table(rows, ['index', 'name', 'flops_ratio'] + fields +
                      ['standalone', 'standalone_seconds'])
    tau = state['rank']['estimate_calibrated']['kendall_tau']
    study.scatter(rows, 'standalone', 'estimate_calibrated',
                  f'stand-alone {args.score_key}',
                  'supernet estimate (BN-calibrated)',
                  f'Kendall tau {tau:.3f}')
    if args.few_shot:
        tau = state['rank']['estimate_few_shot_calibrated']['kendall_tau']
        study.scatter(
            rows,
            'standalone',
            'estimate_few_shot_calibrated',
            f'stand-alone {args.score_key}',
            'few-shot estimate (BN-calibrated)',
            f'few-shot, Kendall tau {tau:.3f}',
            suffix='_few_shot')
    labels = dict(
        estimate='without BN calibration',
        estimate_calibrated='with BN calibration',
        estimate_few_shot='few-shot, without BN calibration',
        estimate_few_shot_calibrated='few-shot, with BN calibration',
        estimate_finetuned=f'fine-tuned {args.finetune_epochs} epoch(s) '
        'from the supernet')
    labels['flops'] = 'FLOPs alone'
    blocks = [('', state['rank'])]
    if state.get('rank_window', {}).get('flops'):
        lo, hi = args.window
        blocks.append(
            (f'within {lo:g}x-{hi:g}x FLOPs: ', state['rank_window']))
    for prefix, ranks in blocks:
        for field in fields + ['flops']:
            print(study.summary(prefix + labels[field], ranks[field]))
    return state


def reuse_truth(args, records: dict, recipes: dict) -> int:
    """Copy into ``records`` the stand-alone scores that the study at
    ``args.truth`` has for the same subnets (the keys of ``recipes``),
    score key and stand-alone config (``recipes``: key -> fingerprint of
    the config that trains it); returns how many."""
    import json
    with open(args.truth) as f:
        other = json.load(f)
    if other.get('score_key') != args.score_key:
        raise SystemExit(
            f'--truth {args.truth}: its score_key {other.get("score_key")!r} '
            f'is not this study\'s {args.score_key!r}')
    n = 0
    for key, recipe in recipes.items():
        theirs = other.get('records', {}).get(key, {})
        if ('standalone' in theirs and 'standalone' not in records[key]
                and theirs.get('standalone_recipe') == recipe):
            for field in ('standalone', 'standalone_seconds',
                          'standalone_recipe'):
                records[key][field] = theirs.get(field)
            records[key]['standalone_from'] = args.truth
            n += 1
    return n


if __name__ == '__main__':
    main()
