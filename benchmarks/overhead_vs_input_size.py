"""How a supernet's overhead over its static subnet moves with the size of
a training step: the whole-detector supernet at its
baseline subnet against the static model of that subnet (as
``supernet_overhead.py`` builds them: same weights, same loss checked), on
synthetic batches of growing images (``--steps``: size x batch, the pixels
per step doubling), ``train_step`` alternately, ``--repeats`` times.

Work that scales with the supernet's parameters (9.6 M against the
subnet's 1.1 M: dense SGD over every weight, full-size zero-filled
gradients, the weight crops) is fixed per step; work that scales with
pixels is the same in both. A ratio that falls as steps grow says how much
of the digits figure (128 px, 16 images) is the former. Each step size's
forward (with the loss), backward and optimizer step are also timed apart
(``phases_ms``, medians over ``--phase-iters`` steps).

Example:
    python benchmarks/overhead_vs_input_size.py            # CPU, ~2 min
Writes benchmarks/results/overhead_vs_input_size.json.
"""
import argparse

import torch
from common import (add_common_args, check_device, machine, median,
                    result_path, timed, write_result)
from supernet_overhead import build_pair, count_params, optimizer_of

CONFIG = ('configs/supernets/fcos_whole-elastic_r18w16_fpn_gn-head_12e_'
          'digits.py')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=CONFIG)
    parser.add_argument(
        '--steps',
        nargs='+',
        default=['128x16', '256x8', '512x4'],
        help='SIZExBATCH of each step measured')
    parser.add_argument('--iters', type=int, default=3)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument(
        '--phase-iters',
        type=int,
        default=12,
        help='steps whose forward / backward / optimizer step are timed '
        'apart, per model and step size')
    add_common_args(parser)
    return parser.parse_args()


def phases(model, wrapper, data, iters: int, device) -> dict:
    """Median milliseconds of a training step's parts, timed apart: the
    forward with the loss (preprocessing included), the backward, and the
    optimizer step with ``zero_grad``."""
    model.train()
    parts = dict(forward=[], backward=[], step=[])
    for _ in range(iters):
        holder = {}

        def forward():
            batch = model.data_preprocessor(data, True)
            holder['loss'] = model.parse_losses(model(**batch, mode='loss'))[0]

        parts['forward'].append(timed(forward, device))
        parts['backward'].append(
            timed(lambda: holder['loss'].backward(), device))

        def step():
            wrapper.step()
            wrapper.zero_grad()

        parts['step'].append(timed(step, device))
    return {k: round(1000 * median(v), 1) for k, v in parts.items()}


def main():
    from mmdet.testing import demo_mm_inputs
    args = parse_args()
    device = check_device(args.device)
    cfg, supernet, static, subnet = build_pair(args.config)
    models = [supernet.to(device), static.to(device)]
    wrappers = [optimizer_of(m, cfg) for m in models]
    rows = []
    for step in args.steps:
        size, batch = (int(v) for v in step.split('x'))
        torch.manual_seed(0)
        data = demo_mm_inputs(
            batch, [[3, size, size]] * batch,
            num_items=[3] * batch,
            num_classes=10,
            with_mask=False)

        def run(model, wrapper):
            model.train()
            for _ in range(args.iters):
                model.train_step(data, wrapper)

        for model, wrapper in zip(models, wrappers):
            run(model, wrapper)  # warm-up
        times = [[], []]
        for _ in range(args.repeats):
            for i, (model, wrapper) in enumerate(zip(models, wrappers)):
                times[i].append(
                    timed(lambda: run(model, wrapper), device) / args.iters)
        ratios = [a / b for a, b in zip(*times)]
        rows.append(
            dict(
                size=size,
                batch=batch,
                seconds_per_iter_supernet=round(median(times[0]), 4),
                seconds_per_iter_static=round(median(times[1]), 4),
                extra_seconds=round(median(times[0]) - median(times[1]), 4),
                ratio=round(median(ratios), 4),
                # each part of a step timed apart (ms), supernet / static
                phases_ms=dict(
                    supernet=phases(models[0], wrappers[0], data,
                                    args.phase_iters, device),
                    static=phases(models[1], wrappers[1], data,
                                  args.phase_iters, device))))
        print(rows[-1], flush=True)
    write_result(
        dict(
            machine(device),
            benchmark='overhead_vs_input_size',
            config=args.config,
            subnet='baseline (every first choice)',
            params_supernet=count_params(supernet),
            params_static=count_params(static),
            iters=args.iters,
            repeats=args.repeats,
            rows=rows,
            command='python benchmarks/overhead_vs_input_size.py'),
        result_path('overhead_vs_input_size', device, args.out))


if __name__ == '__main__':
    main()
