# The main job's supernet trained from scratch instead of from the trained
# baseline (sandwich rule and in-place distillation kept; the same epochs,
# at the baseline's learning rate, since nothing is there to preserve): the
# rank-quality ablation of docs/benchmarks.md, "Rank quality of the
# whole-detector supernet".
#   python tools/nas.py THIS_CONFIG --stages supernet
_base_ = ['nsga2_fcos_whole-elastic_r18w16_digits.py']

optim_wrapper = dict(optimizer=dict(lr=0.01))
custom_hooks = [
    dict(type='mmnas_tricks.SampleSubnetHook', seed=0, strategy='sandwich'),
    dict(type='mmnas_tricks.InplaceDistillHook', cls_weight=1.0),
]
nas = dict(inherit=None)
