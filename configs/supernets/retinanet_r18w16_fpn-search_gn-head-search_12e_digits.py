# Neck and head search for RetinaNet on digits: an op choice per lateral and
# per output connection of the FPN, and per layer of the GroupNorm head
# towers, with tower depth {2, 3, 4}.
# Search space: 8.8e+10 subnets (neck 5.8e+03, head 1.5e+07)
# (python tools/analysis/space_info.py CONFIG).
_base_ = [
    '../baselines/retinanet_r18w16_fpn_12e_digits.py',
    '../_base_/supernet/spos.py',
]

model = dict(
    neck=dict(type='mmnas_tricks.SearchableFPN'),
    bbox_head=dict(
        type='mmnas_tricks.SearchableRetinaHead', tower_depths=(4, 3, 2)))
