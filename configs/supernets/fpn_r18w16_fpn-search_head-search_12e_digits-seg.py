# Segmentation supernet on digits: Semantic FPN with an op choice per FPN
# connection and per conv of every level's scale head.
# Search space: 2.9e+10 subnets (neck 1.0e+05, head 2.8e+05)
# (python tools/analysis/space_info.py CONFIG).
_base_ = [
    '../baselines/fpn_r18w16_12e_digits-seg.py',
    '../_base_/supernet/spos.py',
]

model = dict(
    neck=dict(type='mmnas_tricks.SearchableFPN'),
    decode_head=dict(type='mmnas_tricks.SearchableSemFPNHead'))
