"""How fast a single-path supernet learns under a sampling rule: plain SGD
(lr 0.005, momentum 0.9, no schedule) on the digits training canvases for N
steps, a new subnet before every step, and the mean training loss of the
last 25 steps printed every 25 steps (the loss of whatever subnet was
sampled). ``fixed`` never samples (the first subnet: the baseline FCOS in
our FCOS spaces) and is the reference.

Rules: fixed, uniform, sandwich (largest, smallest, random in turn),
alternate (first subnet, random subnet in turn), bias<p> (each mutable keeps
its first choice with probability p, e.g. bias0.5), warm<k> (fixed for k
steps, then uniform).

Example:
    python benchmarks/supernet_sampling_probe.py \
      configs/supernets/fcos_r18w16_fpn-elastic_gn-head-elastic_12e_digits.py \
      --rules fixed uniform sandwich --steps 150
Writes work_dirs/benchmarks/supernet_sampling_probe.json (one entry per
config, rule and include pattern; earlier entries are kept).
"""
import argparse
import json
import os
import os.path as osp
import random
import time

import torch


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--rules', nargs='+', default=['fixed', 'uniform'])
    parser.add_argument(
        '--include',
        default=None,
        help='fnmatch pattern of the sampled mutables')
    parser.add_argument('--steps', type=int, default=150)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--out', default='work_dirs/benchmarks/supernet_sampling_probe.json')
    return parser.parse_args()


def probe(config, rule, include, steps, seed):
    from mmengine.runner import Runner

    from mmnas_tricks.models.mutables import (extreme_subnet, get_subnet,
                                              named_mutables, sample_subnet,
                                              set_subnet)
    from mmnas_tricks.utils import load_config
    cfg = load_config(config)
    cfg.work_dir = osp.join('work_dirs', 'benchmarks', 'probe')
    cfg.custom_hooks = []
    cfg.experiment_name = f'probe_{rule}_{time.time_ns()}'
    torch.manual_seed(seed)
    runner = Runner.from_cfg(cfg)
    model = runner.model
    model.init_weights()
    first = get_subnet(model)
    opt = torch.optim.SGD(
        model.parameters(), lr=0.005, momentum=0.9, weight_decay=1e-4)
    rng = random.Random(seed)
    searchable = named_mutables(model, include, searchable_only=True)
    curve, losses, it = [], [], iter(runner.train_dataloader)
    for step in range(steps):
        try:
            data = next(it)
        except StopIteration:
            it = iter(runner.train_dataloader)
            data = next(it)
        if rule == 'uniform' or (rule.startswith('warm')
                                 and step >= int(rule[4:])):
            sample_subnet(model, rng, include=include)
        elif rule == 'sandwich':
            if step % 3 == 2:
                sample_subnet(model, rng, include=include)
            else:
                extreme = extreme_subnet(model,
                                         'max' if step % 3 == 0 else 'min')
                set_subnet(model,
                           dict(first, **{n: extreme[n]
                                          for n in searchable}))
        elif rule == 'alternate':
            if step % 2:
                sample_subnet(model, rng, include=include)
            else:
                set_subnet(model, first)
        elif rule.startswith('bias'):
            p = float(rule[4:])
            probs = {
                n: [p] + [(1 - p) / (m.num_choices - 1)] * (m.num_choices - 1)
                for n, m in searchable.items()
            }
            sample_subnet(model, rng, probs=probs, include=include)
        elif rule != 'fixed' and not rule.startswith('warm'):
            raise ValueError(f'rule {rule!r} is not one of fixed, uniform, '
                             'sandwich, alternate, bias<p>, warm<k>')
        model.train()
        batch = model.data_preprocessor(data, True)
        loss, _ = model.parse_losses(model(**batch, mode='loss'))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(
            [p for p in model.parameters() if p.grad is not None], 35)
        opt.step()
        losses.append(loss.item())
        if (step + 1) % 25 == 0:
            mean = sum(losses[-25:]) / 25
            curve.append(round(mean, 4))
            print(f'{rule} step {step + 1}: loss {mean:.4f}', flush=True)
    return curve


def main():
    args = parse_args()
    results = []
    if osp.isfile(args.out):
        with open(args.out) as f:
            results = json.load(f)
    for rule in args.rules:
        curve = probe(args.config, rule, args.include, args.steps, args.seed)
        results.append(
            dict(
                config=args.config,
                rule=rule,
                include=args.include,
                steps=args.steps,
                seed=args.seed,
                loss_every_25=curve,
                final_loss=curve[-1] if curve else None))
    os.makedirs(osp.dirname(args.out) or '.', exist_ok=True)
    from mmnas_tricks.utils import dump_json_atomic
    dump_json_atomic(results, args.out, indent=1)
    for r in results[-len(args.rules):]:
        print(f"{r['rule']:>10} include={r['include']}: final loss "
              f"{r['final_loss']}")


if __name__ == '__main__':
    main()
