# NAS-FCOS search space on COCO started from mmdet's released NAS-FCOS
# (39.4 box AP; for GPU machines): mmdet's NAS-FCOS config with its neck and
# head replaced by our NAS-FCOS neck / head space (7 cells over C3-C5 as
# mmdet's NASFCOS_FPN builds them, start_level=1; NAS-FCOS's six head ops),
# whose subnet configs/nas/subnets/nasfcos_published.yaml is mmdet's
# architecture. mmdet's weights go into that subnet (InheritWeightsHook;
# mmdet's NASFCOS_FPN keys are renamed on loading) and are spread to the
# other candidates where they fit; trained single-path (SPOS).
# docs/search_spaces/nasfcos_fpn.md, "mmdet's NAS-FCOS as a subnet".
_base_ = [
    'mmdet::nas_fcos/nas-fcos_r50-caffe_fpn_nashead-gn-head_4xb4-1x_coco.py',
    '../_base_/supernet/nasfcos_head_ops.py',
]
custom_imports = dict(imports=['mmnas_tricks'], allow_failed_imports=False)

model = dict(
    neck=dict(
        _delete_=True,
        type='mmnas_tricks.NASFCOSSearchFPN',
        in_channels=[256, 512, 1024, 2048],
        out_channels=256,
        start_level=1,
        num_outs=5,
        num_cells=7),
    bbox_head=dict(
        type='mmnas_tricks.SearchableFCOSHead',
        tower_ops=_base_.nasfcos_head_ops))

load_from = (
    'https://download.openmmlab.com/mmdetection/v2.0/nas_fcos/'
    'nas_fcos_nashead_r50_caffe_fpn_gn-head_4x4_1x_coco/'
    'nas_fcos_nashead_r50_caffe_fpn_gn-head_4x4_1x_coco_20200520-1bdba3ce.pth')
# one-shot supernet training (single path, SPOS), from the released weights
custom_hooks = [
    dict(
        type='mmnas_tricks.InheritWeightsHook',
        subnet='configs/nas/subnets/nasfcos_published.yaml'),
    dict(type='mmnas_tricks.SampleSubnetHook', seed=0),
]
find_unused_parameters = True

# mmdet's CocoMetric (the base config's settings) on faster-coco-eval's C++
# evaluation: the same statistics as pycocotools, a few times faster
val_evaluator = dict(type='mmnas_tricks.FastCocoMetric')
test_evaluator = val_evaluator
