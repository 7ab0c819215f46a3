# Backbone search for FCOS on digits: the baseline's ResNet-18 at base width
# 16 as a supernet (per stage depth {2, 1, 3}, per block kernel {3, 5},
# Once-for-All weight sharing), trained single-path. Its first subnet is the
# baseline's backbone (2-2-2-2 blocks, 3x3), so a trained baseline's weights
# load into it. The first step of the whole-detector elastic space: widths of
# the stages that feed the FPN need an FPN with elastic in-channels.
# Space size and FLOPs range: docs/search_spaces/resnet.md
# (python tools/analysis/space_info.py CONFIG).
_base_ = [
    '../baselines/fcos_r18w16_fpn_gn-head_12e_digits.py',
    '../_base_/supernet/spos.py',
]

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmnas_tricks.SearchableResNet',
        base_channels=16,
        depths=((2, 1, 3), ) * 4,
        kernel_sizes=(3, 5),
        out_indices=(1, 2, 3)))
