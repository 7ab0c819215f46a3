# The recipe ablation of the main job's supernet (docs/benchmarks.md,
# "Recipe tricks: ablation"): one variant per training-recipe trick of
# docs/tricks.md, "Training recipe", each supernet trained as the main job's
# (6 epochs from its trained baseline) and ranked against the recorded
# stand-alone truth of the whole-detector rank set, 3 seeds each (nothing
# trained alone, no search):
#   python tools/trick_ablation.py THIS_CONFIG \
#     --truth benchmarks/results/rank_whole_detector/rank_correlation_v2.json \
#     --window 0.85 1.0 --seeds 0 1 2 --baseline-checkpoint \
#     work_dirs/nsga2_fcos_whole-elastic_r18w16_digits/baseline/epoch_12.pth
_base_ = [
    'nsga2_fcos_whole-elastic_r18w16_digits.py',
    '../_base_/datasets/digits_augment.py',
    '../_base_/schedules/digits_sgdr.py'
]

ablation = dict(
    tricks=dict(
        # the main job's supernet recipe as it is
        main=dict(),
        # photometric jitter + cutout on the supernet's canvases
        augment=dict(
            supernet=dict(
                train_dataloader=dict(
                    dataset=dict(pipeline=_base_.
                                 digits_photometric_cutout_train_pipeline)))),
        # warm restarts: one warm-up epoch, then periods of 2 and 3 epochs
        sgdr=dict(
            supernet=dict(param_scheduler=_base_.sgdr_6e_param_scheduler)),
        # each head tower's activation a choice (ReLU first: the baseline)
        act=dict(
            supernet=dict(
                model=dict(
                    bbox_head=dict(
                        act_choices=('ReLU', 'SiLU', 'GELU', 'HSwish'))))),
        # the tuning study's best recipe, its trial 4 (docs/benchmarks.md,
        # "Tuning the supernet recipe for rank quality"): lr 0.0089, 150
        # warm-up iterations, the sandwich rule and distillation 1.0 as now
        tuned=dict(
            supernet=dict(
                optim_wrapper=dict(optimizer=dict(lr=0.008908209921421292)),
                param_scheduler=[
                    dict(_base_.param_scheduler[0], end=150),
                    _base_.param_scheduler[1]
                ]))))
