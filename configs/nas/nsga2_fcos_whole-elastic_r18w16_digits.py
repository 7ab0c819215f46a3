# The main job: a whole-detector NAS run on digits in one command:
#   python tools/nas.py configs/nas/nsga2_fcos_whole-elastic_r18w16_digits.py
# 1. baseline: configs/baselines/fcos_r18w16_fpn_gn-head_12e_digits.py,
#    trained first (12 epochs, all 2,000 training canvases);
# 2. supernet: the whole-detector elastic space (input size, backbone depth /
#    width / kernel per stage, FPN width, tower width / depth, conv shapes;
#    the first subnet is the baseline) starting from the trained baseline's
#    weights (tools/nas.py passes them for nas.inherit='baseline') with the
#    function preserved (every subnet that only grows the baseline starts
#    as the baseline) and its channels sorted by importance, fine-tuned at
#    a tenth of the baseline's learning rate (docs/benchmarks.md,
#    "Whole-detector supernet recipe", says why) with the sandwich rule
#    (largest, smallest, random subnet in turn) and in-place distillation
#    from the largest subnet, on the first 7/8 of the training canvases;
# 3. search: NSGA-II over (held-out bbox mAP, FLOPs) between 0.3x and 1.0x
#    the baseline's FLOPs, one island per input size (held out:
#    data/digits_search, 250 new canvases of the training digits that
#    neither the baseline nor the supernet trains on), BN calibration
#    before every score, the baseline subnet scored as the reference; the
#    best subnet at <= 0.5x and at
#    <= 1.0x the baseline's FLOPs exported as plain mmdet configs;
# 3b. rerank: for each budget, the search's best subnet of each input size
#    fine-tuned one epoch from its supernet weights and scored on the
#    held-out canvases; each budget takes the best fine-tuned one;
# 4. retrain: each from scratch with the baseline's recipe, evaluated on
#    the val canvases;
# 5. report: <work_dir>/results.{md,csv,json,png}.
_base_ = ['../supernets/fcos_whole-elastic_r18w16_fpn_gn-head_12e_digits.py']

SUPERNET_EPOCHS = 6

train_dataloader = dict(dataset=dict(subset=_base_.digits_supernet_subset))
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
# towers at the baseline's depth 4 and FPN / tower convs of kernel 3 or 5
# only: cut plain conv towers and one 3x3 weight read dilated and as 1x1
# broke the shared weights (docs/benchmarks.md, "Whole-detector supernet
# recipe", runs I and J)
model = dict(
    neck=dict(output_ops=[(3, 1), (5, 1)]),
    bbox_head=dict(tower_depths=None, tower_ops=[(3, 1), (5, 1)]))
optim_wrapper = dict(optimizer=dict(lr=0.001))
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=1))
custom_hooks = [
    # channels sorted by importance first (Once-for-All's channel
    # re-organisation): tau 0.515 against 0.397 unsorted (docs/benchmarks.md)
    dict(
        type='mmnas_tricks.InheritWeightsHook',
        preserve_function=True,
        sort_channels=True),
    dict(type='mmnas_tricks.SampleSubnetHook', seed=0, strategy='sandwich'),
    dict(type='mmnas_tricks.InplaceDistillHook', cls_weight=1.0),
]

nas = dict(
    score_key='coco/bbox_mAP',
    inherit='baseline',
    search=dict(
        type='mmnas_tricks.NSGA2SearchLoop',
        max_generations=5,
        population_size=12,
        mutate_prob=0.1,
        calibrate_bn=10,
        constraints=dict(flops=('0.3*first', 'first')),
        # one island per input size: random subnets under the FLOPs budget
        # are otherwise nearly all 96 px (56 of 57 in the run without), and
        # the supernet's estimates compare within a size, not across sizes
        # (the fine-tune re-rank below compares across)
        islands='data_preprocessor.size',
        export_best=False,
        export_flops=(0.5, 1.0),
        val_dataloader=_base_.digits_search_dataloader,
        evaluator=_base_.digits_heldout_evaluator,
        seed=0),
    # the search's best subnet of each input size within each budget
    # re-ranked by a one-epoch fine-tune from its supernet weights (lr 0.005,
    # half the baseline's: the rank study's setting), each budget retraining
    # the best fine-tuned one (docs/benchmarks.md, "Rank quality
    # of the whole-detector supernet")
    rerank=dict(topk=1, group_by='data_preprocessor.size', epochs=1, lr=0.005),
    # what the exported subnets train with: the baseline's recipe (its
    # optimizer too: the supernet fine-tunes at a tenth of its lr)
    retrain=dict(
        optim_wrapper=_base_.digits_optim_wrapper,
        train_dataloader=_base_.digits_train_dataloader,
        train_cfg=_base_.digits_train_cfg,
        param_scheduler=_base_.digits_param_scheduler,
        default_hooks=_base_.default_hooks),
    # each exported subnet also fine-tuned from its supernet weights (as
    # Once-for-All deploys one): 2 epochs on the full training split at the
    # supernet's lr, cosine to 0
    finetune=dict(
        train_cfg=dict(max_epochs=2, val_interval=2),
        optim_wrapper=dict(optimizer=dict(lr=0.001)),
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
    baseline='../baselines/fcos_r18w16_fpn_gn-head_12e_digits.py')
