# The main job's supernet with the sandwich rule's random subnets drawn from
# the FLOPs window the search scores (0.3-1.0x the baseline's: a pool of 200
# random subnets drawn once from the seed, those inside kept), instead of the
# whole space (whose uniform draws mostly lie above 1x);
# inherited baseline and in-place distillation kept: the rank-quality
# ablation of docs/benchmarks.md, "Rank quality of the whole-detector
# supernet". Its supernet stage alone, on the main job's trained baseline:
#   W=work_dirs/ablation_nsga2_fcos_whole-elastic_flops-window_digits
#   mkdir -p $W && cp -r work_dirs/nsga2_fcos_whole-elastic_r18w16_digits/\
#   {baseline,nas_state.json} $W/
#   python tools/nas.py THIS_CONFIG --stages supernet
_base_ = ['nsga2_fcos_whole-elastic_r18w16_digits.py']

custom_hooks = [
    dict(type='mmnas_tricks.InheritWeightsHook', preserve_function=True),
    dict(
        type='mmnas_tricks.SampleSubnetHook',
        seed=0,
        strategy='sandwich',
        flops_window=(0.3, 1.0)),
    dict(type='mmnas_tricks.InplaceDistillHook', cls_weight=1.0),
]
