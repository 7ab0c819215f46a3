# Neck and head search for FCOS on digits: an op choice per lateral and per
# output connection of mmdet's FPN, and per layer of the GroupNorm head
# towers (conv 3x3, separable 3x3 / 5x5, dilated 3x3, deformable 3x3, skip),
# with tower depth {4, 3, 2}. The first choice of every mutable is the
# baseline FCOS (configs/baselines/fcos_r18w16_fpn_gn-head_12e_digits.py).
_base_ = [
    '../baselines/fcos_r18w16_fpn_gn-head_12e_digits.py',
    '../_base_/supernet/spos.py',
]

model = dict(
    neck=dict(type='mmnas_tricks.SearchableFPN'),
    bbox_head=dict(
        type='mmnas_tricks.SearchableFCOSHead', tower_depths=(4, 3, 2)))
