"""What a supernet costs over the static model of the subnet it runs:
time per training iteration and peak memory.

For each CONFIG (default: the weight-sharing FCOS neck/head space, the main
job's plus tower depth {4, 3, 2}, the DetNAS ShuffleNetV2 FCOS backbone
space and the main job's whole-detector elastic space), for the baseline
subnet (every first choice) and ``--subnets`` random ones: the supernet
with that subnet set, and the static model of the subnet built from its
exported plain mmdet config (``export_config``) with the same weights, each
train on the same ``--batches`` digits batches (``train_step``: forward, loss,
backward, SGD step), alternately, ``--repeats`` times. Both are checked to
give the same loss on the first batch before anything is timed. Reported:
the median over repeats of each pass's mean time per iteration, their
ratio per subnet and the median ratio over subnets (target <= 1.03);
training memory counted tensor by tensor (parameters, gradients, optimizer
state, activations saved for backward; on CUDA also the allocator's peak
over a pass) and the parameter counts.

MMRazor beside it, in the same run (``--mmrazor-venv``, made by
``benchmarks/peers/install_mmrazor.sh``): its SPOS supernet of the DetNAS
space, each subnet against the static model MMRazor exports for it
(``benchmarks/peers/mmrazor_search.py --overhead``), the same batches,
repeats and number of subnets.

Example:
    python benchmarks/supernet_overhead.py                  # CPU, ~9 min
    python benchmarks/supernet_overhead.py --device cuda    # GPU machine
Writes benchmarks/results/supernet_overhead[_<device>].json.
"""
import argparse
import json
import os
import os.path as osp
import random
import sys

import torch
from common import (add_common_args, check_device, digits_batches, load_cfg,
                    machine, median, result_path, timed, write_result)

CONFIGS = [
    'configs/supernets/fcos_r18w16_fpn-elastic_gn-head-elastic_12e_digits.py',
    'configs/supernets/fcos_detnas-shufflenetv2_fpn_gn-head_12e_digits.py',
    'configs/supernets/fcos_whole-elastic_r18w16_fpn_gn-head_12e_digits.py',
]
WORK_DIR = 'work_dirs/benchmarks/supernet_overhead'
MMRAZOR_VENV = 'work_dirs/peers/mmrazor'


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('configs', nargs='*', default=CONFIGS)
    parser.add_argument(
        '--subnets',
        type=int,
        default=3,
        help='random subnets besides the baseline one')
    parser.add_argument(
        '--mmrazor-venv',
        default=MMRAZOR_VENV,
        help='MMRazor 1.0 in its own venv '
        '(benchmarks/peers/install_mmrazor.sh): its SPOS supernet of the '
        'DetNAS space measured the same way in the same run; absent: no '
        'MMRazor row')
    add_common_args(parser, timing=True)
    return parser.parse_args()


def build_pair(config: str, subnet=None, seed: int = 0):
    """(cfg, supernet, static model, subnet): the supernet with ``subnet``
    set (None: the baseline one, every first choice) and the static model
    built from the exported config with the subnet's weights."""
    from mmnas_tricks.models import export_config
    from mmnas_tricks.models.mutables import (export_static, named_mutables,
                                              set_subnet)
    from mmnas_tricks.utils.launch import build_model
    cfg = load_cfg(config, WORK_DIR)
    torch.manual_seed(seed)
    supernet = build_model(cfg)
    supernet.init_weights()
    if subnet is None:
        subnet = {
            name: m.choices[0]
            for name, m in named_mutables(supernet).items()
        }
    set_subnet(supernet, subnet)
    static = build_model(export_config(cfg, subnet, supernet))
    static.load_state_dict(export_static(supernet, subnet).state_dict())
    if hasattr(supernet.data_preprocessor, 'input_shape'):
        # an input-size choice: the exported config resizes in its pipeline
        # (the raw batches here are at the base size), so the static model
        # gets the same batch resize, at the chosen size
        import copy
        static.data_preprocessor = copy.deepcopy(supernet.data_preprocessor)
    return cfg, supernet, static, subnet


def optimizer_of(model, cfg):
    from mmengine.optim import build_optim_wrapper
    return build_optim_wrapper(model, cfg.optim_wrapper.copy())


def same_loss(a, b, data) -> float:
    """|loss_a - loss_b| on one batch, both in train mode, no update."""
    totals = []
    with torch.no_grad():
        for model in (a, b):
            model.train()
            inputs = model.data_preprocessor(data, True)
            losses = model(**inputs, mode='loss')
            totals.append(float(model.parse_losses(losses)[0]))
    return abs(totals[0] - totals[1]), totals


def train_pass(model, wrapper, batches, device) -> float:
    model.train()

    def run():
        for data in batches:
            model.train_step(data, wrapper)

    return timed(run, device) / len(batches)


def count_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def training_memory(model, wrapper, data) -> dict:
    """Memory a training step holds, counted tensor by tensor (any device):
    parameters + their gradients + the optimizer's state, and the
    activations autograd saves for the backward pass of one batch (unique
    storages)."""

    def nbytes(tensors):
        return sum(t.numel() * t.element_size() for t in tensors)

    params = [p for p in model.parameters()]
    state = [
        v for st in wrapper.optimizer.state.values() for v in st.values()
        if torch.is_tensor(v)
    ]
    saved = {}

    def pack(t):
        try:
            ptr = t.untyped_storage().data_ptr()
            saved[ptr] = t.untyped_storage().nbytes()
        except (RuntimeError, NotImplementedError):
            pass
        return t

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        inputs = model.data_preprocessor(data, True)
        losses = model(**inputs, mode='loss')
    del losses
    mb = 2**20
    trainable = [p for p in params if p.requires_grad]
    return dict(
        params_mb=round(nbytes(params) / mb, 2),
        grads_mb=round(nbytes(trainable) / mb, 2),
        optimizer_state_mb=round(nbytes(state) / mb, 2),
        activations_mb=round(sum(saved.values()) / mb, 2))


def memory(models, wrappers, batches, device) -> dict:
    """Counted training memory of both models; on CUDA also the allocator's
    peak over a pass."""
    counted = [
        training_memory(m, w, batches[0]) for m, w in zip(models, wrappers)
    ]
    totals = [sum(c.values()) for c in counted]
    out = dict(
        kind='counted: parameters + gradients + optimizer state + '
        'activations saved for backward (MB)',
        supernet=counted[0],
        static=counted[1],
        supernet_mb=round(totals[0], 2),
        static_mb=round(totals[1], 2),
        ratio=round(totals[0] / totals[1], 4))
    if torch.device(device).type == 'cuda':
        out['cuda_peak'] = cuda_memory(models, wrappers, batches, device)
    return out


def cuda_memory(models, wrappers, batches, device) -> dict:
    """Peak CUDA memory a pass allocates on top of what is allocated
    before it (both models' weights and optimizer state stay resident)."""
    import gc
    peaks = []
    for model, wrapper in zip(models, wrappers):
        gc.collect()
        torch.cuda.empty_cache()
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        train_pass(model, wrapper, batches, device)
        peaks.append(
            (torch.cuda.max_memory_allocated(device) - before) / 2**20)
    return dict(
        kind='torch.cuda.max_memory_allocated during a pass minus '
        'the memory allocated before it (MB)',
        supernet_mb=round(peaks[0], 1),
        static_mb=round(peaks[1], 1),
        ratio=round(peaks[0] / peaks[1], 4))


def measure(config: str, args, device) -> dict:
    from mmnas_tricks.models.mutables import sample_subnet
    from mmnas_tricks.structures import subnet_key
    from mmnas_tricks.utils.launch import build_model
    cfg = load_cfg(config, WORK_DIR)
    supernet = build_model(cfg)  # only to draw the subnets
    rng = random.Random(0)
    subnets = [None]
    keys = set()
    while len(subnets) < 1 + args.subnets:
        subnet = sample_subnet(supernet, rng, apply=False)
        if subnet_key(subnet) not in keys:
            keys.add(subnet_key(subnet))
            subnets.append(subnet)
    batches = digits_batches(cfg, args.batches, args.batch_size)
    rows = []
    for index, subnet in enumerate(subnets):
        cfg, supernet, static, subnet = build_pair(config, subnet)
        diff, losses = same_loss(supernet, static, batches[0])
        if diff > 1e-3 * max(1.0, abs(losses[0])):
            raise RuntimeError(f'supernet and static model differ: losses '
                               f'{losses} on the same batch ({config})')
        models = [supernet.to(device), static.to(device)]
        wrappers = [optimizer_of(m, cfg) for m in models]
        for model, wrapper in zip(models, wrappers):
            train_pass(model, wrapper, batches[:2], device)  # warm-up
        times = {'supernet': [], 'static': []}
        for r in range(args.repeats):
            for kind, model, wrapper in zip(('supernet', 'static'), models,
                                            wrappers):
                times[kind].append(train_pass(model, wrapper, batches, device))
        ratios = [s / t for s, t in zip(times['supernet'], times['static'])]
        row = dict(
            subnet='baseline (every first choice)'
            if index == 0 else f'random {index}',
            choices={
                k: v if isinstance(v, (str, int, float)) else list(v)
                for k, v in subnet.items()
            },
            seconds_per_iter_supernet=round(median(times['supernet']), 5),
            seconds_per_iter_static=round(median(times['static']), 5),
            ratio=round(median(ratios), 4),
            ratio_of_medians=round(
                median(times['supernet']) / median(times['static']), 4),
            params_supernet=count_params(supernet),
            params_static=count_params(static),
            losses_first_batch=[round(x, 5) for x in losses])
        row['memory'] = memory(models, wrappers, batches, device)
        print(
            f'{osp.basename(config)} {row["subnet"]}: supernet '
            f'{row["seconds_per_iter_supernet"]:.4f} s/it, static '
            f'{row["seconds_per_iter_static"]:.4f} s/it, ratio '
            f'{row["ratio"]:.4f}; memory {row["memory"]["supernet_mb"]} / '
            f'{row["memory"]["static_mb"]} MB',
            flush=True)
        rows.append(row)
        del models, wrappers, supernet, static
    return dict(
        config=config,
        rows=rows,
        median_ratio=round(median([r['ratio'] for r in rows]), 4),
        max_ratio=round(max(r['ratio'] for r in rows), 4))


def measure_mmrazor(args) -> dict:
    """MMRazor's SPOS supernet of the DetNAS space (the search
    benchmark's peer setting: same FCOS, channels, blocks, training images
    and optimizer settings) against the static models it exports,
    ``--batches`` / ``--repeats`` / ``--subnets`` as ours
    (``benchmarks/peers/mmrazor_search.py --overhead``)."""
    from common import run_command
    from search_throughput import parse_args as peer_args
    from search_throughput import peer_setting
    setting = peer_setting(peer_args([]))  # its defaults: the same setting
    out = osp.join(osp.dirname(setting), 'overhead.json')
    run_command([
        osp.join(args.mmrazor_venv, 'bin',
                 'python'), 'benchmarks/peers/mmrazor_search.py', setting,
        '--overhead', out, '--batches',
        str(args.batches), '--repeats',
        str(args.repeats), '--subnets',
        str(args.subnets)
    ])
    with open(out) as f:
        result = json.load(f)
    print(f'MMRazor: median ratio {result["median_ratio"]}', flush=True)
    return result


def main():
    args = parse_args()
    device = check_device(args.device)
    out = result_path('supernet_overhead', device, args.out)
    results = [measure(c, args, device) for c in args.configs]
    peer = None
    if device.type == 'cpu' and osp.isfile(
            osp.join(args.mmrazor_venv, 'bin', 'python')):
        peer = measure_mmrazor(args)
    elif device.type == 'cpu':
        print(
            f'no MMRazor venv at {args.mmrazor_venv} '
            '(bash benchmarks/peers/install_mmrazor.sh): MMRazor not '
            'measured',
            flush=True)
    write_result(
        dict(
            machine(device),
            benchmark='supernet_overhead',
            target=1.03,
            mmrazor_reference=dict(
                ratio=1.045,
                note='MMRazor 1.0, SPOS FCOS + ShuffleNetV2 '
                'supernet on digits, this CPU machine (2026-11)'),
            batches=args.batches,
            batch_size=args.batch_size,
            repeats=args.repeats,
            configs=results,
            median_ratios={
                osp.basename(r['config']): r['median_ratio']
                for r in results
            },
            mmrazor=peer,
            mmrazor_median_ratio=None
            if peer is None else peer['median_ratio'],
            command=' '.join(['python'] + sys.argv)), out)


if __name__ == '__main__':
    os.environ.setdefault('PYTHONWARNINGS', 'ignore')
    main()
