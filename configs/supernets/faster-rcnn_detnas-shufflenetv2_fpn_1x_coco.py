# DetNAS backbone search with Faster R-CNN on COCO (for GPU machines), the
# detector of the DetNAS paper: the ShuffleNetV2 choice-block supernet of
# DetNAS-300M (blocks 4-4-8-4, channels 64-160-320-640) under mmdet's Faster
# R-CNN R50-FPN 1x neck, RPN and RoI head (data paths and schedule of the
# original); trained single-path. DetNAS pre-trains this supernet on
# ImageNet first (not shipped here).
_base_ = [
    'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
    '../_base_/supernet/spos.py',
]
custom_imports = dict(imports=['mmnas_tricks'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmnas_tricks.SearchableShuffleNetV2',
        out_indices=(0, 1, 2, 3)),
    neck=dict(in_channels=[64, 160, 320, 640]))

# mmdet's CocoMetric (the base config's settings) on faster-coco-eval's C++
# evaluation: the same statistics as pycocotools, a few times faster
val_evaluator = dict(type='mmnas_tricks.FastCocoMetric')
test_evaluator = val_evaluator
