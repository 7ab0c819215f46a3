"""Candidates scored per minute by the evolutionary search.

The setting of the MMRazor reference (its EvolutionSearchLoop scored 50-55
candidates per minute on this machine): an FCOS + ShuffleNetV2 supernet
(``fcos_detnas-shufflenetv2_fpn_gn-head_12e_digits.py``, DetNAS's backbone
space at 16-32-64-128 channels), every candidate BN-calibrated on 64
training images (4 batches of 16) and scored on 100 held-out images in
batches of 16. Each setting runs ``tools/train.py`` (``tools/dist_train.sh``
for 2 processes) with an ``EvolutionSearchLoop`` of ``--candidates``
candidates (two generations: random, then mutation + crossover), no FLOPs
constraint, over a supernet trained ``--supernet-epochs`` epochs first (so
that the candidates detect digits; trained once, reused by later runs).
Settings:

- ``backbone``: the reference setting, 1 process (2 processes too on CPU);
- ``neck_head``: the main job's neck/head space (FCOS R18 at base width 16,
  backbone frozen) without and with frozen-stem feature caching
  (``FeatureCacheHook``: backbone features of the scoring and calibration
  images computed once).

Throughput = candidates / the summed seconds the loop spent on them (FLOPs
count, BN calibration, evaluation; ``candidates.json``), times 60. The wall
time of the whole command (start-up, loading the supernet) is reported
beside it, and so is the one-off work our search does before its first
candidate (``seconds_setup``: the per-choice FLOPs table, ~2 s; MMRazor
counts no FLOPs without a constraint), with the throughput that counts it
(``candidates_per_minute_with_setup``, ``ratio_with_setup``). Our searches
keep the 100 held-out images in memory, preprocessed, and score them in
one forward (``--eval-batch-size``; the issue's "largest batch that
fits"); calibration batches stay at 16 (a BatchNorm's statistics depend
on the batch).

MMRazor side by side (``--mmrazor-venv``, made by
``benchmarks/peers/install_mmrazor.sh``): its ``EvolutionSearchLoop`` on
the same FCOS + ShuffleNetV2 space (784,826 parameters against our
784,906), the same training and held-out images, candidates, batch size
and calibration images (``benchmarks/peers/mmrazor_search.py``), timed per
candidate the same way (its ``_val_candidate``: BN calibration,
evaluation, pycocotools); ``backbone_1proc`` and MMRazor run alternately
``--rounds`` times and the medians make the ratio. ``backbone_1proc_
pycocotools`` is the same search on pycocotools: the same candidates in
the same order, scores within 1e-12 (faster-coco-eval's precision table
can differ from pycocotools' in its last bit).

Example:
    python benchmarks/search_throughput.py                 # CPU, ~9 min
    python benchmarks/search_throughput.py --device cuda   # GPU machine
Writes benchmarks/results/search_throughput[_<device>].json.
"""
import argparse
import json
import math
import os
import os.path as osp
import sys
from typing import Optional

from common import (add_common_args, check_device, heldout_dataloader,
                    load_cfg, machine, median, result_path, run_command,
                    trained_supernet, write_result)

SPACES = dict(
    backbone='configs/supernets/fcos_detnas-shufflenetv2_fpn_gn-head_12e_'
    'digits.py',
    neck_head='configs/supernets/fcos_r18w16_fpn-elastic_gn-head-elastic_'
    '12e_digits.py')
WORK_DIR = 'work_dirs/benchmarks/search_throughput'
MMRAZOR_VENV = 'work_dirs/peers/mmrazor'
# measured before the side-by-side runs existed (kept for the record)
MMRAZOR_2026_11 = dict(
    candidates_per_minute=[50, 55],
    note='MMRazor 1.0 EvolutionSearchLoop, FCOS + ShuffleNetV2 '
    'w0.5 supernet, 100 val images, BN calibration on 64 images, '
    'batch 16, this CPU machine (2026-11)')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--candidates', type=int, default=20)
    parser.add_argument('--val-images', type=int, default=100)
    parser.add_argument('--calib-images', type=int, default=64)
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument(
        '--eval-batch-size',
        type=int,
        default=100,
        help='ours: held-out images per forward (all 100 kept in memory '
        'and scored in one; MMRazor scores its loader\'s batches)')
    parser.add_argument('--supernet-epochs', type=int, default=3)
    parser.add_argument(
        '--settings',
        nargs='+',
        default=None,
        help='default: every setting for the device; given, '
        'only these are measured and their rows in --out '
        'replaced')
    parser.add_argument('--work-dir', default=WORK_DIR)
    parser.add_argument(
        '--mmrazor-venv',
        default=MMRAZOR_VENV,
        help='MMRazor 1.0 in its own venv '
        '(benchmarks/peers/install_mmrazor.sh); absent: no MMRazor rows')
    parser.add_argument(
        '--rounds',
        type=int,
        default=3,
        help='MMRazor setting: ours and MMRazor alternately, this many '
        'times each')
    add_common_args(parser)
    return parser.parse_args(argv)


def settings_for(device) -> list:
    """(space, processes, feature cache, COCO backend) of each setting;
    ``backbone_1proc`` is MMRazor's setting, and ``..._pycocotools`` the
    same search on pycocotools (its scores must be the same)."""
    rows = [('backbone', 1, False, 'faster_coco_eval'),
            ('backbone', 1, False, 'pycocotools'),
            ('neck_head', 1, False, 'faster_coco_eval'),
            ('neck_head', 1, True, 'faster_coco_eval')]
    if device.type == 'cpu':
        rows.insert(2, ('backbone', 2, False, 'faster_coco_eval'))
    return [
        dict(
            space=s,
            procs=p,
            cache=c,
            backend=b,
            name=f'{s}_{p}proc{"_cache" if c else ""}'
            f'{"_pycocotools" if b == "pycocotools" else ""}')
        for s, p, c, b in rows
    ]


def supernet(space: str, args) -> str:
    return trained_supernet(SPACES[space], args.supernet_epochs)


def search_config(setting: dict, ckpt: str, args) -> str:
    """The search config of ``setting`` written to its work dir."""
    work = osp.join(args.work_dir, setting['name'])
    cfg = load_cfg(SPACES[setting['space']], work)
    population = max(2, args.candidates // 2)
    cfg.train_cfg = dict(
        type='mmnas_tricks.EvolutionSearchLoop',
        max_generations=2,
        population_size=population,
        top_k=max(2, population // 2),
        num_mutation=population // 2,
        num_crossover=population - population // 2,
        mutate_prob=0.1,
        calibrate_bn=math.ceil(args.calib_images / args.batch_size),
        supernet_checkpoint=ckpt,
        export_best=False,
        reference=None,  # MMRazor's loop scores no reference subnet
        seed=0,
        val_dataloader=heldout_dataloader(cfg, args.val_images,
                                          args.batch_size),
        eval_batch_size=args.eval_batch_size,
        evaluator=dict(
            cfg.digits_heldout_evaluator, backend=setting['backend']))
    cfg.train_dataloader.batch_size = args.batch_size
    cfg.load_from = None
    cfg.default_hooks = dict(cfg.default_hooks, checkpoint=None)
    cfg.custom_hooks = []
    if setting['space'] == 'neck_head':
        cfg.model.backbone.frozen_stages = 4
        cfg.model.backbone.norm_eval = True
    if setting['cache']:
        cfg.custom_hooks = [
            dict(
                type='mmnas_tricks.FeatureCacheHook',
                module='backbone',
                budget_mb=2048)
        ]
    path = osp.join(work, 'search_config.py')
    os.makedirs(work, exist_ok=True)
    cfg.dump(path)
    return path


def peer_setting(args, cfg=None) -> str:
    """MMRazor's half of the backbone setting, as ``mmrazor_search.py``
    reads it: the same FCOS (plain mmdet types) and ShuffleNetV2 space, the
    same training images, the same held-out images (written as a COCO file
    of their own), batch size, candidates and calibration images. ``cfg``:
    the backbone space's config (default: loaded). Returns the setting's
    path."""
    import inspect

    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner

    from mmnas_tricks.models.backbones import SearchableShuffleNetV2
    from mmnas_tricks.utils.io import dump_json_atomic
    work = osp.abspath(osp.join(args.work_dir, 'mmrazor'))
    os.makedirs(work, exist_ok=True)
    cfg = cfg if cfg is not None else load_cfg(SPACES['backbone'], work)
    backbone = cfg.model.backbone
    defaults = {
        k: v.default
        for k, v in inspect.signature(
            SearchableShuffleNetV2).parameters.items()
    }
    with DefaultScope.overwrite_default_scope('mmdet'):
        heldout = Runner.build_dataloader(
            heldout_dataloader(cfg, args.val_images, args.batch_size),
            seed=0).dataset
    ids = [heldout.get_data_info(i)['img_id'] for i in range(len(heldout))]
    data_root = osp.abspath(cfg.train_dataloader.dataset.data_root)
    train_ann = cfg.train_dataloader.dataset.ann_file
    with open(osp.join(data_root, train_ann)) as f:
        coco = json.load(f)
    keep = set(ids)
    subset = dict(
        coco,
        images=[i for i in coco['images'] if i['id'] in keep],
        annotations=[a for a in coco['annotations'] if a['image_id'] in keep])
    heldout_ann = dump_json_atomic(
        subset, osp.join(work, 'heldout.json'), indent=None)
    model = {k: v for k, v in cfg.model.items() if k != 'backbone'}
    population = max(2, args.candidates // 2)
    setting = dict(
        model=model,
        stem_channels=backbone.get('stem_channels', defaults['stem_channels']),
        stage_channels=list(
            backbone.get('stage_channels', defaults['stage_channels'])),
        stage_blocks=list(
            backbone.get('stage_blocks', defaults['stage_blocks'])),
        out_indices=list(backbone.out_indices),
        data_root=data_root + '/',
        img_prefix=cfg.train_dataloader.dataset.data_prefix['img'],
        classes=list(heldout.metainfo['classes']),
        train_ann=train_ann,
        heldout_ann=heldout_ann,
        train_pipeline=cfg.train_dataloader.dataset.pipeline,
        heldout_pipeline=cfg.digits_heldout_pipeline,
        batch_size=args.batch_size,
        calib_images=args.calib_images,
        population=population,
        generations=2,
        supernet_epochs=args.supernet_epochs,
        # the overhead's SGD steps: our optimizer settings on mmengine's own
        # constructor (ours, which groups parameters, is not in that venv)
        optim_wrapper={
            k: v
            for k, v in cfg.optim_wrapper.items() if k != 'constructor'
        },
        seed=0,
        work_dir=work)
    from mmengine.config import Config
    path = osp.join(work, 'setting.py')  # a config keeps tuples as tuples
    Config(setting).dump(path)
    return path


def measure_mmrazor(path: str, args) -> dict:
    """One run of MMRazor's search (its supernet trained on the first)."""
    python = osp.join(args.mmrazor_venv, 'bin', 'python')
    wall = run_command([python, 'benchmarks/peers/mmrazor_search.py', path])
    work = osp.dirname(path)
    with open(osp.join(work, 'candidates.json')) as f:
        rows = json.load(f)
    with open(osp.join(work, 'peer.json')) as f:
        peer = json.load(f)
    return dict(
        name='mmrazor_backbone_1proc',
        **throughput('MMRazor', rows, wall),
        supernet_params=peer['supernet_params'],
        versions={k: peer[k]
                  for k in ('mmrazor', 'mmdet', 'torch', 'python')})


def throughput(name: str,
               rows: list,
               wall: float,
               setup: Optional[float] = None) -> dict:
    """Candidates per minute from a search's per-candidate ``seconds``
    (the time its loop spent on each), printed; ``wall`` the command's;
    ``setup``: the seconds of the search's one-off work before its first
    candidate (our FLOPs table), reported beside, and the throughput with
    it counted."""
    seconds = [r['seconds'] for r in rows]
    total = sum(seconds)
    out = dict(
        candidates=len(rows),
        candidates_per_minute=round(60 * len(rows) / total, 2),
        seconds_per_candidate_median=round(median(seconds), 4),
        seconds_scoring=round(total, 2),
        seconds_command=round(wall, 2))
    if setup is not None:
        out.update(
            seconds_setup=round(setup, 2),
            candidates_per_minute_with_setup=round(
                60 * len(rows) / (total + setup), 2))
    print(
        f'{name}: {out["candidates_per_minute"]} candidates/min '
        f'({len(rows)} in {total:.1f} s; command {wall:.1f} s)',
        flush=True)
    return out


def same_search(a: dict, b: dict) -> dict:
    """Whether two settings' searches scored the same candidates with the
    same scores (their ranked ``candidates.json``)."""

    def ranked(setting):
        path = osp.join(
            osp.dirname(setting['config']), 'search', 'candidates.json')
        with open(path) as f:
            return [(r['subnet'], r['generation'], r['score'])
                    for r in json.load(f)]

    ra, rb = ranked(a), ranked(b)
    gaps = [abs(x[2] - y[2]) for x, y in zip(ra, rb)]
    return dict(
        settings=[a['name'], b['name']],
        candidates=len(ra),
        same_candidates_same_order=[x[:2] for x in ra] == [y[:2] for y in rb],
        scores_bit_identical=sum(x[2] == y[2] for x, y in zip(ra, rb)),
        largest_score_difference=max(gaps) if gaps else None)


def measure(setting: dict, ckpt: str, args) -> dict:
    work = osp.join(args.work_dir, setting['name'])
    path = search_config(setting, ckpt, args)
    results = osp.join(work, 'search', 'candidates.json')
    if osp.exists(results):
        os.remove(results)
    if setting['procs'] == 1:
        cmd = [sys.executable, 'tools/train.py', path, '--work-dir', work]
        env = None
    else:
        cmd = [
            'bash', 'tools/dist_train.sh', path,
            str(setting['procs']), '--work-dir', work
        ]
        env = dict(os.environ, PORT='29561')
    wall = run_command(cmd, env)
    with open(results) as f:
        rows = json.load(f)
    with open(osp.join(work, 'search', 'complete.json')) as f:
        setup = sum(json.load(f).get('setup_seconds', {}).values())
    return dict(
        setting, **throughput(setting['name'], rows, wall, setup), config=path)


def main():
    args = parse_args()
    device = check_device(args.device)
    settings = settings_for(device)
    if args.settings:
        valid = [s['name'] for s in settings]
        bad = [s for s in args.settings if s not in valid]
        if bad:
            raise SystemExit(f'--settings {bad} not among {valid}')
        settings = [s for s in settings if s['name'] in args.settings]
    out = result_path('search_throughput', device, args.out)
    by_name = {}
    previous = {}
    if args.settings and osp.isfile(out):  # update those rows, keep others
        with open(out) as f:
            previous = json.load(f)
        by_name = {r['name']: r for r in previous['settings']}
    peer = osp.isfile(osp.join(args.mmrazor_venv, 'bin', 'python'))
    if not peer:
        print(
            f'no MMRazor venv at {args.mmrazor_venv} '
            '(bash benchmarks/peers/install_mmrazor.sh): MMRazor not '
            'measured',
            flush=True)
    side_by_side = None
    for setting in settings:
        ckpt = supernet(setting['space'], args)
        if setting['name'] != 'backbone_1proc' or not peer:
            by_name[setting['name']] = measure(setting, ckpt, args)
            continue
        path = peer_setting(args)
        ours, theirs = [], []
        for _ in range(args.rounds):  # alternately, in one run
            ours.append(measure(setting, ckpt, args))
            theirs.append(measure_mmrazor(path, args))
        ours_rounds = [r['candidates_per_minute'] for r in ours]
        with_setup = [r['candidates_per_minute_with_setup'] for r in ours]
        mmrazor_rounds = [r['candidates_per_minute'] for r in theirs]
        by_name[setting['name']] = dict(
            ours[-1],
            candidates_per_minute=median(ours_rounds),
            rounds=ours_rounds)
        side_by_side = dict(
            ours_candidates_per_min=median(ours_rounds),
            mmrazor_candidates_per_min=median(mmrazor_rounds),
            ours_rounds=ours_rounds,
            mmrazor_rounds=mmrazor_rounds,
            mmrazor=theirs[-1],
            ratio=round(median(ours_rounds) / median(mmrazor_rounds), 3),
            # our FLOPs table's build counted as candidates' time (MMRazor
            # counts no FLOPs without a constraint)
            ours_rounds_with_setup=with_setup,
            ratio_with_setup=round(
                median(with_setup) / median(mmrazor_rounds), 3))
    rows = [
        by_name[s['name']] for s in settings_for(device)
        if s['name'] in by_name
    ]
    if side_by_side is None and previous.get('side_by_side'):
        side_by_side = previous['side_by_side']  # not measured again
    ratios = {}
    if side_by_side is not None:
        ratios['backbone_vs_mmrazor'] = side_by_side['ratio']
    twins = {'backbone_1proc', 'backbone_1proc_pycocotools'} <= set(by_name)
    if twins:
        ratios['faster_coco_eval_vs_pycocotools'] = round(
            by_name['backbone_1proc']['candidates_per_minute'] /
            by_name['backbone_1proc_pycocotools']['candidates_per_minute'], 3)
    if {'backbone_1proc', 'backbone_2proc'} <= set(by_name):
        ratios['two_vs_one_process'] = round(
            by_name['backbone_2proc']['candidates_per_minute'] /
            by_name['backbone_1proc']['candidates_per_minute'], 3)
    if {'neck_head_1proc', 'neck_head_1proc_cache'} <= set(by_name):
        ratios['cache_vs_none'] = round(
            by_name['neck_head_1proc_cache']['candidates_per_minute'] /
            by_name['neck_head_1proc']['candidates_per_minute'], 3)
    write_result(
        dict(
            machine(device),
            benchmark='search_throughput',
            target=">= 2x MMRazor's candidates per minute, measured "
            'alternately in the same run',
            mmrazor_reference_2026_11=MMRAZOR_2026_11,
            val_images=args.val_images,
            calib_images=args.calib_images,
            batch_size=args.batch_size,
            supernet_epochs=args.supernet_epochs,
            settings=rows,
            ratios=ratios,
            ours_candidates_per_min=(side_by_side
                                     or {}).get('ours_candidates_per_min'),
            mmrazor_candidates_per_min=(side_by_side or
                                        {}).get('mmrazor_candidates_per_min'),
            ratio=(side_by_side or {}).get('ratio'),
            side_by_side=side_by_side,
            scores_vs_pycocotools=same_search(
                by_name['backbone_1proc'],
                by_name['backbone_1proc_pycocotools']) if twins else None,
            command=' '.join(['python'] + sys.argv)), out)


if __name__ == '__main__':
    main()
