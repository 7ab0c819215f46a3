# Weight-sharing neck and head search for FCOS on digits: every 3x3 conv of
# mmdet's FPN (outputs) and of the GroupNorm head towers chooses its
# (kernel size, dilation) from CONV_SHAPES with one shared weight (a smaller
# kernel is the centre of the 5x5; ConvShapeChoice), every FPN lateral 1x1
# or 3x3 likewise, and each tower its depth {4, 3, 2}. The first choice of
# every mutable is the baseline FCOS
# (configs/baselines/fcos_r18w16_fpn_gn-head_12e_digits.py).
# Shared weights are what let a single-path supernet of a residual-free head
# learn: with independent candidates (the op space of
# fcos_r18w16_fpn-search_gn-head-search_12e_digits.py) it did not
# (docs/search_spaces/elastic_convs.md).
_base_ = [
    '../baselines/fcos_r18w16_fpn_gn-head_12e_digits.py',
    '../_base_/supernet/spos.py',
]

CONV_SHAPES = [(3, 1), (3, 2), (3, 3), (5, 1), (1, 1)]
model = dict(
    neck=dict(
        type='mmnas_tricks.SearchableFPN',
        output_ops=CONV_SHAPES,
        lateral_ops=[(1, 1), (3, 1)]),
    bbox_head=dict(
        type='mmnas_tricks.SearchableFCOSHead',
        tower_ops=CONV_SHAPES,
        tower_depths=(4, 3, 2)))
