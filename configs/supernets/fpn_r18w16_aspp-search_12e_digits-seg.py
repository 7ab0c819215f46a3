# ASPP dilation-rate search for segmentation on digits: mmseg's DeepLabV3
# ASPP head on the stride-8 level of the Semantic FPN baseline's neck, each
# atrous branch choosing its rate (its own first, then 2, 3, 4, 6, 8).
# Search space: 125 (5^3) subnets
# (python tools/analysis/space_info.py CONFIG).
_base_ = [
    '../baselines/fpn_r18w16_12e_digits-seg.py',
    '../_base_/supernet/spos.py',
]

model = dict(
    decode_head=dict(
        _delete_=True,
        type='mmnas_tricks.SearchableASPPHead',
        in_channels=64,
        in_index=1,
        channels=64,
        dilations=(1, 2, 4, 6),
        rate_choices=(2, 3, 4, 6, 8),
        dropout_ratio=0.1,
        num_classes=11,
        norm_cfg=dict(type='BN', requires_grad=True),
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss',
            use_sigmoid=False,
            loss_weight=1.0,
            class_weight=[0.1] + [1.0] * 10)))
