"""What one search candidate costs, part by part, before and after each
change, measured side by side on the same candidates.

The setting of MMRazor's reference (benchmarks/search_throughput.py): the
DetNAS ShuffleNetV2 FCOS supernet on digits (trained ``--supernet-epochs``
epochs, shared with that benchmark), ``--candidates`` random subnets, each
BN-calibrated on 64 training images (4 batches of 16) and scored on 100
held-out images. For each candidate, in turn:

- BN calibration: the whole model's forward (before) against the part
  that reaches the last BatchNorm (after: the backbone alone here; the
  FCOS head has GroupNorm);
- evaluation forward + post-processing + the metric's ``process``: the
  dataloader's batches of 16 (before) against the same batches kept in
  memory (``CachedBatches``), at 16 and at all 100 images per batch, and
  under ``torch.inference_mode`` instead of ``no_grad``;
- the metric's ``evaluate``: pycocotools (before) against
  faster-coco-eval.

Every variant of a part gives the same numbers (checked: calibrated
statistics equal; scores equal, or within 1e-12 between the COCO backends,
whose precision tables can differ in the last bit). Medians over the
candidates.

Example:
    python benchmarks/candidate_cost.py        # ~3 min
Writes benchmarks/results/candidate_cost.json.
"""
import argparse
import contextlib
import io
import math
import random
import time

import torch
from common import (digits_batches, heldout_dataloader, load_cfg, machine,
                    median, result_path, trained_supernet, write_result)

CONFIG = ('configs/supernets/fcos_detnas-shufflenetv2_fpn_gn-head_12e_'
          'digits.py')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--candidates', type=int, default=10)
    parser.add_argument('--val-images', type=int, default=100)
    parser.add_argument('--calib-images', type=int, default=64)
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--supernet-epochs', type=int, default=3)
    parser.add_argument('--out', default=None)
    return parser.parse_args()


def main():
    args = parse_args()
    from mmengine.evaluator import Evaluator
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner, load_checkpoint
    from torch.nn.modules.batchnorm import _BatchNorm

    from mmnas_tricks.engine import calibrate_bn
    from mmnas_tricks.engine.metrics import PreciseCocoMetric
    from mmnas_tricks.engine.scoring import CachedBatches
    from mmnas_tricks.models.mutables import sample_subnet, set_subnet
    from mmnas_tricks.utils import build_model
    ckpt = trained_supernet(CONFIG, args.supernet_epochs)
    cfg = load_cfg(CONFIG, 'work_dirs/benchmarks/candidate_cost')
    model = build_model(cfg)
    load_checkpoint(model, ckpt, map_location='cpu', logger='silent')
    with DefaultScope.overwrite_default_scope('mmdet'):
        loader = Runner.build_dataloader(
            heldout_dataloader(cfg, args.val_images, args.batch_size), seed=0)
    calib = digits_batches(cfg, math.ceil(args.calib_images / args.batch_size),
                           args.batch_size)
    kept16 = CachedBatches(loader)
    kept_all = CachedBatches(loader, batch_size=args.val_images)
    rng = random.Random(0)
    subnets = [
        sample_subnet(model, rng, apply=False) for _ in range(args.candidates)
    ]
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]

    def stats():
        return [(m.running_mean.clone(), m.running_var.clone()) for m in bns]

    def forward_pass(batches, context):
        """Forward + post-processing + process; returns (seconds, results
        of the metric's process)."""
        evaluator = Evaluator(PreciseCocoMetric(ann_file=None, metric='bbox'))
        evaluator.dataset_meta = loader.dataset.metainfo
        model.eval()
        start = time.perf_counter()
        with context():
            for data in batches:
                outputs = model.val_step(data)
                evaluator.process(data_samples=outputs, data_batch=data)
        return time.perf_counter() - start, evaluator

    # one metric per backend, kept across candidates as a search keeps its
    # own (the ground truth is converted on the first candidate only)
    scorers = {}
    for backend in ('pycocotools', 'faster_coco_eval'):
        scorers[backend] = Evaluator(
            PreciseCocoMetric(ann_file=None, metric='bbox', backend=backend))
        scorers[backend].dataset_meta = loader.dataset.metainfo

    def metric_time(evaluator, backend):
        """The seconds of ``backend``'s evaluate on ``evaluator``'s
        processed results."""
        scorer = scorers[backend]
        scorer.metrics[0].results = list(evaluator.metrics[0].results)
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            result = scorer.evaluate(len(loader.dataset))
        return time.perf_counter() - start, result['coco/bbox_mAP']

    variants = dict(
        loader_b16_no_grad=(lambda: loader, torch.no_grad),
        kept_b16_no_grad=(lambda: kept16, torch.no_grad),
        kept_b100_no_grad=(lambda: kept_all, torch.no_grad),
        kept_b100_inference_mode=(lambda: kept_all, torch.inference_mode))
    seconds = {
        k: []
        for k in ('calib_whole', 'calib_prefix', *variants,
                  'metric_pycocotools', 'metric_faster_coco_eval')
    }
    worst = 0.0  # the largest difference between the variants' scores
    forward_pass(kept16, torch.no_grad)  # fills the kept batches, warms up
    forward_pass(kept_all, torch.no_grad)
    for i, subnet in enumerate(subnets):
        set_subnet(model, subnet)
        start = time.perf_counter()
        calibrate_bn(model, calib, len(calib), whole_model=True)
        seconds['calib_whole'].append(time.perf_counter() - start)
        whole = stats()
        start = time.perf_counter()
        calibrate_bn(model, calib, len(calib))
        seconds['calib_prefix'].append(time.perf_counter() - start)
        if not all(
                torch.equal(a, b) for x, y in zip(whole, stats())
                for a, b in zip(x, y)):
            raise AssertionError('the calibrations disagree')
        scores = {}
        for name, (batches, context) in variants.items():
            s, evaluator = forward_pass(batches(), context)
            seconds[name].append(s)
            if name == 'loader_b16_no_grad':
                for backend in ('pycocotools', 'faster_coco_eval'):
                    s, scores[backend] = metric_time(evaluator, backend)
                    seconds[f'metric_{backend}'].append(s)
            scores[name] = metric_time(evaluator, 'faster_coco_eval')[1]
        spread = max(scores.values()) - min(scores.values())
        worst = max(worst, spread)
        if spread > 1e-12:  # pycocotools and faster-coco-eval: <= 1 ulp
            raise AssertionError(f'candidate {i}: the variants disagree: '
                                 f'{scores}')
        print(
            f'candidate {i + 1}/{len(subnets)}: ' +
            ', '.join(f'{k} {v[-1]:.3f}' for k, v in seconds.items()),
            flush=True)
    med = {k: round(median(v), 4) for k, v in seconds.items()}
    fastest_forward = min(variants, key=lambda k: med[k])
    before = med['calib_whole'] + med['loader_b16_no_grad'] + \
        med['metric_pycocotools']
    after = med['calib_prefix'] + med[fastest_forward] + \
        med['metric_faster_coco_eval']
    write_result(
        dict(
            machine('cpu'),
            benchmark='candidate_cost',
            config=CONFIG,
            supernet_epochs=args.supernet_epochs,
            candidates=len(subnets),
            val_images=args.val_images,
            calib_images=len(calib) * args.batch_size,
            statistic='median seconds per candidate, variants in turn',
            median_seconds=med,
            before_seconds=round(before, 4),
            after_seconds=round(after, 4),
            after_forward=fastest_forward,
            speedup=round(before / after, 3),
            largest_score_difference=worst,
            seconds={k: [round(x, 4) for x in v]
                     for k, v in seconds.items()}),
        result_path('candidate_cost', 'cpu', args.out))


if __name__ == '__main__':
    main()
