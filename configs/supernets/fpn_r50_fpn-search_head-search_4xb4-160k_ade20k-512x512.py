# Semantic FPN neck and head search on ADE20K (for GPU machines): an op choice
# per FPN connection and per conv of every level's scale head, on mmseg's
# ResNet-50 Semantic FPN; trained single-path.
# Search space: 2.9e+10 subnets (neck 1.0e+05, head 2.8e+05)
# (python tools/analysis/space_info.py CONFIG).
_base_ = [
    'mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py',
    '../_base_/supernet/spos.py',
]
custom_imports = dict(imports=['mmnas_tricks'], allow_failed_imports=False)

model = dict(
    neck=dict(type='mmnas_tricks.SearchableFPN'),
    decode_head=dict(type='mmnas_tricks.SearchableSemFPNHead'))
