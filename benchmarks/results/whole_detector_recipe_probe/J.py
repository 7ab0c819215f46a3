_base_ = ['../../../work_dirs/nsga2_fcos_whole-elastic_r18w16_digits/configs/supernet.py']
train_cfg = dict(max_epochs=1, val_interval=1)
optim_wrapper = dict(optimizer=dict(lr=0.001))
model = dict(
    neck=dict(output_ops=[(3, 1), (5, 1)]),
    bbox_head=dict(tower_depths=None, tower_ops=[(3, 1), (5, 1)]))
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0, end=110)]
load_from = 'work_dirs/nsga2_fcos_whole-elastic_r18w16_digits/baseline/epoch_12.pth'
