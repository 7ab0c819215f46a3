# The whole-segmentor elastic space for Semantic FPN on digits (Once-for-All
# style: every choice shares weights): input size, per-stage backbone depth
# and width, per-block kernel, FPN width, head width, and the kernel of every
# FPN and scale-head conv. The first choice of every mutable is the baseline
# (configs/baselines/fpn_r18w16_12e_digits-seg.py: 128 px, mmseg's
# ResNetV1c-18 at base width 16, a 64-channel FPN and head), so the trained
# baseline's weights load into its first subnet; the largest widths hold the
# weights (backbone 24/48/96/192, FPN and head 96). Search space and FLOPs
# range: python tools/analysis/space_info.py CONFIG
# (docs/search_spaces/whole_detector.md).
_base_ = [
    '../baselines/fpn_r18w16_12e_digits-seg.py',
    '../_base_/supernet/spos.py',
]

KERNELS = [(3, 1), (5, 1)]
WIDTHS = [64, 32, 40, 48, 56, 80, 96]  # FPN and head; 96 = the largest
model = dict(
    data_preprocessor=dict(
        type='mmnas_tricks.SearchableSegDataPreprocessor',
        sizes=[128, 96, 160, 192],  # multiples of the pad divisor 32
        base_size=128),
    backbone=dict(
        _delete_=True,
        type='mmnas_tricks.SearchableResNet',
        base_channels=16,
        depths=((2, 1, 3), ) * 4,
        kernel_sizes=(3, 5),
        width_ratios=(1.0, 0.5, 0.625, 0.75, 0.875, 1.25, 1.5),
        out_indices=(0, 1, 2, 3),
        deep_stem=True),
    neck=dict(
        type='mmnas_tricks.SearchableFPN',
        in_channels=[24, 48, 96, 192],
        out_channels=96,
        widths=WIDTHS,
        output_ops=KERNELS,
        lateral_ops=[(1, 1)]),
    decode_head=dict(
        type='mmnas_tricks.SearchableSemFPNHead',
        in_channels=[96, 96, 96, 96],
        channels=96,
        widths=WIDTHS,
        ops=KERNELS))
