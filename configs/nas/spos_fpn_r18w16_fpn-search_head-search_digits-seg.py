# The NAS pipeline for segmentation on digits (tools/nas.py): Semantic FPN
# with a searchable FPN and scale heads, single-path supernet on 7/8 of the
# training canvases, evolution scored by mIoU on the held-out 1/8 under
# 90-100% of the baseline's FLOPs, the best subnet retrained with the
# baseline recipe and compared with
# configs/baselines/fpn_r18w16_12e_digits-seg.py.
#   python tools/nas.py \
#     configs/nas/spos_fpn_r18w16_fpn-search_head-search_digits-seg.py
_base_ = ['../supernets/fpn_r18w16_fpn-search_head-search_12e_digits-seg.py']

SUPERNET_EPOCHS = 6

train_dataloader = dict(dataset=dict(subset=_base_.digits_seg_supernet_subset))
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

nas = dict(
    score_key='mIoU',
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
        val_dataloader=_base_.digits_seg_heldout_dataloader,
        evaluator=dict(type='IoUMetric', iou_metrics=['mIoU']),
        seed=0),
    retrain=dict(
        train_dataloader=_base_.digits_seg_train_dataloader,
        train_cfg=_base_.digits_train_cfg,
        param_scheduler=_base_.digits_param_scheduler,
        default_hooks=_base_.default_hooks),
    baseline='../baselines/fpn_r18w16_12e_digits-seg.py')
