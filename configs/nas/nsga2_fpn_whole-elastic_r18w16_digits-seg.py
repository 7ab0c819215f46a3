# The whole-segmentor NAS run on digits: the detection main
# job's pipeline for Semantic FPN:
#   python tools/nas.py \
#       configs/nas/nsga2_fpn_whole-elastic_r18w16_digits-seg.py
# 1. baseline: configs/baselines/fpn_r18w16_12e_digits-seg.py (12 epochs);
# 2. supernet: the whole-segmentor elastic space
#    (configs/supernets/fpn_whole-elastic_r18w16_12e_digits-seg.py: input
#    size, backbone depth / width / kernel per stage, FPN and head widths,
#    FPN and scale-head kernels; the first subnet is the baseline) starting
#    from the trained baseline's weights with the function preserved and the
#    channels sorted by importance, fine-tuned at a tenth of the baseline's
#    learning rate with the sandwich rule and in-place distillation (the
#    decode head's softmax), on the first 7/8 of the training canvases;
# 3. search: NSGA-II over (held-out mIoU, FLOPs) between 0.3x and 1.0x the
#    baseline's FLOPs, one island per input size (held out:
#    data/digits_search, 250 canvases nothing here trains on), BN
#    calibration before every score, the baseline subnet scored as the
#    reference; the best subnets at <= 0.5x and at <= 1.0x the baseline's
#    FLOPs exported as plain mmseg configs;
# 3b. rerank: for each budget, the search's best subnet of each input size
#    fine-tuned one epoch from its supernet weights and scored on the
#    held-out canvases; each budget takes the best fine-tuned one;
# 4. retrain: each from scratch with the baseline's recipe, and finetune:
#    each 2 epochs from its supernet weights;
# 5. report: <work_dir>/results.{md,csv,json,png}.
_base_ = ['../supernets/fpn_whole-elastic_r18w16_12e_digits-seg.py']

SUPERNET_EPOCHS = 6

train_dataloader = dict(dataset=dict(subset=_base_.digits_seg_supernet_subset))
train_cfg = dict(max_epochs=SUPERNET_EPOCHS, val_interval=SUPERNET_EPOCHS)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(
        type='CosineAnnealingLR',
        T_max=SUPERNET_EPOCHS,
        eta_min=0.0,
        by_epoch=True,
        begin=0,
        end=SUPERNET_EPOCHS,
        convert_to_iter_based=True),
]
# a tenth of the baseline's lr 0.03, as the detection main job fine-tunes
optim_wrapper = dict(optimizer=dict(lr=0.003))
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=1))
custom_hooks = [
    dict(
        type='mmnas_tricks.InheritWeightsHook',
        preserve_function=True,
        sort_channels=True),
    dict(type='mmnas_tricks.SampleSubnetHook', seed=0, strategy='sandwich'),
    dict(type='mmnas_tricks.InplaceDistillHook', cls_weight=1.0),
]

nas = dict(
    score_key='mIoU',
    inherit='baseline',
    search=dict(
        type='mmnas_tricks.NSGA2SearchLoop',
        max_generations=5,
        population_size=12,
        mutate_prob=0.1,
        calibrate_bn=10,
        constraints=dict(flops=('0.3*first', 'first')),
        # one island per input size, as in the detection main job
        islands='data_preprocessor.input_size',
        export_best=False,
        export_flops=(0.5, 1.0),
        val_dataloader=_base_.digits_seg_search_dataloader,
        evaluator=dict(type='IoUMetric', iou_metrics=['mIoU']),
        seed=0),
    # the search's best subnet of each input size within each budget
    # re-ranked by a one-epoch fine-tune from its supernet weights at half
    # the baseline's lr, as in the detection main job
    rerank=dict(
        topk=1, group_by='data_preprocessor.input_size', epochs=1, lr=0.015),
    # what the exported subnets train with: the baseline's recipe (its
    # optimizer too: the supernet fine-tunes at a tenth of its lr)
    retrain=dict(
        optim_wrapper=_base_.optim_wrapper,
        train_dataloader=_base_.digits_seg_train_dataloader,
        train_cfg=_base_.digits_train_cfg,
        param_scheduler=_base_.digits_param_scheduler,
        default_hooks=_base_.default_hooks),
    # each exported subnet also fine-tuned from its supernet weights (as
    # Once-for-All deploys one): 2 epochs on the full training split at the
    # supernet's lr, cosine to 0
    finetune=dict(
        train_cfg=dict(max_epochs=2, val_interval=2),
        optim_wrapper=dict(optimizer=dict(lr=0.003)),
        param_scheduler=[
            dict(
                type='CosineAnnealingLR',
                T_max=2,
                eta_min=0.0,
                by_epoch=True,
                begin=0,
                end=2,
                convert_to_iter_based=True)
        ]),
    baseline='../baselines/fpn_r18w16_12e_digits-seg.py')
