"""FastCocoMetric and the COCO backends: faster-coco-eval gives what
pycocotools gives, all 12 statistics, boxes and masks, on a trained
detector's predictions on the digits val canvases
(tests/data/digits_val_predictions.json.gz, made by the script beside it).
"""
import copy
import json

import numpy as np
import pytest
import torch
from mmdet.evaluation.metrics import coco_metric as mmdet_coco_metric

from mmnas_tricks.datasets.digits_builder import CLASSES
from mmnas_tricks.engine.metrics import (COCO_BACKENDS, FastCocoMetric,
                                         PreciseCocoMetric, coco_backend)
from mmnas_tricks.testing import as_data_samples, load_digits_predictions

# pycocotools' mask decoding under numpy 2 warns once per mask (thousands)
pytestmark = pytest.mark.filterwarnings(
    'ignore:__array__ implementation:DeprecationWarning')

#: mmdet's names of the 12 COCOeval statistics, in their order
STATS = ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l', 'AR@100',
         'AR@300', 'AR@1000', 'AR_s@1000', 'AR_m@1000', 'AR_l@1000')


@pytest.fixture(scope='module')
def fixture():
    return load_digits_predictions()


def scaled(fixture, factor):
    """The boxes and canvases ``factor`` times larger (digits are all
    'small' at 128 px; x4 spreads them over small / medium / large)."""
    out = copy.deepcopy(fixture)
    gt = out['ground_truth']
    for img in gt['images']:
        img['height'] *= factor
        img['width'] *= factor
    for item in gt['annotations'] + out['predictions']:
        item['bbox'] = [v * factor for v in item['bbox']]
        item.pop('segmentation')
    for ann in gt['annotations']:
        ann['area'] = ann['bbox'][2] * ann['bbox'][3]
    return out


def write_gt(fixture, tmp_path):
    path = tmp_path / 'gt.json'
    path.write_text(json.dumps(fixture['ground_truth']))
    return str(path)


def coco_stats(backend, gt_file, predictions, iou_type):
    """COCOeval's statistics as mmdet's metric computes them (its maxDets),
    through the classes mmdet's module holds under ``backend``."""
    with coco_backend(backend):
        gt = mmdet_coco_metric.COCO(gt_file)
        dets = copy.deepcopy(predictions)
        for det in dets:
            det.pop('bbox' if iou_type == 'segm' else 'segmentation', None)
        coco_eval = mmdet_coco_metric.COCOeval(gt, gt.loadRes(dets), iou_type)
        coco_eval.params.maxDets = [100, 300, 1000]
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    libraries = {c.__module__.split('.')[0] for c in type(coco_eval).mro()}
    assert backend in libraries  # the backend asked for did the work
    return np.asarray(coco_eval.stats[:12], dtype=np.float64)


@pytest.mark.parametrize('iou_type,factor', [('bbox', 1), ('segm', 1),
                                             ('bbox', 4)])
def test_backends_give_identical_stats(fixture, tmp_path, iou_type, factor):
    data = fixture if factor == 1 else scaled(fixture, factor)
    gt_file = write_gt(data, tmp_path)
    slow = coco_stats('pycocotools', gt_file, data['predictions'], iou_type)
    fast = coco_stats('faster_coco_eval', gt_file, data['predictions'],
                      iou_type)
    assert slow.shape == fast.shape == (12, )
    np.testing.assert_array_equal(fast, slow)
    assert 0.3 < slow[0] < 1  # a trained detector's mAP, not a degenerate 0
    if factor > 1:  # the area ranges are exercised
        assert (slow[3:6] > 0).sum() >= 2


def evaluate(metric, samples):
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, samples)
    return metric.evaluate(len(samples))


@pytest.mark.parametrize('metric_type', [FastCocoMetric, PreciseCocoMetric])
def test_metric_is_the_same_on_either_backend(fixture, tmp_path, metric_type,
                                              monkeypatch):
    import faster_coco_eval
    calls = []
    evaluate_fast = faster_coco_eval.COCOeval_faster.evaluate
    monkeypatch.setattr(faster_coco_eval.COCOeval_faster, 'evaluate',
                        lambda self: calls.append(1) or evaluate_fast(self))
    gt_file = write_gt(fixture, tmp_path)
    samples = as_data_samples(fixture)
    results = {
        backend: evaluate(
            metric_type(
                ann_file=gt_file,
                metric=['bbox', 'segm'],
                metric_items=list(STATS),
                backend=backend), samples)
        for backend in COCO_BACKENDS
    }
    assert results['faster_coco_eval'] == results['pycocotools']
    assert len(calls) == 2  # bbox and segm, on faster-coco-eval once
    assert len(results['pycocotools']) == 2 * len(STATS)
    assert results['pycocotools']['coco/segm_mAP'] > 0.1
    # mmdet's module is left as it was
    from mmdet.datasets.api_wrappers import COCO, COCOeval
    assert mmdet_coco_metric.COCO is COCO
    assert mmdet_coco_metric.COCOeval is COCOeval


def test_ground_truth_from_the_samples_too(fixture):
    """``ann_file=None`` (the search's held-out split): the ground truth is
    converted from the samples, by the chosen backend's COCO."""
    samples = as_data_samples(fixture, masks=False, ground_truth=True)
    scores = [
        evaluate(
            PreciseCocoMetric(ann_file=None, metric='bbox', backend=b),
            copy.deepcopy(samples)) for b in COCO_BACKENDS
    ]
    assert scores[0] == scores[1]
    assert scores[0]['coco/bbox_mAP'] > 0.3


def test_bad_backend_is_refused_by_name():
    with pytest.raises(
            ValueError,
            match=r"backend='pycoco'.*"
            r'faster_coco_eval, pycocotools'):
        FastCocoMetric(metric='bbox', backend='pycoco')
    with pytest.raises(ValueError, match='use_mp_eval=True'):
        FastCocoMetric(metric='bbox', use_mp_eval=True)
    # mmdet's multi-process evaluation stays available on pycocotools
    FastCocoMetric(metric='bbox', use_mp_eval=True, backend='pycocotools')


def test_backend_is_restored_after_an_error():
    original = mmdet_coco_metric.COCO, mmdet_coco_metric.COCOeval
    with pytest.raises(RuntimeError):
        with coco_backend('faster_coco_eval'):
            assert mmdet_coco_metric.COCOeval is not original[1]
            raise RuntimeError('inside')
    assert (mmdet_coco_metric.COCO, mmdet_coco_metric.COCOeval) == original


def test_no_detection_at_all_scores_zero_on_faster_coco_eval(
        fixture, tmp_path):
    """The one documented difference: pycocotools cannot load empty
    results (mmdet's metric then returns no bbox keys); faster-coco-eval
    scores them 0."""
    gt_file = write_gt(fixture, tmp_path)
    samples = as_data_samples(fixture)
    for sample in samples:
        sample['pred_instances'] = dict(
            bboxes=torch.zeros(0, 4),
            scores=torch.zeros(0),
            labels=torch.zeros(0, dtype=torch.long))
    fast = evaluate(FastCocoMetric(ann_file=gt_file, metric='bbox'), samples)
    assert fast['coco/bbox_mAP'] == 0
    slow = evaluate(
        FastCocoMetric(ann_file=gt_file, metric='bbox', backend='pycocotools'),
        samples)
    assert 'coco/bbox_mAP' not in slow
