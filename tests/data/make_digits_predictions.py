"""Write ``digits_val_predictions.json.gz``: the ground truth of the first
100 digits val canvases and a trained detector's predictions on them, boxes
and masks, for the COCO backend tests (real predictions: overlapping boxes,
wrong labels, a long tail of low scores).

The boxes are the baseline FCOS's (configs/baselines/
fcos_r18w16_fpn_gn-head_12e_digits.py, trained 12 epochs: 0.766 bbox mAP),
dumped by mmdet's own metric (``outfile_prefix``). FCOS predicts no masks;
each detection's mask is the canvas's ink (pixels above 0.3, as the
digits' own masks are drawn) inside its box, so the masks overlap the
digits' masks as a segmenter's would, more or less well.

    python tests/data/make_digits_predictions.py \
        work_dirs/nsga2_fcos_whole-elastic_r18w16_digits/baseline/epoch_12.pth
"""
import argparse
import gzip
import json
import os
import os.path as osp
import subprocess
import sys
import tempfile

import numpy as np

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(osp.dirname(HERE))
CONFIG = 'configs/baselines/fcos_r18w16_fpn_gn-head_12e_digits.py'
NUM_IMAGES = 100


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('checkpoint', help="the baseline FCOS's checkpoint")
    parser.add_argument(
        '--out', default=osp.join(HERE, 'digits_val_predictions.json.gz'))
    args = parser.parse_args()
    import mmcv
    from pycocotools import mask as mask_utils

    with tempfile.TemporaryDirectory() as tmp:
        prefix = osp.join(tmp, 'results')
        subprocess.run([
            sys.executable, 'tools/test.py', CONFIG, args.checkpoint,
            '--work-dir', tmp, '--cfg-options',
            f'test_evaluator.outfile_prefix={prefix}'
        ],
                       cwd=ROOT,
                       check=True)
        boxes = json.load(open(prefix + '.bbox.json'))
    gt = json.load(
        open(osp.join(ROOT, 'data/digits/annotations/'
                      'instances_val.json')))
    images = gt['images'][:NUM_IMAGES]
    keep = {img['id']: img for img in images}
    predictions = []
    for det in boxes:
        if det['image_id'] not in keep:
            continue
        img = keep[det['image_id']]
        canvas = mmcv.imread(
            osp.join(ROOT, 'data/digits/images/val', img['file_name']),
            flag='grayscale').astype(np.float32) / 255
        x, y, w, h = det['bbox']
        x0, y0 = max(int(np.floor(x)), 0), max(int(np.floor(y)), 0)
        x1, y1 = int(np.ceil(x + w)), int(np.ceil(y + h))
        mask = np.zeros(canvas.shape, np.uint8)
        mask[y0:y1, x0:x1] = canvas[y0:y1, x0:x1] > 0.3
        rle = mask_utils.encode(np.asfortranarray(mask))
        rle['counts'] = rle['counts'].decode()
        predictions.append(
            dict(
                image_id=det['image_id'],
                category_id=det['category_id'],
                bbox=[round(v, 3) for v in det['bbox']],
                score=round(det['score'], 5),
                segmentation=rle))
    fixture = dict(
        source=dict(
            config=CONFIG, checkpoint=args.checkpoint, images=NUM_IMAGES),
        ground_truth=dict(
            images=images,
            categories=gt['categories'],
            annotations=[
                a for a in gt['annotations'] if a['image_id'] in keep
            ]),
        predictions=predictions)
    tmp_out = args.out + '.tmp'
    data = json.dumps(fixture, separators=(',', ':')).encode()
    with open(tmp_out, 'wb') as raw, gzip.GzipFile(
            fileobj=raw, mode='wb', mtime=0) as f:  # the same bytes each run
        f.write(data)
    os.replace(tmp_out, args.out)
    print(f'{len(predictions)} predictions on {len(images)} images '
          f'-> {args.out} ({osp.getsize(args.out) / 1e3:.0f} kB)')


if __name__ == '__main__':
    main()
