"""MMRazor 1.0's DetNAS-style evolution search on the digits, timed per
candidate: the peer half of benchmarks/search_throughput.py, run by it in
MMRazor's own virtual environment (benchmarks/peers/install_mmrazor.sh).
Not part of the package; imports nothing of mmnas_tricks.

    work_dirs/peers/mmrazor/bin/python benchmarks/peers/mmrazor_search.py \
        SETTING.py

SETTING.py (an mmengine config written by search_throughput.py) holds the
FCOS model dict without its backbone (plain mmdet types), the ShuffleNetV2
space (stem, stage channels and blocks: the same as ours), the COCO
annotation files of the supernet's training images and of the held-out
scoring images, the pipelines, the batch size, the numbers of candidates
and calibration images, the supernet epochs, the seed and the work dir.

Steps: (1) unless ``<work_dir>/supernet.pth`` exists, train the SPOS
supernet (``mmrazor.SPOS`` + ``NasMutator``, one random subnet per
iteration) for the given epochs and save its weights (tensors only, so that
they load with torch's ``weights_only``); (2) run ``mmrazor.
EvolutionSearchLoop`` on them (``norm_training=False``, so that BN
calibration counts; no constraint, as ours), timing each candidate's
``_val_candidate`` (BN calibration on the training loader, evaluation,
pycocotools; without a constraint MMRazor counts no FLOPs, ours counts
them for every candidate's record). Writes ``<work_dir>/candidates.json``:
one row per candidate with its choices, score and seconds, and
``<work_dir>/peer.json`` (versions, supernet parameters, wall times).
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

STAGE_MUTABLE = dict(
    _scope_='mmrazor',
    type='OneShotMutableOP',
    candidates=dict(
        shuffle_3x3=dict(type='ShuffleBlock', kernel_size=3),
        shuffle_5x5=dict(type='ShuffleBlock', kernel_size=5),
        shuffle_7x7=dict(type='ShuffleBlock', kernel_size=7),
        shuffle_xception=dict(type='ShuffleXception')))


def dataloader(s, ann_file, pipeline, shuffle, batch_size=None):
    return dict(
        batch_size=batch_size or s['batch_size'],
        num_workers=1,
        persistent_workers=True,
        drop_last=False,
        sampler=dict(type='DefaultSampler', shuffle=shuffle),
        dataset=dict(
            type='CocoDataset',
            data_root=s['data_root'],
            ann_file=ann_file,
            data_prefix=dict(img=s['img_prefix']),
            metainfo=dict(classes=tuple(s['classes'])),
            test_mode=not shuffle,
            filter_cfg=dict(filter_empty_gt=shuffle, min_size=1)
            if shuffle else None,
            pipeline=pipeline))


def build_cfg(s, stage):
    from mmengine.config import Config
    architecture = dict(s['model'])
    architecture['backbone'] = dict(
        _scope_='mmrazor',
        type='SearchableShuffleNetV2',
        arch_setting=[[c, n, STAGE_MUTABLE]
                      for c, n in zip(s['stage_channels'], s['stage_blocks'])],
        stem_multiplier=s['stem_channels'] // 16,
        widen_factor=1.0,
        out_indices=tuple(s['out_indices']),
        with_last_layer=False,
        norm_cfg=dict(type='BN'))
    work_dir = osp.join(s['work_dir'], stage)
    cfg = dict(
        default_scope='mmdet',
        work_dir=work_dir,
        experiment_name=f'mmrazor_{stage}_{time.time_ns()}',
        model=dict(
            type='mmrazor.SPOS',
            architecture=architecture,
            mutator=dict(type='mmrazor.NasMutator'),
            norm_training=False),
        train_dataloader=dataloader(
            s, s['train_ann'], s['train_pipeline'], shuffle=True),
        env_cfg=dict(
            cudnn_benchmark=False,
            mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
            dist_cfg=dict(backend='gloo')),
        randomness=dict(seed=s['seed']),
        # (the search loop needs one too, as mmengine's runner checks)
        optim_wrapper=dict(
            optimizer=dict(
                type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4),
            clip_grad=dict(max_norm=35, norm_type=2)),
        log_level='WARNING',
        default_hooks=dict(
            timer=dict(type='IterTimerHook'),
            logger=dict(type='LoggerHook', interval=50),
            param_scheduler=dict(type='ParamSchedulerHook'),
            checkpoint=None,
            sampler_seed=dict(type='DistSamplerSeedHook')))
    if stage == 'supernet':
        cfg.update(
            train_cfg=dict(
                type='EpochBasedTrainLoop', max_epochs=s['supernet_epochs']),
            param_scheduler=[
                dict(
                    type='LinearLR',
                    start_factor=0.001,
                    by_epoch=False,
                    begin=0,
                    end=300)
            ])
    else:
        population = s['population']
        cfg.update(
            load_from=osp.join(s['work_dir'], 'supernet.pth'),
            train_cfg=dict(
                type='mmrazor.EvolutionSearchLoop',
                dataloader=dataloader(
                    s, s['heldout_ann'], s['heldout_pipeline'], shuffle=False),
                evaluator=dict(
                    type='CocoMetric',
                    ann_file=osp.join(s['data_root'], s['heldout_ann']),
                    metric='bbox'),
                max_epochs=s['generations'],
                num_candidates=population,
                top_k=max(2, population // 2),
                num_mutation=population // 2,
                num_crossover=population - population // 2,
                mutate_prob=0.1,
                calibrate_sample_num=s['calib_images'],
                constraints_range=None,  # no constraint, as ours
                score_key='coco/bbox_mAP'))
    return Config(cfg)


def train_supernet(s):
    import torch
    from mmengine.runner import Runner
    runner = Runner.from_cfg(build_cfg(s, 'supernet'))
    start = time.perf_counter()
    runner.train()
    seconds = time.perf_counter() - start
    path = osp.join(s['work_dir'], 'supernet.pth')
    torch.save(dict(state_dict=runner.model.state_dict()), path + '.tmp')
    os.replace(path + '.tmp', path)
    return seconds


def dump_json(obj, path: str) -> None:
    """Write ``obj`` to ``path`` through a temporary file (this venv has no
    mmnas_tricks and its atomic writer)."""
    with open(path + '.tmp', 'w') as f:
        json.dump(obj, f, indent=1)
    os.replace(path + '.tmp', path)


def timed(loop, name, spent):
    """Wrap ``loop.<name>`` so that its seconds add to ``spent[-1]``."""
    original = getattr(loop, name)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent[-1] += time.perf_counter() - start

    setattr(loop, name, wrapper)


def search(s):
    from mmengine.runner import Runner
    runner = Runner.from_cfg(build_cfg(s, 'search'))
    loop = runner.train_loop
    rows = []
    spent = [0.0]
    timed(loop, '_val_candidate', spent)
    set_choices = loop.model.mutator.set_choices

    def record(choices):  # the scoring loop sets each candidate first
        if rows:
            rows[-1]['seconds'] = spent[-1]
        spent.append(0.0)
        rows.append(dict(choices={k: str(v) for k, v in choices.items()}))
        return set_choices(choices)

    original_update = loop.update_candidates_scores

    def update_candidates_scores():
        loop.model.mutator.set_choices = record
        try:
            original_update()
        finally:
            loop.model.mutator.set_choices = set_choices
            if rows and 'seconds' not in rows[-1]:
                rows[-1]['seconds'] = spent[-1]
            first = len(rows) - len(loop.candidates.subnets)
            for row, score in zip(rows[first:], loop.candidates.scores):
                row['score'] = score

    loop.update_candidates_scores = update_candidates_scores
    start = time.perf_counter()
    runner.train()
    params = sum(p.numel() for p in runner.model.parameters())
    return rows, time.perf_counter() - start, params


def overhead(s, args):
    """MMRazor's supernet overhead, as ``benchmarks/supernet_overhead.py``
    measures ours: for the baseline subnet (every first candidate) and
    ``args.subnets`` random ones, the SPOS supernet's architecture with the
    subnet set (``NasMutator.set_choices``) against the static model
    MMRazor exports for it (``export_fix_subnet(..., slice_weight=True)``:
    the chosen ops, the same weights), each trained (``train_step``:
    forward, loss, backward, SGD step) on the same ``args.batches``
    training batches, alternately, ``args.repeats`` times. Returns the rows
    and the median ratio."""
    import random
    import statistics

    import torch
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner
    from mmrazor.registry import MODELS
    from mmrazor.structures import export_fix_subnet
    cfg = build_cfg(s, 'supernet')
    with DefaultScope.overwrite_default_scope('mmdet'):
        loader = Runner.build_dataloader(
            dict(
                cfg.train_dataloader, num_workers=0, persistent_workers=False),
            seed=s['seed'])
    batches = []
    for data in loader:
        batches.append(data)
        if len(batches) == args.batches:
            break
    random.seed(s['seed'])
    torch.manual_seed(s['seed'])
    with DefaultScope.overwrite_default_scope('mmrazor'):
        algo = MODELS.build(cfg.model)
    mutator = algo.mutator
    first = {
        group: mutables[0].choices[0]
        for group, mutables in mutator.search_groups.items()
    }
    subnets = [first] + [mutator.sample_choices() for _ in range(args.subnets)]

    def train_pass(model, wrapper):
        model.train()
        start = time.perf_counter()
        for data in batches:
            model.train_step(data, wrapper)
        return (time.perf_counter() - start) / len(batches)

    rows = []
    for index, choices in enumerate(subnets):
        mutator.set_choices(choices)
        static = export_fix_subnet(algo, slice_weight=True)[1].architecture
        supernet = algo.architecture
        with torch.no_grad():
            losses = []
            for model in (supernet, static):
                model.train()
                data = model.data_preprocessor(batches[0], True)
                loss = model.parse_losses(model(**data, mode='loss'))[0]
                losses.append(float(loss))
        models = [supernet, static]
        wrappers = [
            build_optim_wrapper(m, dict(s['optim_wrapper'])) for m in models
        ]
        for model, wrapper in zip(models, wrappers):
            train_pass(model, wrapper)  # warm-up
        times = [[], []]
        for _ in range(args.repeats):
            for i, (model, wrapper) in enumerate(zip(models, wrappers)):
                times[i].append(train_pass(model, wrapper))
        ratios = [a / b for a, b in zip(*times)]
        rows.append(
            dict(
                subnet='baseline (every first choice)'
                if index == 0 else f'random {index}',
                choices={str(k): str(v)
                         for k, v in choices.items()},
                seconds_per_iter_supernet=round(
                    statistics.median(times[0]), 5),
                seconds_per_iter_static=round(statistics.median(times[1]), 5),
                ratio=round(statistics.median(ratios), 4),
                params_supernet=sum(p.numel() for p in supernet.parameters()),
                params_static=sum(p.numel() for p in static.parameters()),
                losses_first_batch=[round(x, 5) for x in losses]))
        print(json.dumps(rows[-1]), flush=True)
        del static, models, wrappers
    return dict(
        rows=rows,
        median_ratio=round(statistics.median(r['ratio'] for r in rows), 4),
        max_ratio=round(max(r['ratio'] for r in rows), 4))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('setting', help='SETTING.py')
    parser.add_argument(
        '--overhead',
        metavar='OUT.json',
        help='measure the supernet overhead (no search) into OUT.json')
    parser.add_argument('--batches', type=int, default=8)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--subnets', type=int, default=3)
    args = parser.parse_args()
    from mmengine.config import Config
    s = Config.fromfile(args.setting)
    os.makedirs(s['work_dir'], exist_ok=True)
    import mmdet
    import mmrazor
    import torch
    torch.set_num_threads(s.get('threads', torch.get_num_threads()))
    if args.overhead:
        result = overhead(s, args)
        result.update(
            mmrazor=mmrazor.__version__,
            mmdet=mmdet.__version__,
            torch=torch.__version__,
            python=sys.version.split()[0])
        dump_json(result, args.overhead)
        return
    supernet_seconds = None
    if not osp.isfile(osp.join(s['work_dir'], 'supernet.pth')):
        supernet_seconds = train_supernet(s)
    rows, wall, params = search(s)
    dump_json(rows, osp.join(s['work_dir'], 'candidates.json'))
    peer = dict(
        mmrazor=mmrazor.__version__,
        mmdet=mmdet.__version__,
        torch=torch.__version__,
        python=sys.version.split()[0],
        supernet_params=params,
        supernet_train_seconds=supernet_seconds,
        search_seconds=wall,
        candidates=len(rows))
    dump_json(peer, osp.join(s['work_dir'], 'peer.json'))
    print(json.dumps(peer))


if __name__ == '__main__':
    main()
