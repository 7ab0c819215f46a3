"""Time of one ``subnet_resources`` call (FLOPs + params of a whole
detector) as a search would make it for every candidate.

Example:
    python benchmarks/resources_speed.py \
        configs/baselines/fcos_r18w16_fpn_gn-head_12e_digits.py --repeats 5

The baseline detector has no mutables yet, so its first FPN output conv is
made an OpChoice (conv3x3 / sep3x3 / skip). Prints the median seconds per
call for each choice and writes ``<out-dir>/resources_speed.json``.
"""
import argparse
import os.path as osp
import statistics
import time

from mmengine.config import Config

from mmnas_tricks.utils import dump_json_atomic


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--size', type=int, default=128)
    parser.add_argument('--out-dir', default='work_dirs/benchmarks')
    args = parser.parse_args()

    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    from mmnas_tricks.models import subnet_resources
    from mmnas_tricks.models.mutables import OpChoice
    register_all_modules()
    cfg = Config.fromfile(args.config)
    model = MODELS.build(cfg.model)
    channels = cfg.model.neck.out_channels
    model.neck.fpn_convs[0] = OpChoice(
        dict(
            conv3x3=dict(type='ConvOp', norm_cfg=None, act_cfg=None),
            sep3x3=dict(type='SepConv', norm_cfg=None, act_cfg=None),
            skip=dict(type='Identity', norm_cfg=None)), channels, channels)
    rows = []
    for choice in model.neck.fpn_convs[0].choices:
        subnet = {'neck.fpn_convs.0': choice}
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            res = subnet_resources(
                model, subnet, input_shape=(3, args.size, args.size))
            times.append(time.perf_counter() - start)
        rows.append(
            dict(choice=choice, median_s=statistics.median(times), **res))
        print(f'{choice}: {res}, {statistics.median(times):.3f} s per call')
    dump_json_atomic(
        dict(
            config=args.config,
            size=args.size,
            repeats=args.repeats,
            rows=rows), osp.join(args.out_dir, 'resources_speed.json'))


if __name__ == '__main__':
    main()
