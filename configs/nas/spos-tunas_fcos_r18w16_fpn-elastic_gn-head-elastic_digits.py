# The main job's pipeline
# (spos_fcos_r18w16_fpn-elastic_gn-head-elastic_digits.py) with TuNAS's
# all-ops warm-up (docs/tricks.md, T1.3) during the first quarter of supernet
# training: each mutable runs its candidates averaged with a probability
# decaying from 1 to 0, then single-path sandwich sampling.
# Run: python tools/nas.py \
#   configs/nas/spos-tunas_fcos_r18w16_fpn-elastic_gn-head-elastic_digits.py
_base_ = ['./spos_fcos_r18w16_fpn-elastic_gn-head-elastic_digits.py']

custom_hooks = [
    dict(type='mmnas_tricks.SampleSubnetHook', seed=0, strategy='sandwich'),
    dict(type='mmnas_tricks.AllOpsWarmupHook', warmup_ratio=0.25, seed=0),
]
