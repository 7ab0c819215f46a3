# The digits training recipe: SGD, a linear warm-up over the first 300
# iterations, cosine decay to zero by the last epoch, gradient clipping.
# Chosen for seed-to-seed stability (docs/baselines.md); like the dataset
# base, names are prefixed so that they can sit beside a model-zoo base.
digits_max_epochs = 12
digits_train_cfg = dict(
    _delete_=True,
    type='EpochBasedTrainLoop',
    max_epochs=digits_max_epochs,
    val_interval=4)
digits_param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=300),
    dict(
        type='CosineAnnealingLR',
        T_max=digits_max_epochs,
        eta_min=0.0,
        by_epoch=True,
        begin=0,
        end=digits_max_epochs,
        convert_to_iter_based=True),
]
# GroupedOptimWrapperConstructor: mmengine's default constructor, then one
# optimizer group per set of options instead of one per tensor (the same
# updates; the per-group cost of each step weighs on a supernet, which holds
# the tensors of every candidate: benchmarks/supernet_overhead.py)
digits_optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    constructor='mmnas_tricks.GroupedOptimWrapperConstructor',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001),
    paramwise_cfg=dict(bias_lr_mult=2., bias_decay_mult=0.),
    clip_grad=dict(max_norm=35, norm_type=2))
