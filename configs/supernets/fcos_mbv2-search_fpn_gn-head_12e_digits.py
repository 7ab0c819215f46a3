# Backbone search for FCOS on digits: a MobileNetV2 / Once-for-All supernet
# (per block kernel {3, 5, 7} x expansion {3, 6}, per stage depth, width
# {1, 0.75, 0.5} of the stages that do not feed the FPN) at width 0.5 in
# place of the baseline's ResNet-18, trained single-path.
# Search space: 9.6e+19 subnets, counting the choices of blocks past the
# chosen depth (python tools/analysis/space_info.py CONFIG).
_base_ = [
    '../baselines/fcos_r18w16_fpn_gn-head_12e_digits.py',
    '../_base_/supernet/spos.py',
]

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmnas_tricks.SearchableMobileNetV2',
        widen_factor=0.5,
        width_ratios=(1.0, 0.75, 0.5),
        out_indices=(1, 3, 5)),
    neck=dict(in_channels=[16, 48, 160]))
