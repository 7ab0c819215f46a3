"""How much frozen-stem feature caching speeds up a neck/head search
iteration, next to the Amdahl limit (docs/tricks.md, T4.2).

The FCOS supernet of CONFIG (default: the elastic neck/head space) with its
backbone frozen (``frozen_stages=4, norm_eval=True``) trains on the same
digits batches, a new random subnet per step, alternately without and with
FeatureCacheHook (filled beforehand, so every lookup hits), REPEATS times
side by side. The backbone's share ``s`` of an uncached step is measured in
the same run (its forward alone, no gradient); the Amdahl limit of the
speed-up is ``1 / (1 - s)``. Medians of the per-pass mean step times.

Example:
    python benchmarks/feature_cache_speedup.py --batches 8 --repeats 5
    python benchmarks/feature_cache_speedup.py --device cuda   # GPU machine
Writes benchmarks/results/feature_cache_speedup[_<device>].json.
"""
import argparse
import os.path as osp
import random
import sys
import time
from types import SimpleNamespace

import torch
from common import (add_common_args, check_device, machine, median,
                    result_path, timed, write_result)

ELASTIC = ('configs/supernets/'
           'fcos_r18w16_fpn-elastic_gn-head-elastic_12e_digits.py')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', nargs='?', default=ELASTIC)
    add_common_args(parser, timing=True)
    return parser.parse_args()


def main():
    args = parse_args()
    device = check_device(args.device)
    out = result_path('feature_cache_speedup', device, args.out)
    from mmengine.runner import Runner

    from mmnas_tricks.engine.hooks import FeatureCacheHook
    from mmnas_tricks.models.mutables import sample_subnet
    from mmnas_tricks.utils import load_config
    cfg = load_config(args.config)
    cfg.model.backbone.frozen_stages = 4
    cfg.model.backbone.norm_eval = True
    cfg.custom_hooks = []
    cfg.train_dataloader.batch_size = args.batch_size
    cfg.work_dir = osp.join('work_dirs', 'benchmarks', 'feature_cache')
    cfg.experiment_name = f'feature_cache_{time.time_ns()}'
    torch.manual_seed(0)
    runner = Runner.from_cfg(cfg)
    model = runner.model.to(device)
    model.init_weights()
    model.train()
    wrapper = runner.build_optim_wrapper(cfg.optim_wrapper)
    loader = iter(runner.train_dataloader)
    batches = [next(loader) for _ in range(args.batches)]
    rng = random.Random(0)
    subnets = [
        sample_subnet(model, rng, apply=False) for _ in range(args.batches)
    ]

    from mmnas_tricks.models.mutables import set_subnet

    def train_steps():
        for data, subnet in zip(batches, subnets):
            set_subnet(model, subnet)
            model.train_step(data, wrapper)

    def backbone_steps():
        with torch.no_grad():
            for data in batches:
                inputs = model.data_preprocessor(data, True)['inputs']
                model.backbone(inputs)

    def train_pass():
        return timed(train_steps, device) / len(batches)

    def backbone_pass():
        return timed(backbone_steps, device) / len(batches)

    hook = FeatureCacheHook(module='backbone', budget_mb=4096)
    fake = SimpleNamespace(model=model, cfg=cfg, work_dir=cfg.work_dir)
    hook.before_run(fake)
    train_pass()  # fills the cache (and warms everything up)
    hook.after_run(fake)
    train_pass()
    plain, cached, stem = [], [], []
    for r in range(args.repeats):
        plain.append(train_pass())
        stem.append(backbone_pass())
        hook.before_run(fake)
        cached.append(train_pass())
        hook.after_run(fake)
        print(
            f'repeat {r + 1}/{args.repeats}: plain {plain[-1]:.4f} s/it, '
            f'cached {cached[-1]:.4f} s/it, backbone {stem[-1]:.4f} s/it',
            flush=True)
    t_plain, t_cached = median(plain), median(cached)
    share = median(stem) / t_plain
    limit = 1.0 / (1.0 - share)
    speedup = t_plain / t_cached
    result = dict(
        machine(device),
        benchmark='feature_cache_speedup',
        target='>= 0.9 of the Amdahl limit',
        config=args.config,
        batches=args.batches,
        batch_size=args.batch_size,
        repeats=args.repeats,
        seconds_per_iter_plain=round(t_plain, 5),
        seconds_per_iter_cached=round(t_cached, 5),
        backbone_share=round(share, 4),
        amdahl_limit=round(limit, 4),
        speedup=round(speedup, 4),
        fraction_of_limit=round(speedup / limit, 4),
        cache_mb=round(hook.cache.nbytes / 2**20, 2),
        cache_entries=len(hook.cache),
        cache_stats=hook.cache.stats,
        command=' '.join(['python'] + sys.argv))
    write_result(result, out)


if __name__ == '__main__':
    main()
