# Semantic FPN neck and head search on Cityscapes from the model zoo (for GPU
# machines): mmseg's ResNet-50 Semantic FPN (4x2 images of 512x1024, 80k
# iterations) with an op choice per FPN connection and per conv of every
# level's scale head, trained single-path; the supernet starts from mmseg's
# Cityscapes checkpoint (InheritWeightsHook: the first choices are mmseg's
# FPN and head).
_base_ = [
    'mmseg::sem_fpn/fpn_r50_4xb2-80k_cityscapes-512x1024.py',
    '../_base_/supernet/spos.py',
]
custom_imports = dict(imports=['mmnas_tricks'], allow_failed_imports=False)

model = dict(
    neck=dict(type='mmnas_tricks.SearchableFPN'),
    decode_head=dict(type='mmnas_tricks.SearchableSemFPNHead'))
load_from = ('https://download.openmmlab.com/mmsegmentation/v0.5/sem_fpn/'
             'fpn_r50_512x1024_80k_cityscapes/'
             'fpn_r50_512x1024_80k_cityscapes_20200717_021437-94018a0d.pth')
custom_hooks = [
    dict(type='mmnas_tricks.InheritWeightsHook'),
    dict(type='mmnas_tricks.SampleSubnetHook', seed=0),
]
