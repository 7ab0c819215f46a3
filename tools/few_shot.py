"""Few-shot NAS (Zhao et al., ICML 2021; docs/tricks.md, T5.1): split a trained
one-shot supernet on the choices of one mutable into sub-supernets, each
with that mutable pinned, its weights inherited from the one-shot supernet,
and trained further.

CONFIG is the supernet config (or a tools/nas.py pipeline config: its
supernet stage) and CHECKPOINT the trained one-shot supernet. Sub-supernet
``i`` trains in ``<work_dir>/sub<i>``; the split is recorded in
``<work_dir>/few_shot.json`` as each one finishes, and a rerun trains only
what is missing (an interrupted one resumes from its last checkpoint).
Use the manifest with ``EvolutionSearchLoop(few_shot=...)`` or
``tools/rank_correlation.py --few-shot``.

Example:
    WORK_DIR=work_dirs/spos_fcos_r18w16_fpn-elastic_gn-head-elastic_digits
    python tools/few_shot.py \
        configs/nas/spos_fcos_r18w16_fpn-elastic_gn-head-elastic_digits.py \
        $WORK_DIR/supernet/epoch_12.pth \
        --split bbox_head.cls_convs.0 --epochs 3
"""
import argparse
import os.path as osp
import time


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', help='the trained one-shot supernet')
    parser.add_argument(
        '--split',
        default=None,
        help='the mutable to split on (default: the first searchable '
        'mutable with the most choices)')
    parser.add_argument(
        '--epochs',
        type=int,
        default=None,
        help='epochs each sub-supernet trains (default: the config\'s)')
    parser.add_argument(
        '--work-dir',
        help='default: work_dirs/few_shot/'
        '<config name>/<split>')
    args = parser.parse_args(argv)
    if not osp.isfile(args.checkpoint):
        parser.error(f'checkpoint {args.checkpoint!r} does not exist')
    if args.epochs is not None and args.epochs < 1:
        parser.error(f'--epochs {args.epochs}: need >= 1')
    return args


def default_split(model) -> str:
    from mmnas_tricks.models.mutables import named_mutables
    mutables = named_mutables(model, searchable_only=True)
    if not mutables:
        raise ValueError('the model has no searchable mutable to split on')
    most = max(m.num_choices for m in mutables.values())
    return next(n for n, m in mutables.items() if m.num_choices == most)


def main(argv=None):
    args = parse_args(argv)
    from mmnas_tricks.engine.few_shot import (choice_key, split_choices,
                                              sub_supernet_config)
    from mmnas_tricks.engine.rank import train_resumable
    from mmnas_tricks.engine.study import RankStudy
    from mmnas_tricks.utils import build_model, load_config
    cfg = load_config(args.config)
    cfg.pop('nas', None)
    model = build_model(cfg)
    split = args.split or default_split(model)
    choices = split_choices(model, split)
    del model
    name = osp.splitext(osp.basename(args.config))[0]
    study = RankStudy(
        args.work_dir or osp.join('work_dirs', 'few_shot', name, split),
        'few_shot')
    work, path, state = study.work_dir, study.path, study.state
    state.pop('records', None)
    if state.get('mutable', split) != split:
        raise SystemExit(f'{path} is a split on {state["mutable"]!r}, not '
                         f'{split!r}; use another --work-dir')
    state.update(
        config=args.config,
        source=args.checkpoint,
        mutable=split,
        epochs=args.epochs)
    subs = state.setdefault('sub_supernets', {})
    print(
        f'few-shot split on {split}: {len(choices)} sub-supernets', flush=True)
    for i, choice in enumerate(choices):
        key = choice_key(choice)
        rec = subs.setdefault(key, dict(index=i, choice=choice))
        if rec.get('checkpoint') and osp.isfile(rec['checkpoint']):
            print(f'sub-supernet {i} ({split}={key}): done', flush=True)
            continue
        sub_cfg = sub_supernet_config(
            cfg, args.checkpoint, split, choice, max_epochs=args.epochs)
        start = time.time()
        rec['checkpoint'], rec['metrics'] = train_resumable(
            sub_cfg, osp.join(work, f'sub{i}'), f'few_shot_sub{i}')
        rec['seconds'] = round(time.time() - start, 1)
        study.save()
        print(
            f'sub-supernet {i} ({split}={key}): {rec["checkpoint"]} in '
            f'{rec["seconds"]} s',
            flush=True)
    study.save()
    print(f'manifest: {path}')
    return state


if __name__ == '__main__':
    main()
