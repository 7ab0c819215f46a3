"""PreciseCocoMetric: mmdet's CocoMetric keys with every digit kept."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet.evaluation import CocoMetric

from mmnas_tricks.datasets.digits_builder import CLASSES
from mmnas_tricks.engine.metrics import PreciseCocoMetric


def fake_results(ann_file, seed=0):
    """Predictions: the ground-truth boxes, jittered, with random scores and
    some labels wrong, so that mAP is neither 0 nor 1."""
    coco = json.load(open(ann_file))
    rng = np.random.default_rng(seed)
    by_image = {}
    for ann in coco['annotations']:
        by_image.setdefault(ann['image_id'], []).append(ann)
    cat_index = {c['id']: i for i, c in enumerate(coco['categories'])}
    samples = []
    for img in coco['images']:
        anns = by_image.get(img['id'], [])
        boxes, labels = [], []
        for a in anns:
            x, y, w, h = a['bbox']
            j = rng.normal(0, 2, 4)
            boxes.append([x + j[0], y + j[1], x + w + j[2], y + h + j[3]])
            label = cat_index[a['category_id']]
            labels.append(label if rng.random() > 0.2 else (label + 1) % 10)
        samples.append(
            dict(
                img_id=img['id'],
                ori_shape=(img['height'], img['width']),
                pred_instances=dict(
                    bboxes=torch.tensor(boxes,
                                        dtype=torch.float32).reshape(-1, 4),
                    scores=torch.tensor(
                        rng.random(len(boxes)), dtype=torch.float32),
                    labels=torch.tensor(labels, dtype=torch.long))))
    return samples


def evaluate(metric, samples):
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, samples)
    return metric.evaluate(len(samples))


def test_same_keys_every_digit(tiny_digits):
    ann = osp.join(tiny_digits, 'annotations', 'instances_val.json')
    samples = fake_results(ann)
    rounded = evaluate(CocoMetric(ann_file=ann, metric='bbox'), samples)
    precise = evaluate(
        PreciseCocoMetric(ann_file=ann, metric='bbox'), fake_results(ann))
    assert rounded.keys() == precise.keys()
    for key, value in rounded.items():
        assert round(precise[key], 3) == pytest.approx(value, abs=1e-9), key
    assert 0 < precise['coco/bbox_mAP'] < 1
    assert any(v != round(v, 3) for v in precise.values())


def test_results_in_memory_give_what_the_json_files_give(
        tiny_digits, tmp_path):
    from mmdet.evaluation.metrics import coco_metric
    ann = osp.join(tiny_digits, 'annotations', 'instances_val.json')
    prefix = str(tmp_path / 'kept')
    on_disk = evaluate(
        PreciseCocoMetric(ann_file=ann, metric='bbox', outfile_prefix=prefix),
        fake_results(ann, seed=1))
    assert osp.isfile(prefix + '.bbox.json')  # kept when asked for
    in_memory = evaluate(
        PreciseCocoMetric(ann_file=ann, metric='bbox'),
        fake_results(ann, seed=1))
    assert in_memory == on_disk
    # mmdet's module is left as it was
    from mmengine.fileio import dump, load
    assert coco_metric.dump is dump and coco_metric.load is load
