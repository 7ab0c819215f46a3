# NAS-FCOS search space on COCO (for GPU machines): 7 FPN cells over C3-C5 of
# mmdet's caffe ResNet-50 (P6, P7 by stride-2 convs) and the FCOS head towers
# with NAS-FCOS's six ops per layer, GroupNorm; trained single-path.
# Search space: 4.3e+28 subnets (neck 2.6e+22, head 1.7e+06)
# (python tools/analysis/space_info.py CONFIG).
_base_ = [
    'mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py',
    '../_base_/supernet/spos.py',
    '../_base_/supernet/nasfcos_head_ops.py',
]
custom_imports = dict(imports=['mmnas_tricks'], allow_failed_imports=False)

model = dict(
    backbone=dict(out_indices=(1, 2, 3)),
    neck=dict(
        _delete_=True,
        type='mmnas_tricks.NASFCOSSearchFPN',
        in_channels=[512, 1024, 2048],
        out_channels=256,
        num_outs=5,
        num_cells=7),
    bbox_head=dict(
        type='mmnas_tricks.SearchableFCOSHead',
        tower_ops=_base_.nasfcos_head_ops))

# mmdet's CocoMetric (the base config's settings) on faster-coco-eval's C++
# evaluation: the same statistics as pycocotools, a few times faster
val_evaluator = dict(type='mmnas_tricks.FastCocoMetric')
test_evaluator = val_evaluator
