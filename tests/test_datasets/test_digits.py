import json
import os
import os.path as osp
import shutil

import numpy as np
import pytest

from mmnas_tricks.datasets import (CLASSES, DigitsDatasetError, DigitsSpec,
                                   build_digits, check_digits, ensure_digits)
from mmnas_tricks.datasets.digits_builder import load_mnist, split_sources
from ..conftest import TINY_SPEC


def _ann(root, split):
    with open(osp.join(root, 'annotations', f'instances_{split}.json')) as f:
        return json.load(f)


def test_real_mnist_source():
    x, y = load_mnist()
    assert x.shape == (5000, 28, 28) and x.dtype == np.uint8
    assert sorted(set(y.tolist())) == list(range(10))


def test_train_and_val_never_share_a_source_digit(tiny_digits):
    src = {
        split:
        {a['source_index']
         for a in _ann(tiny_digits, split)['annotations']}
        for split in ('train', 'val')
    }
    assert src['train'] and src['val']
    assert not src['train'] & src['val']
    # and the split itself is disjoint and complete
    parts = split_sources(5000, DigitsSpec(**TINY_SPEC))
    assert not set(parts['train']) & set(parts['val'])
    assert len(parts['train']) + len(parts['val']) == 5000


def test_deterministic_from_seed(tmp_path, tiny_digits):
    again = str(tmp_path / 'again')
    build_digits(again, DigitsSpec(**TINY_SPEC), progress=False)
    for split in ('train', 'val'):
        assert _ann(again, split) == _ann(tiny_digits, split)
        for name in ('000000.png', '000007.png'):
            for sub in ('images', 'seg_maps'):
                with open(osp.join(again, sub, split, name), 'rb') as a, \
                        open(osp.join(tiny_digits, sub, split, name),
                             'rb') as b:
                    assert a.read() == b.read()
    other = str(tmp_path / 'other')
    build_digits(other, DigitsSpec(**dict(TINY_SPEC, seed=4)), progress=False)
    assert _ann(other, 'train') != _ann(tiny_digits, 'train')


def test_another_draw_renders_new_canvases_of_the_same_sources(
        tmp_path, tiny_digits):
    """draw=1: a held-out split that no draw-0 training saw, from the same
    training digits (and none of the val digits)."""
    other = str(tmp_path / 'draw1')
    build_digits(other, DigitsSpec(**dict(TINY_SPEC, draw=1)), progress=False)
    parts = split_sources(5000, DigitsSpec(**TINY_SPEC))
    drawn = _ann(other, 'train')
    assert drawn['annotations'] != _ann(tiny_digits, 'train')['annotations']
    with open(osp.join(other, 'images', 'train', '000000.png'), 'rb') as a, \
            open(osp.join(tiny_digits, 'images', 'train', '000000.png'),
                 'rb') as b:
        assert a.read() != b.read()
    sources = {a['source_index'] for a in drawn['annotations']}
    assert sources <= set(parts['train'].tolist())
    assert not sources & set(parts['val'].tolist())
    with pytest.raises(ValueError, match='draw=-1'):
        DigitsSpec(draw=-1)


def test_a_build_from_before_a_spec_key_has_its_default(tmp_path, tiny_digits):
    old = str(tmp_path / 'old')
    shutil.copytree(tiny_digits, old)
    meta_path = osp.join(old, 'meta.json')
    with open(meta_path) as f:
        meta = json.load(f)
    del meta['spec']['draw']
    with open(meta_path, 'w') as f:
        json.dump(meta, f)
    check_digits(old, DigitsSpec(**TINY_SPEC))
    with pytest.raises(DigitsDatasetError, match=r"'draw': \(0, 1\)"):
        check_digits(old, DigitsSpec(**dict(TINY_SPEC, draw=1)))


def test_boxes_masks_and_seg_maps_agree(tiny_digits):
    import cv2
    from pycocotools import mask as mask_utils
    coco = _ann(tiny_digits, 'train')
    assert len(coco['images']) == TINY_SPEC['num_train']
    assert [c['name'] for c in coco['categories']] == list(CLASSES)
    by_image = {}
    for a in coco['annotations']:
        by_image.setdefault(a['image_id'], []).append(a)
    for img in coco['images'][:10]:
        seg = cv2.imread(
            osp.join(tiny_digits, 'seg_maps', 'train', img['file_name']),
            cv2.IMREAD_UNCHANGED)
        assert seg.shape == (128, 128)
        expected = np.zeros_like(seg)
        for a in by_image.get(img['id'], []):
            m = mask_utils.decode(a['segmentation']).astype(bool)
            ys, xs = np.nonzero(m)
            x, y, w, h = a['bbox']
            assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == \
                (x, y, x + w, y + h)
            assert a['area'] == m.sum()
            # category ids 1..10, seg labels 1 + digit
            expected[m] = a['category_id']
        assert (seg == expected).all()


def test_check_detects_missing_and_half_written(tmp_path, tiny_digits):
    with pytest.raises(DigitsDatasetError, match='does not exist'):
        check_digits(str(tmp_path / 'nope'))
    half = str(tmp_path / 'half')
    shutil.copytree(tiny_digits, half)
    os.remove(osp.join(half, 'meta.json'))
    with pytest.raises(DigitsDatasetError, match='incomplete.*meta.json'):
        check_digits(half)
    # ensure_digits never overwrites such a folder
    with pytest.raises(DigitsDatasetError, match='incomplete'):
        ensure_digits(half, DigitsSpec(**TINY_SPEC))
    lost = str(tmp_path / 'lost')
    shutil.copytree(tiny_digits, lost)
    os.remove(osp.join(lost, 'images', 'val', '000003.png'))
    with pytest.raises(DigitsDatasetError, match=r'images/val \(15 of 16'):
        check_digits(lost)
    with pytest.raises(DigitsDatasetError, match='another spec.*num_val'):
        check_digits(tiny_digits, DigitsSpec(**dict(TINY_SPEC, num_val=17)))


def test_interrupted_build_leaves_no_dataset(tmp_path, monkeypatch):
    from mmnas_tricks.datasets import digits_builder

    calls = {'n': 0}
    real = digits_builder.render_canvas

    def dying(*args, **kwargs):
        calls['n'] += 1
        if calls['n'] == 5:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(digits_builder, 'render_canvas', dying)
    root = str(tmp_path / 'digits')
    with pytest.raises(KeyboardInterrupt):
        build_digits(root, DigitsSpec(**TINY_SPEC), progress=False)
    assert not osp.exists(root)
    assert os.listdir(tmp_path) == []  # the temporary folder is gone too


def test_bad_spec_names_the_problem():
    with pytest.raises(ValueError, match='max_scale=200 > image_size=128'):
        DigitsSpec(max_scale=200)
    with pytest.raises(
            ValueError, match=r"unknown digits spec keys \['nmu_train'\]"):
        DigitsSpec.from_dict(dict(nmu_train=3))


def _coco(cls, root):
    return cls(
        data_root=root,
        digits_spec=TINY_SPEC,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='images/val/'),
        test_mode=True,
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
        ])


def test_coco_dataset_and_metric(tiny_digits):
    import torch
    from mmdet.evaluation import CocoMetric
    from mmdet.utils import register_all_modules
    from mmengine.registry import DefaultScope

    from mmnas_tricks.datasets import DigitsCocoDataset
    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('mmdet'):
        ds = _coco(DigitsCocoDataset, tiny_digits)
        item = ds[0]
    assert len(ds) == TINY_SPEC['num_val']
    assert item['img'].shape == (128, 128, 3)
    assert item['gt_masks'].masks.shape[0] == len(item['gt_bboxes'])
    # ground truth as predictions scores a perfect mAP
    metric = CocoMetric(
        ann_file=osp.join(tiny_digits, 'annotations/instances_val.json'),
        metric='bbox')
    metric.dataset_meta = ds.metainfo
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        boxes = torch.tensor([inst['bbox'] for inst in info['instances']],
                             dtype=torch.float32).reshape(-1, 4)
        labels = torch.tensor(
            [inst['bbox_label'] for inst in info['instances']])
        metric.process({}, [
            dict(
                img_id=info['img_id'],
                ori_shape=(128, 128),
                pred_instances=dict(
                    bboxes=boxes, scores=torch.ones(len(boxes)),
                    labels=labels))
        ])
    result = metric.evaluate(len(ds))
    assert result['coco/bbox_mAP'] == pytest.approx(1.0)


def test_seg_dataset_and_metric(tiny_digits):
    import torch
    from mmengine.registry import DefaultScope
    from mmengine.structures import PixelData
    from mmseg.evaluation import IoUMetric
    from mmseg.structures import SegDataSample
    from mmseg.utils import register_all_modules

    from mmnas_tricks.datasets import DigitsSegDataset
    register_all_modules(init_default_scope=False)
    metric = IoUMetric(iou_metrics=['mIoU'])
    with DefaultScope.overwrite_default_scope('mmseg'):
        ds = DigitsSegDataset(
            data_root=tiny_digits,
            digits_spec=TINY_SPEC,
            data_prefix=dict(
                img_path='images/val', seg_map_path='seg_maps/val'),
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='LoadAnnotations'),
            ])
        assert len(ds) == TINY_SPEC['num_val']
        assert ds.metainfo['classes'][0] == 'background'
        assert len(ds.metainfo['classes']) == 11
        assert set(np.unique(ds[0]['gt_seg_map'])) <= set(range(11))
        metric.dataset_meta = ds.metainfo
        for i in range(len(ds)):
            gt = torch.from_numpy(ds[i]['gt_seg_map'].astype(np.int64))
            sample = SegDataSample()
            sample.pred_sem_seg = PixelData(data=gt[None])
            sample.gt_sem_seg = PixelData(data=gt[None])
            metric.process({}, [sample.to_dict()])
    result = metric.compute_metrics(metric.results)
    assert result['mIoU'] == pytest.approx(100.0)


def test_dataset_builds_the_data_on_first_use(tmp_path):
    from mmengine.registry import DefaultScope

    from mmnas_tricks.datasets import DigitsCocoDataset
    root = str(tmp_path / 'auto' / 'digits')
    spec = dict(num_train=6, num_val=4, seed=5)
    with DefaultScope.overwrite_default_scope('mmdet'):
        ds = DigitsCocoDataset(
            data_root=root,
            digits_spec=spec,
            ann_file='annotations/instances_val.json',
            data_prefix=dict(img='images/val/'),
            test_mode=True,
            pipeline=[])
    assert len(ds) == 4
    assert check_digits(root,
                        DigitsSpec(**spec))['counts']['val']['images'] == 4
    # a second dataset on the same folder reuses it, and another spec is
    # refused rather than overwritten
    with pytest.raises(DigitsDatasetError, match='another spec'):
        DigitsCocoDataset(
            data_root=root,
            digits_spec=dict(spec, seed=6),
            ann_file='annotations/instances_val.json',
            data_prefix=dict(img='images/val/'),
            test_mode=True,
            pipeline=[])


def test_build_tool_errors(repo_root, tmp_path):
    import subprocess
    import sys
    tool = 'tools/dataset_converters/build_digits.py'
    out = subprocess.run(
        [sys.executable, tool, str(tmp_path)],
        cwd=repo_root,
        capture_output=True,
        text=True)
    assert out.returncode == 1
    assert 'already exists' in out.stderr and 'Traceback' not in out.stderr
    out = subprocess.run(
        [sys.executable, tool,
         str(tmp_path / 'd'), '--max-scale', '300'],
        cwd=repo_root,
        capture_output=True,
        text=True)
    assert out.returncode == 1
    assert 'max_scale=300 > image_size=128' in out.stderr
    assert not (tmp_path / 'd').exists()


def test_subsets_split_the_images_in_order(tiny_digits):
    """subset=(a, b) keeps a fraction range: the supernet / held-out split
    of search. Detection and segmentation agree; bad ranges are refused."""
    from mmengine.registry import DefaultScope

    from mmnas_tricks.datasets import DigitsCocoDataset, DigitsSegDataset

    def coco(subset):
        return DigitsCocoDataset(
            data_root=tiny_digits,
            digits_spec=TINY_SPEC,
            ann_file='annotations/instances_train.json',
            data_prefix=dict(img='images/train/'),
            subset=subset,
            pipeline=[])

    def seg(subset):
        return DigitsSegDataset(
            data_root=tiny_digits,
            digits_spec=TINY_SPEC,
            data_prefix=dict(
                img_path='images/train', seg_map_path='seg_maps/train'),
            subset=subset,
            pipeline=[])

    with DefaultScope.overwrite_default_scope('mmdet'):
        whole = coco(None)  # built once: each build checks the files
        full = [whole[i]['img_path'] for i in range(len(whole))]
        head = coco((0, 0.875))
        tail = coco((0.875, 1))
    assert len(full) == TINY_SPEC['num_train']
    assert len(head) == 42 and len(tail) == 6
    assert [head[i]['img_path'] for i in range(len(head))] + \
        [tail[i]['img_path'] for i in range(len(tail))] == full
    with DefaultScope.overwrite_default_scope('mmseg'):
        seg_head, seg_tail = seg((0, 0.875)), seg((0.875, 1))
    assert len(seg_head) == 42 and len(seg_tail) == 6
    for bad in [(0.5, 0.5), (-0.1, 1), (0, 1.5), (1, ), 'all']:
        with pytest.raises(ValueError, match='subset='):
            coco(bad)
