# The main job's supernet inheriting the baseline with its channels sorted
# by importance first (Once-for-All's channel re-organisation: narrower
# widths then take the channels that matter most; sandwich rule and in-place
# distillation kept): the rank-quality ablation of docs/benchmarks.md, "Rank
# quality of the whole-detector supernet" (the main job's setting since it
# measured better). Its supernet stage alone, on the
# main job's trained baseline:
#   W=work_dirs/ablation_nsga2_fcos_whole-elastic_sorted-channels_digits
#   mkdir -p $W && cp -r work_dirs/nsga2_fcos_whole-elastic_r18w16_digits/\
#   {baseline,nas_state.json} $W/
#   python tools/nas.py THIS_CONFIG --stages supernet
_base_ = ['nsga2_fcos_whole-elastic_r18w16_digits.py']

custom_hooks = [
    dict(
        type='mmnas_tricks.InheritWeightsHook',
        preserve_function=True,
        sort_channels=True),
    dict(type='mmnas_tricks.SampleSubnetHook', seed=0, strategy='sandwich'),
    dict(type='mmnas_tricks.InplaceDistillHook', cls_weight=1.0),
]
