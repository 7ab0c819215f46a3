"""How supernet training and search time grow with the number of candidates
per layer and with the image size.

Candidates per layer: FCOS R18 (base width 16) whose 8 GN head tower layers
each choose among the first k of conv 3x3, separable 3x3, separable 3x3
dilated 3, conv 1x1, skip (NAS-FCOS's head ops without the deformable conv),
k = 2, 3, 5, at 128 px. Image size: the main job's neck/head space
(weight-sharing (kernel, dilation) choices) at 96, 128 and 192 px.

Per point: seconds per supernet training iteration (batch 16) with a new
random single path every step (SPOS) and, for the op choices, with every
candidate weighted (DARTS' continuous relaxation); seconds per search
candidate (BN calibration on 4 batches of 16, then scoring 100 held-out
images: the search's ``score_subnet``), medians over ``--repeats``. The
weights are those of the supernet trained ``--supernet-epochs`` epochs at
128 px with all 5 candidates (the smaller supernets take their
candidates' weights), so that candidates detect digits as in a search.

Example:
    python benchmarks/scaling.py                   # CPU, ~6 min
    python benchmarks/scaling.py --device cuda
Writes benchmarks/results/scaling[_<device>].json.
"""
import argparse
import os
import os.path as osp
import random
import sys

import torch
from common import (add_common_args, check_device, heldout_dataloader,
                    load_cfg, machine, median, result_path, timed,
                    trained_supernet, write_result)
from mmengine.config import Config

ELASTIC = ('configs/supernets/'
           'fcos_r18w16_fpn-elastic_gn-head-elastic_12e_digits.py')
OPS_BASE = ('configs/supernets/'
            'fcos_r18w16_fpn-search_gn-head-search_12e_digits.py')
HEAD_OPS = 'configs/_base_/supernet/nasfcos_head_ops.py'
OP_ORDER = ('conv3x3', 'sep_conv_3x3', 'sep_conv_3x3_dil3', 'conv1x1',
            'skip_connect')
WORK_DIR = 'work_dirs/benchmarks/scaling'


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--candidates', type=int, nargs='+', default=[2, 3, 5])
    parser.add_argument('--sizes', type=int, nargs='+', default=[96, 128, 192])
    parser.add_argument('--iters', type=int, default=6)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--search-candidates', type=int, default=3)
    parser.add_argument('--val-images', type=int, default=100)
    parser.add_argument('--supernet-epochs', type=int, default=3)
    parser.add_argument('--work-dir', default=WORK_DIR)
    add_common_args(parser)
    return parser.parse_args()


def ops_config(k: int, work_dir: str):
    """The op-choice supernet with the first ``k`` head ops."""
    if not 1 <= k <= len(OP_ORDER):
        raise ValueError(f'--candidates {k} not in [1, {len(OP_ORDER)}]')
    ops = Config.fromfile(HEAD_OPS).nasfcos_head_ops
    cfg = load_cfg(OPS_BASE, work_dir)
    baseline = load_cfg(
        'configs/baselines/fcos_r18w16_fpn_gn-head_12e_'
        'digits.py', work_dir)
    cfg.model.neck = baseline.model.neck
    cfg.model.bbox_head.tower_ops = {n: ops[n] for n in OP_ORDER[:k]}
    cfg.model.bbox_head.tower_depths = None
    return cfg


def sized_config(size: int, work_dir: str):
    cfg = load_cfg(ELASTIC, work_dir)
    for pipeline in (cfg.train_dataloader.dataset.pipeline,
                     cfg.digits_heldout_dataloader.dataset.pipeline):
        for t in pipeline:
            if t['type'] == 'Resize':
                t['scale'] = (size, size)
    return cfg


def measure(cfg, ckpt: str, args, device, darts: bool) -> dict:
    from mmengine.runner import Runner

    from mmnas_tricks.engine.scoring import score_subnet
    from mmnas_tricks.models.mutables import sample_subnet, set_mode
    cfg.val_dataloader = heldout_dataloader(cfg, args.val_images)
    cfg.val_evaluator = cfg.digits_heldout_evaluator
    cfg.val_cfg = dict(type='ValLoop')
    cfg.custom_hooks = []
    cfg.load_from = None
    runner = Runner.from_cfg(cfg)
    model = runner.model.to(device)
    state = torch.load(ckpt, map_location='cpu')['state_dict']
    own = model.state_dict()
    # a supernet with fewer candidates takes theirs (its architecture
    # parameters, one per candidate, keep their initial values)
    state = {
        k: v
        for k, v in state.items() if k in own and own[k].shape == v.shape
    }
    missing, _ = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith('arch_alpha')]
    if missing:
        raise RuntimeError(f'{ckpt} lacks {missing[:3]}')
    loader = runner.train_dataloader
    batches = []
    for data in loader:
        batches.append(data)
        if len(batches) == max(args.iters, 4):
            break
    val = runner.val_loop
    rng = random.Random(0)
    search = []
    for _ in range(args.search_candidates):
        subnet = sample_subnet(model, rng)
        search.append(
            timed(
                lambda:
                score_subnet(model, subnet, val.dataloader, val.evaluator,
                             batches[:4], 4, 'coco/bbox_mAP'), device))
    wrapper = runner.build_optim_wrapper(cfg.optim_wrapper)

    def spos():
        for data in batches[:args.iters]:
            sample_subnet(model, rng)
            model.train_step(data, wrapper)

    def all_paths():
        set_mode(model, 'differentiable')
        try:
            for data in batches[:args.iters]:
                model.train_step(data, wrapper)
        finally:
            set_mode(model, 'sampled')

    model.train()
    spos()  # warm-up
    out = dict(
        params=sum(p.numel() for p in model.parameters()),
        seconds_per_iter_spos=median(
            [timed(spos, device) / args.iters for _ in range(args.repeats)]),
        seconds_per_candidate=median(search))
    if darts:
        all_paths()  # warm-up
        out['seconds_per_iter_darts'] = median([
            timed(all_paths, device) / args.iters for _ in range(args.repeats)
        ])
    return {
        k: round(v, 5) if isinstance(v, float) else v
        for k, v in out.items()
    }


def main():
    args = parse_args()
    device = check_device(args.device)
    out = result_path('scaling', device, args.out)
    epochs = args.supernet_epochs
    # the largest op supernet, trained, gives every smaller one its weights
    kmax = max(args.candidates)
    full = ops_config(kmax, osp.join(args.work_dir, f'ops{kmax}'))
    full_path = osp.join(args.work_dir, f'fcos_r18w16_fpn_gn-head-ops{kmax}'
                         '_digits.py')
    os.makedirs(args.work_dir, exist_ok=True)
    full.dump(full_path)
    ops_ckpt = trained_supernet(full_path, epochs)
    elastic_ckpt = trained_supernet(ELASTIC, epochs)
    candidates = []
    for k in args.candidates:
        row = dict(
            candidates_per_layer=k,
            image_size=128,
            ops=list(OP_ORDER[:k]),
            **measure(
                ops_config(k, osp.join(args.work_dir, f'ops{k}')),
                ops_ckpt,
                args,
                device,
                darts=True))
        print(row, flush=True)
        candidates.append(row)
    sizes = []
    for size in args.sizes:
        row = dict(
            image_size=size,
            **measure(
                sized_config(size, osp.join(args.work_dir, f'size{size}')),
                elastic_ckpt,
                args,
                device,
                darts=False))
        print(row, flush=True)
        sizes.append(row)
    for rows in (candidates, sizes):
        for row in rows:
            for key in ('seconds_per_iter_spos', 'seconds_per_iter_darts',
                        'seconds_per_candidate'):
                if key in row:
                    row[key + '_rel'] = round(row[key] / rows[0][key], 3)
    write_result(
        dict(
            machine(device),
            benchmark='scaling',
            batch_size=16,
            iters=args.iters,
            repeats=args.repeats,
            search_candidates=args.search_candidates,
            val_images=args.val_images,
            calib_batches=4,
            supernet_epochs=epochs,
            candidates_per_layer=candidates,
            image_size=sizes,
            command=' '.join(['python'] + sys.argv)), out)


if __name__ == '__main__':
    main()
