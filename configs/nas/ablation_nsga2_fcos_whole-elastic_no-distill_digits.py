# The main job's supernet without in-place distillation (the sandwich rule
# and the inherited baseline kept): the rank-quality ablation of
# docs/benchmarks.md, "Rank quality of the whole-detector supernet".
# Its supernet stage alone, on the main job's trained baseline:
#   W=work_dirs/ablation_nsga2_fcos_whole-elastic_no-distill_digits
#   mkdir -p $W && cp -r work_dirs/nsga2_fcos_whole-elastic_r18w16_digits/\
#   {baseline,nas_state.json} $W/
#   python tools/nas.py THIS_CONFIG --stages supernet
_base_ = ['nsga2_fcos_whole-elastic_r18w16_digits.py']

custom_hooks = [
    dict(type='mmnas_tricks.InheritWeightsHook', preserve_function=True),
    dict(type='mmnas_tricks.SampleSubnetHook', seed=0, strategy='sandwich'),
]
