"""A trained detector's predictions on the digits val canvases, recorded
(``tests/data/digits_val_predictions.json.gz``, written by
``tests/data/make_digits_predictions.py``): what the COCO backend tests and
the evaluation benchmark score."""
import gzip
import json
import os.path as osp
from typing import List, Optional

import numpy as np
import torch

#: the recorded predictions, in a source checkout
DIGITS_PREDICTIONS = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'tests',
    'data', 'digits_val_predictions.json.gz')


def load_digits_predictions(path: Optional[str] = None) -> dict:
    """The recording: ``ground_truth`` (a COCO annotation dict: images,
    categories, annotations with RLE masks), ``predictions`` (COCO result
    dicts with ``bbox``, ``score`` and an RLE ``segmentation``) and
    ``source``."""
    path = path or DIGITS_PREDICTIONS
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'{path}: no recorded predictions (a source checkout has them; '
            'tests/data/make_digits_predictions.py writes them)')
    with gzip.open(path, 'rt') as f:
        return json.load(f)


def as_data_samples(recording: dict,
                    masks: bool = True,
                    ground_truth: bool = False) -> List[dict]:
    """The recorded predictions as mmdet's detector outputs, one dict per
    image of the ground truth (what ``CocoMetric.process`` takes); with
    ``ground_truth`` each also carries its image's boxes as ``instances``
    (what a metric without ``ann_file`` converts, as the search's held-out
    split has it)."""
    from pycocotools import mask as mask_utils
    gt = recording['ground_truth']
    cat_index = {c['id']: i for i, c in enumerate(gt['categories'])}
    by_image = {img['id']: [] for img in gt['images']}
    for det in recording['predictions']:
        by_image[det['image_id']].append(det)
    anns = {}
    for ann in gt['annotations']:
        anns.setdefault(ann['image_id'], []).append(ann)
    samples = []
    for img in gt['images']:
        dets = by_image[img['id']]
        boxes = [[x, y, x + w, y + h]
                 for x, y, w, h in (d['bbox'] for d in dets)]
        pred = dict(
            bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            scores=torch.tensor([d['score'] for d in dets]),
            labels=torch.tensor([cat_index[d['category_id']] for d in dets],
                                dtype=torch.long))
        if masks:
            decoded = [
                mask_utils.decode(
                    dict(
                        size=d['segmentation']['size'],
                        counts=d['segmentation']['counts'].encode()))
                for d in dets
            ]
            pred['masks'] = torch.from_numpy(
                np.stack(decoded).astype(bool) if decoded else np.zeros((
                    0, img['height'], img['width']), bool))
        samples.append(
            dict(
                img_id=img['id'],
                ori_shape=(img['height'], img['width']),
                pred_instances=pred))
        if ground_truth:
            samples[-1]['instances'] = [
                dict(
                    bbox=[x, y, x + w, y + h],
                    bbox_label=cat_index[ann['category_id']],
                    ignore_flag=0) for ann in anns.get(img['id'], [])
                for x, y, w, h in [ann['bbox']]
            ]
    return samples
