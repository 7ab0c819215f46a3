# DetNAS backbone search for FCOS on digits: a ShuffleNetV2 supernet with a
# choice of shuffle 3x3 / 5x5 / 7x7 / xception per block (blocks 4-4-8-4, as
# DetNAS-300M), channels 16-32-64-128 so that the FPN inputs match the
# baseline's ResNet-18 at base width 16.
# Search space: 1.1e+12 (4^20) subnets
# (python tools/analysis/space_info.py CONFIG).
_base_ = [
    '../baselines/fcos_r18w16_fpn_gn-head_12e_digits.py',
    '../_base_/supernet/spos.py',
]

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmnas_tricks.SearchableShuffleNetV2',
        stage_channels=(16, 32, 64, 128),
        out_indices=(1, 2, 3)))
