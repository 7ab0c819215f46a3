# A full NAS run of the neck/head space on digits in one command (its time
# and results: docs/search_and_training.md):
#   python tools/nas.py \
#     configs/nas/spos_fcos_r18w16_fpn-elastic_gn-head-elastic_digits.py
# 1. supernet: FCOS whose FPN convs and GN head tower layers choose their
#    (kernel size, dilation) with shared weights (the first choices are the
#    baseline FCOS);
#    single-path training with the sandwich rule (largest, smallest, random
#    subnet in turn), on the first 7/8 of the training canvases for
#    SUPERNET_EPOCHS epochs;
# 2. search: evolution (SPOS) with BN calibration before every score, each
#    candidate scored by unrounded bbox mAP on the held-out last 1/8, within
#    the baseline FCOS's budget (90-100% of its FLOPs, whole model at
#    128x128); the best subnet is exported as a plain config + checkpoint;
# 3. retrain: that config from scratch with the baseline's recipe (all 2,000
#    training canvases, 12 epochs), evaluated on the val canvases;
# 4. baseline: configs/baselines/fcos_r18w16_fpn_gn-head_12e_digits.py;
# 5. report: <work_dir>/results.{md,csv,json,png}.
_base_ = ['../supernets/fcos_r18w16_fpn-elastic_gn-head-elastic_12e_digits.py']

SUPERNET_EPOCHS = 12

# towers at the baseline's depth 4: searching depth {4, 3, 2} too found
# shallower, worse FCOS (docs/search_and_training.md)
model = dict(bbox_head=dict(tower_depths=None))

train_dataloader = dict(dataset=dict(subset=_base_.digits_supernet_subset))
train_cfg = dict(max_epochs=SUPERNET_EPOCHS, val_interval=SUPERNET_EPOCHS)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=300),
    dict(
        type='CosineAnnealingLR',
        T_max=SUPERNET_EPOCHS,
        eta_min=0.0,
        by_epoch=True,
        begin=0,
        end=SUPERNET_EPOCHS,
        convert_to_iter_based=True),
]
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=1))
custom_hooks = [
    dict(type='mmnas_tricks.SampleSubnetHook', seed=0, strategy='sandwich')
]

nas = dict(
    score_key='coco/bbox_mAP',
    search=dict(
        type='mmnas_tricks.EvolutionSearchLoop',
        max_generations=4,
        population_size=10,
        top_k=4,
        num_mutation=5,
        num_crossover=5,
        mutate_prob=0.1,
        calibrate_bn=10,
        # the baseline's budget: 90% to 100% of its FLOPs
        constraints=dict(flops=('0.9*first', 'first')),
        val_dataloader=_base_.digits_heldout_dataloader,
        evaluator=_base_.digits_heldout_evaluator,
        seed=0),
    # what the exported best subnet trains with: the baseline's recipe
    retrain=dict(
        train_dataloader=_base_.digits_train_dataloader,
        train_cfg=_base_.digits_train_cfg,
        param_scheduler=_base_.digits_param_scheduler,
        default_hooks=_base_.default_hooks),
    baseline='../baselines/fcos_r18w16_fpn_gn-head_12e_digits.py')
