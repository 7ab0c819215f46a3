# The main job with warm restarts (SGDR, docs/tricks.md, "Training recipe")
# for both the supernet (6 epochs: one warm-up epoch, then periods of 2 and
# 3 epochs at the supernet's lr 0.001) and the retraining of the found
# subnets and of the baseline they are compared with (12 epochs: one
# warm-up epoch, then 4 and 7), instead of one cosine decay each. A row of
# the recipe ablation:
#   python tools/nas.py THIS_CONFIG
_base_ = [
    'nsga2_fcos_whole-elastic_r18w16_digits.py',
    '../_base_/schedules/digits_sgdr.py'
]

param_scheduler = _base_.sgdr_6e_param_scheduler
nas = dict(
    retrain=dict(param_scheduler=_base_.sgdr_12e_param_scheduler),
    baseline='../baselines/fcos_r18w16_fpn_gn-head_sgdr_12e_digits.py')
