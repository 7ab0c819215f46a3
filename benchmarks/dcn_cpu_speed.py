"""Forward + backward time of one DCNv2 layer on CPU: mmcv's kernel against
mmnas_tricks' pure-PyTorch path (``TorchCPUDCNv2``), side by side in one run,
interleaved, median of several repetitions; and the time of one training
step of the digits NAS-FCOS supernet with its deformable candidates on each.

Example:
    python benchmarks/dcn_cpu_speed.py --repeats 7

Prints the medians and ratios and writes ``<out-dir>/dcn_cpu_speed.json``.
"""
import argparse
import os.path as osp
import statistics
import time

import torch

from mmnas_tricks.utils import dump_json_atomic

NASFCOS = ('configs/supernets/'
           'nasfcos_r18w16_fpn-cells-search_gn-head-search_12e_digits.py')


def time_layer(layer, x):
    t = time.perf_counter()
    layer(x).sum().backward()
    return time.perf_counter() - t


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repeats', type=int, default=7)
    parser.add_argument('--out-dir', default='benchmarks/results')
    args = parser.parse_args()
    from mmcv.ops import ModulatedDeformConv2dPack

    from mmnas_tricks.models.mutables import named_mutables, set_subnet
    from mmnas_tricks.models.ops import TorchCPUDCNv2
    from mmnas_tricks.testing import demo_det_batch
    from mmnas_tricks.utils import build_model, load_config

    torch.manual_seed(0)
    results = dict(
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        repeats=args.repeats,
        layers={})
    # one layer at the digits head's sizes: batch 16, 64 channels, 16 x 16
    for shape in ((16, 64, 16, 16), (16, 64, 8, 8)):
        mmcv_dcn = ModulatedDeformConv2dPack(64, 64, 3, padding=1)
        ours = TorchCPUDCNv2(64, 64, 3, padding=1)
        ours.load_state_dict(mmcv_dcn.state_dict())
        x = torch.randn(*shape, requires_grad=True)
        times = dict(mmcv=[], torch=[])
        for _ in range(args.repeats):
            times['mmcv'].append(time_layer(mmcv_dcn, x))
            times['torch'].append(time_layer(ours, x))
        med = {k: statistics.median(v) for k, v in times.items()}
        key = 'x'.join(map(str, shape))
        results['layers'][key] = dict(
            median_s=med, ratio_mmcv_over_torch=med['mmcv'] / med['torch'])
        print(f'DCNv2 fwd+bwd {key}: mmcv {med["mmcv"]:.4f} s, torch '
              f'{med["torch"]:.4f} s, ratio {med["mmcv"] / med["torch"]:.1f}x')

    # a supernet training step with every head layer deformable
    model = build_model(load_config(NASFCOS)).train()
    subnet = {
        n: ('def_conv_3x3' if 'def_conv_3x3' in m.choices else m.choices[0])
        for n, m in named_mutables(model).items()
    }
    set_subnet(model, subnet)
    data = demo_det_batch(model, True, batch=16, size=128)
    dcns = [m for m in model.modules() if isinstance(m, TorchCPUDCNv2)]

    def step():
        t = time.perf_counter()
        loss, _ = model.parse_losses(
            model.loss(data['inputs'], data['data_samples']))
        loss.backward()
        model.zero_grad()
        return time.perf_counter() - t

    def use_mmcv(flag):
        for m in dcns:
            m.forward = (
                lambda x, m=m: ModulatedDeformConv2dPack.forward(m, x)
            ) if flag else (lambda x, m=m: TorchCPUDCNv2.forward(m, x))

    times = dict(mmcv=[], torch=[])
    step()
    for _ in range(max(3, args.repeats // 2)):
        for name in ('mmcv', 'torch'):
            use_mmcv(name == 'mmcv')
            times[name].append(step())
    med = {k: statistics.median(v) for k, v in times.items()}
    n_active = sum(v == 'def_conv_3x3' for v in subnet.values())
    results['supernet_step'] = dict(
        config=NASFCOS,
        deformable_layers=n_active,
        batch=16,
        median_s=med,
        ratio_mmcv_over_torch=med['mmcv'] / med['torch'])
    print(f'NAS-FCOS supernet step, {n_active} deformable layers: mmcv '
          f'{med["mmcv"]:.3f} s, torch {med["torch"]:.3f} s, ratio '
          f'{med["mmcv"] / med["torch"]:.1f}x')
    dump_json_atomic(results, osp.join(args.out_dir, 'dcn_cpu_speed.json'))


if __name__ == '__main__':
    main()
