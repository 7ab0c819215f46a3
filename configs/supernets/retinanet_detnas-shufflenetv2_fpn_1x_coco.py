# DetNAS backbone search with RetinaNet on COCO (for GPU machines): the
# ShuffleNetV2 choice-block supernet of DetNAS-300M (blocks 4-4-8-4, channels
# 64-160-320-640) under mmdet's RetinaNet FPN and head; trained single-path.
# DetNAS pre-trains this supernet on ImageNet first (not shipped here).
# Search space: 1.1e+12 (4^20) subnets
# (python tools/analysis/space_info.py CONFIG).
_base_ = [
    'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
    '../_base_/supernet/spos.py',
]
custom_imports = dict(imports=['mmnas_tricks'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmnas_tricks.SearchableShuffleNetV2',
        out_indices=(1, 2, 3)),
    neck=dict(in_channels=[160, 320, 640], start_level=0))

# mmdet's CocoMetric (the base config's settings) on faster-coco-eval's C++
# evaluation: the same statistics as pycocotools, a few times faster
val_evaluator = dict(type='mmnas_tricks.FastCocoMetric')
test_evaluator = val_evaluator
