# NAS-FCOS-style neck and head search on digits: 7 FPN cells (two inputs
# from the growing pool, an op each, psum/cat aggregation) and the FCOS head
# towers with NAS-FCOS's six ops per layer (GroupNorm), on the baseline's
# ResNet-18 at base width 16.
# Search space: 4.3e+28 subnets (neck 2.6e+22, head 1.7e+06)
# (python tools/analysis/space_info.py CONFIG).
_base_ = [
    '../baselines/fcos_r18w16_fpn_gn-head_12e_digits.py',
    '../_base_/supernet/spos.py',
    '../_base_/supernet/nasfcos_head_ops.py',
]

model = dict(
    neck=dict(
        _delete_=True,
        type='mmnas_tricks.NASFCOSSearchFPN',
        in_channels=[32, 64, 128],
        out_channels=64,
        num_outs=3,
        num_cells=7),
    bbox_head=dict(
        type='mmnas_tricks.SearchableFCOSHead',
        tower_ops=_base_.nasfcos_head_ops))
