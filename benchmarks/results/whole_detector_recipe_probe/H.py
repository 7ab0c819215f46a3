_base_ = ['../../../work_dirs/nsga2_fcos_whole-elastic_r18w16_digits/configs/supernet.py']
train_cfg = dict(max_epochs=1, val_interval=1)
optim_wrapper = dict(optimizer=dict(lr=0.005))
custom_hooks = [
    dict(type='mmnas_tricks.InheritWeightsHook', preserve_function=True),
    dict(type='mmnas_tricks.SampleSubnetHook', seed=0, strategy='uniform',
         include=['backbone.*', 'neck.width', 'bbox_head.width',
                  'bbox_head.cls_convs', 'bbox_head.reg_convs']),
    dict(type='mmnas_tricks.InplaceDistillHook', cls_weight=1.0),
]
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0, end=110)]
load_from = 'work_dirs/nsga2_fcos_whole-elastic_r18w16_digits/baseline/epoch_12.pth'
