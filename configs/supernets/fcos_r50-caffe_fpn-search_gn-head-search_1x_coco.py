# FCOS neck and head search on COCO from the model zoo (for GPU machines):
# mmdet's FCOS R50-caffe FPN GN-head 1x config with an op choice per FPN
# connection and per head tower layer (conv 3x3, separable 3x3 / 5x5,
# dilated 3x3, deformable 3x3, skip; tower depth {4, 3, 2}), trained
# single-path. The first choice of every mutable is mmdet's FCOS, so the
# supernet starts from its model-zoo checkpoint: InheritWeightsHook puts each
# plain weight into that choice and into every candidate of the same op and
# shape (report: <work_dir>/inherit_report.json).
_base_ = [
    'mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py',
    '../_base_/supernet/spos.py',
]
custom_imports = dict(imports=['mmnas_tricks'], allow_failed_imports=False)

model = dict(
    neck=dict(type='mmnas_tricks.SearchableFPN'),
    bbox_head=dict(
        type='mmnas_tricks.SearchableFCOSHead', tower_depths=(4, 3, 2)))
load_from = ('https://download.openmmlab.com/mmdetection/v2.0/fcos/'
             'fcos_r50_caffe_fpn_gn-head_1x_coco/'
             'fcos_r50_caffe_fpn_gn-head_1x_coco-821213aa.pth')
custom_hooks = [
    dict(type='mmnas_tricks.InheritWeightsHook'),
    dict(type='mmnas_tricks.SampleSubnetHook', seed=0),
]

# mmdet's CocoMetric (the base config's settings) on faster-coco-eval's C++
# evaluation: the same statistics as pycocotools, a few times faster
val_evaluator = dict(type='mmnas_tricks.FastCocoMetric')
test_evaluator = val_evaluator
