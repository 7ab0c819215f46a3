# Differentiable (first-order DARTS) neck and head search for FCOS on digits:
# the space of fcos_r18w16_fpn-search_gn-head-search_12e_digits.py with every
# candidate mixed by softmax(alpha). Weights train on the first half of the
# training canvases, alpha (Adam 3e-4, betas (0.5, 0.999), weight decay 1e-3)
# on the second half, one architecture step before every weight step.
# The argmax subnet is written to <work_dir>/darts/argmax_subnet.yaml every
# epoch; export it with tools/export_subnet.py.
# Run: python tools/train.py \
#   configs/supernets/darts_fcos_r18w16_fpn-search_gn-head-search_6e_digits.py
_base_ = ['./fcos_r18w16_fpn-search_gn-head-search_12e_digits.py']

EPOCHS = 6
train_dataloader = dict(dataset=dict(subset=(0.0, 0.5)))
arch_dataloader = dict(
    batch_size=16,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='mmnas_tricks.DigitsCocoDataset',
        data_root=_base_.digits_data_root,
        digits_spec=_base_.digits_spec,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='images/train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=1),
        subset=(0.5, 1.0),
        pipeline=_base_.digits_train_pipeline))
custom_hooks = [
    dict(type='mmnas_tricks.DartsHook', arch_dataloader=arch_dataloader)
]
train_cfg = dict(max_epochs=EPOCHS, val_interval=EPOCHS)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=150),
    dict(
        type='CosineAnnealingLR',
        T_max=EPOCHS,
        eta_min=0.0,
        by_epoch=True,
        begin=0,
        end=EPOCHS,
        convert_to_iter_based=True),
]
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=1))
