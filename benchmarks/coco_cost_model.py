"""What a search on COCO costs, on paper, in GPU-days.

Two searches, each as this project runs it on digits, scaled to COCO
(118,287 training and 5,000 val images):

- ``neck_head``: the NAS-FCOS-style neck/head search
  (``configs/supernets/nasfcos_r50-caffe_fpn-cells-search_gn-head-search_
  1x_coco.py``: 7 FPN cells and the head towers over mmdet's caffe
  ResNet-50): a single-path supernet trained 1x (12 epochs), then an
  evolutionary search of ``--candidates`` subnets (the digits NAS-FCOS
  search's 8 generations x 16), each scored on the 5,000 val images. The
  neck and head use GroupNorm and the backbone's BatchNorms are frozen
  (``norm_eval``): nothing to calibrate.
- ``whole_detector``: the main job's whole-detector search (elastic
  backbone widths and depths, FPN width, tower depth and shapes, input
  size): the baseline FCOS trained 1x first (its weights are inherited),
  the supernet 6 epochs (the main job's 6 after a 12-epoch baseline) with
  the sandwich rule and in-place distillation, an NSGA-II search of 60
  candidates (5 generations x 12), each BN-calibrated on 10 batches of 16
  training images and scored on the val images, then the main job's six
  one-epoch re-rank fine-tunes. Retraining the picks (1x each) is listed
  apart, as the published search costs leave it out.

What is measured here (``--device``), what is taken from elsewhere:

- GPU seconds per iteration of the static FCOS R50-caffe GN-head 1x and
  its inference speed: mmdetection's published figures (``PUBLISHED``,
  V100), since no GPU run of ours at COCO size exists.
- The supernet's cost over that static model at COCO's input size (two
  800 x 1088 images per iteration, mmdet's per-GPU batch; 1333 x 800 with
  kept ratio, padded to 32, of a 640 x 480 COCO image): training
  (forward, loss, backward, SGD step; a random subnet each iteration)
  and inference (``predict``, one image) of the NAS-FCOS supernet against
  mmdet's FCOS, alternately, measured on ``--device`` (on the CPU the
  ratio stands in for the GPU's: overheads that are fixed per operation
  weigh less on a GPU's faster kernels, or more when it is underused).
  The supernet's ratio is that of its random subnets, whose ops (separable,
  dilated and deformable convs, seven FPN cells) cost more than FCOS's
  plain towers: what training it costs, not a weight-sharing overhead;
  deformable convs run as ``grid_sample`` on the CPU, which makes them
  dearer there than on a GPU, so the CPU ratio is an upper bound.
- The whole-detector supernet's inference overhead over the static model
  of the same subnet (its baseline subnet, digits batches of 16; no COCO
  config of that space exists), for its candidates' scoring.
- The whole-detector supernet's epoch against the baseline's: measured in
  the main job (docs/benchmarks.md: 6.22 min for 6 supernet epochs, 4.58
  min for the 12-epoch baseline, this CPU): 2.72x, the sandwich rule's
  four subnets and the distillation included.
- COCO evaluation of a candidate: ``mmnas_tricks.FastCocoMetric`` on 5,000
  synthetic images (7.3 boxes each, 80 classes, 100 detections per image,
  COCO's averages and mmdet's ``max_per_img``), timed here on the CPU
  (the host's work while the GPU waits; counted as GPU time).

Example:
    python benchmarks/coco_cost_model.py            # CPU, ~10 min
Writes benchmarks/results/coco_cost_model.json and prints the table of
docs/benchmarks.md.
"""
import argparse
import random
import time

import numpy as np
import torch
from common import (add_common_args, check_device, load_cfg, machine, median,
                    result_path, timed, write_result)

WORK_DIR = 'work_dirs/benchmarks/coco_cost_model'
STATIC = 'fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py'  # mmdet's
NECK_HEAD = ('configs/supernets/nasfcos_r50-caffe_fpn-cells-search_'
             'gn-head-search_1x_coco.py')
WHOLE_DETECTOR = ('configs/supernets/fcos_whole-elastic_r18w16_fpn_gn-head_'
                  '12e_digits.py')
COCO = dict(
    train_images=118287,
    val_images=5000,
    boxes_per_image=7.3,
    classes=80,
    detections_per_image=100)
PUBLISHED = dict(
    train_seconds_per_iter=0.396,
    images_per_iter=16,
    gpus=4,
    train_source='mmdetection v1.0rc1 configs/fcos/README.md: FCOS R-50 '
    'caffe, GN head, 1x, 4 GPUs x 4 images, 0.396 s/iter (V100)',
    inference_fps=22.7,
    inference_source='mmdetection 2.x configs/fcos/README.md: FCOS R-50 '
    'caffe, GN head, 1x, 22.7 fps (V100, batch 1)',
    epochs_1x=12)
# the main job's stages, this CPU (docs/benchmarks.md, "Main job": the
# uninterrupted run of 2026-12-06)
MAIN_JOB = dict(
    baseline_minutes=4.58,
    baseline_epochs=12,
    supernet_minutes=6.22,
    supernet_epochs=6,
    candidates=60,
    calib_images=160,
    rerank_finetunes=6,
    rerank_epochs=1,
    retrains=2)
NECK_HEAD_SEARCH = dict(candidates=128, supernet_epochs=12)
# search costs as their papers report them (GPU-days, search only)
PEERS = {
    'NAS-FCOS (Wang et al., CVPR 2020)': 28,
    'DetNAS (Chen et al., NeurIPS 2019)': 44,
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--iters',
        type=int,
        default=3,
        help='timed training iterations per model and round')
    parser.add_argument(
        '--images',
        type=int,
        default=2,
        help='timed inference images per model and round')
    parser.add_argument('--rounds', type=int, default=3)
    add_common_args(parser)
    return parser.parse_args()


def build(config: str, device):
    from mmnas_tricks.utils.launch import build_model
    cfg = load_cfg(config, WORK_DIR)
    torch.manual_seed(0)
    model = build_model(cfg).to(device)  # no pretrained weights: timing
    return cfg, model


def coco_batch(model, training: bool, batch: int):
    """A preprocessed batch of ``batch`` 800 x 1088 images with COCO's
    average box count."""
    from mmdet.testing import demo_mm_inputs
    packed = demo_mm_inputs(
        batch, [[3, 800, 1088]] * batch,
        num_items=[round(COCO['boxes_per_image'])] * batch,
        num_classes=COCO['classes'],
        with_mask=False)
    return model.data_preprocessor(packed, training)


def step_timings(models: dict, args, device) -> dict:
    """Median seconds per training iteration and per inference image of
    each model, measured alternately; a supernet gets a random subnet
    before each iteration / image."""
    from mmengine.optim import build_optim_wrapper

    from mmnas_tricks.models.mutables import named_mutables, sample_subnet
    rng = random.Random(0)
    wrappers = {
        name: build_optim_wrapper(model, cfg.optim_wrapper.copy())
        for name, (cfg, model) in models.items()
    }

    def train(name, iters):
        cfg, model = models[name]
        model.train()
        searchable = bool(named_mutables(model))
        for _ in range(iters):
            if searchable:
                sample_subnet(model, rng)
            data = coco_batch(model, True, 2)
            losses = model(**data, mode='loss')
            loss, _ = model.parse_losses(losses)
            wrappers[name].update_params(loss)

    def infer(name, images):
        cfg, model = models[name]
        model.eval()
        searchable = bool(named_mutables(model))
        with torch.no_grad():
            for _ in range(images):
                if searchable:
                    sample_subnet(model, rng)
                model(**coco_batch(model, False, 1), mode='predict')

    for name in models:  # warm-up
        train(name, 1)
        infer(name, 1)
    seconds = {name: dict(train=[], infer=[]) for name in models}
    for r in range(args.rounds):
        for name in models:
            seconds[name]['train'].append(
                timed(lambda: train(name, args.iters), device) / args.iters)
            seconds[name]['infer'].append(
                timed(lambda: infer(name, args.images), device) / args.images)
            print(
                f'round {r}: {name} train '
                f'{seconds[name]["train"][-1]:.2f} s/iter, inference '
                f'{seconds[name]["infer"][-1]:.2f} s/image',
                flush=True)
    return seconds


def coco_eval_seconds(images: int = COCO['val_images'],
                      repeats: int = 2) -> dict:
    """Seconds of FastCocoMetric's compute_metrics on ``images`` synthetic
    COCO images (boxes drawn near the ground truth, so that matching does
    the work it does on real detections)."""
    from mmnas_tricks.engine.metrics import FastCocoMetric
    rng = np.random.default_rng(0)
    results = []
    n_img, k = images, COCO['detections_per_image']
    for i in range(n_img):
        n_gt = max(1, rng.poisson(COCO['boxes_per_image']))
        xy = rng.uniform(0, 500, (n_gt, 2))
        wh = rng.uniform(10, 200, (n_gt, 2))
        labels = rng.integers(0, COCO['classes'], n_gt)
        anns = [  # mmdet's instances: boxes as x1, y1, x2, y2
            dict(
                bbox=[float(x), float(y),
                      float(x + w),
                      float(y + h)],
                bbox_label=int(c),
                ignore_flag=0) for (x, y), (w, h), c in zip(xy, wh, labels)
        ]
        gt = dict(width=640, height=480, img_id=i, anns=anns)
        pick = rng.integers(0, n_gt, k)
        boxes = np.concatenate([xy[pick], xy[pick] + wh[pick]], 1)
        boxes += rng.normal(0, 8, boxes.shape)
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
        pred = dict(
            img_id=i,
            bboxes=boxes.astype(np.float32),
            scores=rng.uniform(0.05, 1, k).astype(np.float32),
            labels=np.where(
                rng.uniform(size=k) < 0.7, labels[pick],
                rng.integers(0, COCO['classes'], k)))
        results.append((gt, pred))
    seconds, stats = [], None
    for _ in range(repeats):
        metric = FastCocoMetric(metric='bbox')
        metric.dataset_meta = dict(
            classes=[f'c{i}' for i in range(COCO['classes'])])
        start = time.perf_counter()
        stats = metric.compute_metrics(results)
        seconds.append(time.perf_counter() - start)
    return dict(
        images=n_img,
        detections=n_img * k,
        seconds=[round(s, 2) for s in seconds],
        median_seconds=round(median(seconds), 2),
        bbox_mAP=round(stats['bbox_mAP'], 3))


def whole_detector_inference(args, device) -> dict:
    """Seconds per digits batch (16 images, 128 px) of the whole-detector
    supernet at its baseline subnet and of that subnet's static model,
    ``predict`` alternately: the supernet's inference overhead where its
    candidates are scored (no COCO config of this space exists)."""
    from common import digits_batches
    from supernet_overhead import build_pair
    cfg, supernet, static, _ = build_pair(WHOLE_DETECTOR)
    batches = digits_batches(cfg, 4, 16)
    seconds = dict(supernet=[], static=[])

    def run(model):
        model.to(device).eval()
        with torch.no_grad():
            for data in batches:
                model.test_step(data)

    for model in (supernet, static):
        run(model)  # warm-up
    for _ in range(args.rounds + 3):
        for name, model in (('supernet', supernet), ('static', static)):
            seconds[name].append(
                timed(lambda: run(model), device) / len(batches))
    med = {k: median(v) for k, v in seconds.items()}
    return dict(
        seconds_per_batch={k: round(v, 4)
                           for k, v in med.items()},
        ratio=round(med['supernet'] / med['static'], 3))


def gpu_days(seconds: float) -> float:
    return seconds / 86400


def cost_model(ratios: dict, eval_s: float) -> dict:
    """The two searches' GPU-days from the published static figures, the
    measured ratios and the measured COCO evaluation."""
    p = PUBLISHED
    iters_per_epoch = COCO['train_images'] / p['images_per_iter']
    static_epoch_gpu_s = iters_per_epoch * p['train_seconds_per_iter'] * \
        p['gpus']
    val_gpu_s = COCO['val_images'] / p['inference_fps']
    one_x = gpu_days(static_epoch_gpu_s * p['epochs_1x'])

    nh = NECK_HEAD_SEARCH
    nh_supernet = gpu_days(static_epoch_gpu_s * nh['supernet_epochs'] *
                           ratios['neck_head_train'])
    nh_candidate_s = val_gpu_s * ratios['neck_head_infer'] + eval_s
    nh_search = gpu_days(nh['candidates'] * nh_candidate_s)

    mj = MAIN_JOB
    epoch_ratio = (mj['supernet_minutes'] / mj['supernet_epochs']) / (
        mj['baseline_minutes'] / mj['baseline_epochs'])
    wd_supernet = gpu_days(static_epoch_gpu_s * mj['supernet_epochs'] *
                           epoch_ratio)
    # candidates at <= 1x the baseline's FLOPs: at most its inference time
    # (times the supernet's measured inference overhead); calibration
    # forwards 160 training images, counted at the inference speed
    calib_s = mj['calib_images'] / p['inference_fps']
    wd_candidate_s = (val_gpu_s + calib_s) * ratios['whole_detector_infer'] \
        + eval_s
    wd_search = gpu_days(mj['candidates'] * wd_candidate_s)
    wd_rerank = gpu_days(static_epoch_gpu_s * mj['rerank_finetunes'] *
                         mj['rerank_epochs'])
    rows = [
        dict(
            search='neck_head',
            stages=dict(
                supernet=round(nh_supernet, 2), candidates=round(nh_search,
                                                                 2)),
            candidates=nh['candidates'],
            seconds_per_candidate=round(nh_candidate_s, 1),
            search_gpu_days=round(nh_supernet + nh_search, 2),
            retrain_gpu_days=round(one_x, 2)),
        dict(
            search='whole_detector',
            stages=dict(
                baseline=round(one_x, 2),
                supernet=round(wd_supernet, 2),
                candidates=round(wd_search, 2),
                rerank=round(wd_rerank, 2)),
            candidates=mj['candidates'],
            seconds_per_candidate=round(wd_candidate_s, 1),
            supernet_epoch_ratio=round(epoch_ratio, 2),
            search_gpu_days=round(one_x + wd_supernet + wd_search + wd_rerank,
                                  2),
            retrain_gpu_days=round(mj['retrains'] * one_x, 2)),
    ]
    return dict(
        static_1x_gpu_days=round(one_x, 2),
        static_epoch_gpu_hours=round(static_epoch_gpu_s / 3600, 2),
        val_pass_gpu_seconds=round(val_gpu_s, 1),
        rows=rows)


def table(model: dict) -> str:
    lines = [
        '| search | stages (GPU-days) | candidates | s / candidate | '
        'search GPU-days | retrain GPU-days |', '|---|---|---|---|---|---|'
    ]
    for r in model['rows']:
        stages = ', '.join(f'{k} {v}' for k, v in r['stages'].items())
        lines.append(f'| {r["search"]} | {stages} | {r["candidates"]} | '
                     f'{r["seconds_per_candidate"]} | '
                     f'**{r["search_gpu_days"]}** | '
                     f'{r["retrain_gpu_days"]} |')
    for name, days in PEERS.items():
        lines.append(f'| {name} | (as published) | | | {days} | |')
    return '\n'.join(lines)


def main():
    from mmnas_tricks.testing import installed_config_path
    args = parse_args()
    device = check_device(args.device)
    models = dict(
        static=build(installed_config_path('mmdet', STATIC), device),
        neck_head=build(NECK_HEAD, device))
    seconds = step_timings(models, args, device)
    med = {n: {k: median(v) for k, v in s.items()} for n, s in seconds.items()}
    ratios = dict(
        neck_head_train=round(
            med['neck_head']['train'] / med['static']['train'], 3),
        neck_head_infer=round(
            med['neck_head']['infer'] / med['static']['infer'], 3))
    whole = whole_detector_inference(args, device)
    ratios['whole_detector_infer'] = whole['ratio']
    print(f'ratios {ratios}', flush=True)
    coco_eval = coco_eval_seconds()
    print(f'COCO evaluation {coco_eval}', flush=True)
    model = cost_model(ratios, coco_eval['median_seconds'])
    print(table(model))
    write_result(
        dict(
            machine(device),
            benchmark='coco_cost_model',
            input='2 x 800 x 1088 per training iteration, 1 x 800 x 1088 '
            'per inference image',
            iters=args.iters,
            images=args.images,
            rounds=args.rounds,
            seconds={
                n: {k: [round(x, 3) for x in v]
                    for k, v in s.items()}
                for n, s in seconds.items()
            },
            median_seconds={
                n: {k: round(v, 3)
                    for k, v in s.items()}
                for n, s in med.items()
            },
            ratios=ratios,
            whole_detector_inference_digits=whole,
            coco_eval=coco_eval,
            published=PUBLISHED,
            coco=COCO,
            main_job=MAIN_JOB,
            neck_head_search=NECK_HEAD_SEARCH,
            peers_gpu_days=PEERS,
            model=model,
            table=table(model),
            command='python benchmarks/coco_cost_model.py'),
        result_path('coco_cost_model', device, args.out))


if __name__ == '__main__':
    main()
