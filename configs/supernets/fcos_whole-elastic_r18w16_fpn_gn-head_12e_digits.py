# The whole-detector elastic space for FCOS on digits (Once-for-All style:
# every choice shares weights): input size, per-stage backbone depth and
# width, per-block kernel, FPN width, tower width and depth, and every FPN /
# tower conv's (kernel size, dilation). The first choice of every mutable is
# the baseline FCOS (configs/baselines/fcos_r18w16_fpn_gn-head_12e_digits.py:
# 128 px, ResNet-18 at base width 16, 64-channel FPN and towers), so the
# trained baseline's weights load into its first subnet; the largest widths
# hold the weights (backbone 24/48/96/192, FPN and towers 96), a smaller one
# uses their first channels. GroupNorm keeps 4 channels per group, so its
# groups follow the tower width. Search space and FLOPs range:
# python tools/analysis/space_info.py CONFIG
# (docs/search_spaces/whole_detector.md).
_base_ = [
    '../baselines/fcos_r18w16_fpn_gn-head_12e_digits.py',
    '../_base_/supernet/spos.py',
]

CONV_SHAPES = [(3, 1), (3, 2), (5, 1), (1, 1)]
WIDTHS = [64, 32, 40, 48, 56, 80, 96]  # FPN and towers; 96 = the largest
model = dict(
    data_preprocessor=dict(
        type='mmnas_tricks.SearchableDetDataPreprocessor',
        sizes=[128, 96, 160, 192],  # multiples of the pad divisor 32
        base_size=128),
    backbone=dict(
        _delete_=True,
        type='mmnas_tricks.SearchableResNet',
        base_channels=16,
        depths=((2, 1, 3), ) * 4,
        kernel_sizes=(3, 5),
        width_ratios=(1.0, 0.5, 0.625, 0.75, 0.875, 1.25, 1.5),
        out_indices=(1, 2, 3)),
    neck=dict(
        type='mmnas_tricks.SearchableFPN',
        in_channels=[48, 96, 192],
        out_channels=96,
        widths=WIDTHS,
        output_ops=CONV_SHAPES,
        lateral_ops=[(1, 1), (3, 1)]),
    bbox_head=dict(
        type='mmnas_tricks.SearchableFCOSHead',
        in_channels=96,
        feat_channels=96,
        widths=WIDTHS,
        tower_ops=CONV_SHAPES,
        tower_depths=(4, 3, 2),
        norm_cfg=dict(type='GN', num_groups=24, requires_grad=True)))
