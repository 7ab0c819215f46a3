# The main job's supernet trained with Once-for-All's progressive order
# (Cai et al., ICLR 2020: elastic kernel, then depth, then width), grown
# from the inherited baseline: every mutable not yet elastic holds the
# baseline's (first) choice. Epochs 0-1: input size and kernels (blocks and
# FPN / tower conv shapes); from epoch 2 also the depths; from epoch 4 also
# the widths. SequentialSearchHook with select=None (nothing fixed at a
# stage's end) and the sandwich's largest / smallest / random subnets over
# what is elastic. The rank-quality ablation of docs/benchmarks.md, "Rank
# quality of the whole-detector supernet". Its supernet stage alone, on the
# main job's trained baseline:
#   W=work_dirs/ablation_nsga2_fcos_whole-elastic_progressive_digits
#   mkdir -p $W && cp -r work_dirs/nsga2_fcos_whole-elastic_r18w16_digits/\
#   {baseline,nas_state.json} $W/
#   python tools/nas.py THIS_CONFIG --stages supernet
_base_ = ['nsga2_fcos_whole-elastic_r18w16_digits.py']

custom_hooks = [
    dict(type='mmnas_tricks.InheritWeightsHook', preserve_function=True),
    dict(type='mmnas_tricks.SampleSubnetHook', seed=0, strategy='sandwich'),
    dict(
        type='mmnas_tricks.SequentialSearchHook',
        stages=[
            dict(
                name='size_kernel',
                begin_epoch=0,
                types=[
                    'InputSizeChoice', 'ResBasicBlockChoice', 'ConvShapeChoice'
                ],
                select=None),
            dict(
                name='depth',
                begin_epoch=2,
                types=['DepthChoice'],
                select=None),
            dict(
                name='width',
                begin_epoch=4,
                types=['ChannelChoice'],
                select=None),
        ]),
    dict(type='mmnas_tricks.InplaceDistillHook', cls_weight=1.0),
]
