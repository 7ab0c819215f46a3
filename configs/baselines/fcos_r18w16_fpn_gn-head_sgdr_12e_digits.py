# The FCOS baseline on digits with warm restarts (SGDR, docs/tricks.md,
# "Training recipe") instead of one cosine decay: one warm-up epoch, then
# periods of 4 and 7 epochs. The baseline of the SGDR recipe ablation, so
# that the found subnets and the hand-designed model train alike.
_base_ = [
    'fcos_r18w16_fpn_gn-head_12e_digits.py',
    '../_base_/schedules/digits_sgdr.py'
]

param_scheduler = _base_.sgdr_12e_param_scheduler
