"""COCO evaluation per search candidate: pycocotools against
faster-coco-eval, side by side in one run.

A search scores every candidate with ``PreciseCocoMetric`` on the held-out
images; this times that metric's ``evaluate`` (ground truth from the
samples, as the search's held-out split has it; detections handed over in
memory) on a trained FCOS's recorded predictions on 100 digits val
canvases (tests/data/digits_val_predictions.json.gz: 4,045 detections),
and ``FastCocoMetric`` on boxes + masks from an annotation file, each
backend in turn for ``--repeats`` rounds. Both backends' statistics are
checked equal.

Example:
    python benchmarks/coco_eval_speed.py        # ~1 min
Writes benchmarks/results/coco_eval_speed.json.
"""
import argparse
import contextlib
import copy
import io
import json
import os.path as osp
import tempfile
import time

from common import machine, median, result_path, write_result

from mmnas_tricks.datasets.digits_builder import CLASSES
from mmnas_tricks.engine.metrics import (COCO_BACKENDS, FastCocoMetric,
                                         PreciseCocoMetric)
from mmnas_tricks.testing import (DIGITS_PREDICTIONS, as_data_samples,
                                  load_digits_predictions)


def timed_evaluate(make_metric, samples):
    metric = make_metric()
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, copy.deepcopy(samples))
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        result = metric.evaluate(len(samples))
    return time.perf_counter() - start, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repeats', type=int, default=7)
    parser.add_argument('--out', default=None)
    args = parser.parse_args()
    recording = load_digits_predictions()
    search_samples = as_data_samples(recording, masks=False, ground_truth=True)
    val_samples = as_data_samples(recording)
    with tempfile.TemporaryDirectory() as tmp:
        gt_file = osp.join(tmp, 'gt.json')
        with open(gt_file, 'w') as f:
            json.dump(recording['ground_truth'], f)
        cases = dict(
            search_candidate_bbox=lambda b: PreciseCocoMetric(
                ann_file=None, metric='bbox', backend=b),
            val_bbox_segm=lambda b: FastCocoMetric(
                ann_file=gt_file, metric=['bbox', 'segm'], backend=b))
        rows = []
        for name, build in cases.items():
            samples = search_samples if name.startswith('search') \
                else val_samples
            seconds = {b: [] for b in COCO_BACKENDS}
            results = {}
            for _ in range(args.repeats):  # the backends in turn
                for backend in COCO_BACKENDS:
                    s, results[backend] = timed_evaluate(
                        lambda: build(backend), samples)
                    seconds[backend].append(s)
            if results['faster_coco_eval'] != results['pycocotools']:
                raise AssertionError(f'{name}: the backends disagree: '
                                     f'{results}')
            slow = median(seconds['pycocotools'])
            fast = median(seconds['faster_coco_eval'])
            rows.append(
                dict(
                    case=name,
                    pycocotools_s=round(slow, 4),
                    faster_coco_eval_s=round(fast, 4),
                    speedup=round(slow / fast, 2),
                    identical=True,
                    metrics=results['pycocotools'],
                    seconds={
                        b: [round(x, 4) for x in v]
                        for b, v in seconds.items()
                    }))
            print(f'{name}: pycocotools {slow:.3f} s, faster-coco-eval '
                  f'{fast:.3f} s ({slow / fast:.2f}x)')
    write_result(
        dict(
            machine('cpu'),
            benchmark='coco_eval_speed',
            predictions=osp.relpath(DIGITS_PREDICTIONS),
            images=len(recording['ground_truth']['images']),
            detections=len(recording['predictions']),
            repeats=args.repeats,
            statistic='median seconds of metric.evaluate, backends in turn',
            rows=rows), result_path('coco_eval_speed', 'cpu', args.out))


if __name__ == '__main__':
    main()
