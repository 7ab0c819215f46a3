# FCOS baseline on digits: mmdet's FCOS (center sampling, bbox normalisation,
# centerness on the regression branch, GIoU: the zoo's improved recipe) with a
# ResNet-18 at base width 16 trained from scratch, 3 FPN levels (strides 8 to
# 32) sized for 128 px canvases. Not a supernet: the reference that searched
# architectures are compared against.
_base_ = [
    'mmdet::fcos/fcos_r50-caffe_fpn_gn-head-center-normbbox-centeronreg-giou_1x_coco.py',  # noqa: E501
    '../_base_/models/digits_r18w16_fpn.py',
    '../_base_/datasets/digits_detection.py',
    '../_base_/schedules/digits_cosine.py',
]
custom_imports = dict(imports=['mmnas_tricks'], allow_failed_imports=False)

model = dict(
    data_preprocessor=dict(
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32),
    backbone=_base_.digits_backbone,
    neck=_base_.digits_neck,
    bbox_head=dict(
        num_classes=10,
        in_channels=64,
        feat_channels=64,
        stacked_convs=4,
        strides=[8, 16, 32],
        regress_ranges=((-1, 32), (32, 64), (64, 1e8)),
        norm_cfg=dict(type='GN', num_groups=16, requires_grad=True)),
    test_cfg=dict(nms_pre=1000, score_thr=0.05, max_per_img=100))

train_dataloader = _base_.digits_train_dataloader
val_dataloader = _base_.digits_val_dataloader
val_evaluator = _base_.digits_val_evaluator
# the test split, scored for reports only (tools/test.py, tools/train.py
# --test): val is the development split
test_dataloader = _base_.digits_test_dataloader
test_evaluator = _base_.digits_test_evaluator

train_cfg = _base_.digits_train_cfg
param_scheduler = _base_.digits_param_scheduler
optim_wrapper = _base_.digits_optim_wrapper

default_hooks = dict(
    logger=dict(interval=25),
    checkpoint=dict(interval=4, max_keep_ckpts=2, save_best='auto'))
auto_scale_lr = dict(enable=False, base_batch_size=16)
