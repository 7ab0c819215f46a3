# NAS-FCOS's six head ops (docs/search_spaces/dense_head_towers.md): each
# op -> the head's GroupNorm -> ReLU; conv3x3 first, so the first subnet is
# FCOS's plain tower; the deformable conv as mmdet's NASFCOSHead builds it
# (2 offset groups, a bias), so its published towers are a subnet. Use as
# bbox_head=dict(type='mmnas_tricks.SearchableFCOSHead',
#                tower_ops=_base_.nasfcos_head_ops).
nasfcos_head_ops = dict(
    conv3x3=dict(type='mmnas_tricks.ConvOp', kernel_size=3),
    conv1x1=dict(type='mmnas_tricks.ConvOp', kernel_size=1),
    sep_conv_3x3=dict(type='mmnas_tricks.SepConv', kernel_size=3),
    sep_conv_3x3_dil3=dict(
        type='mmnas_tricks.SepConv', kernel_size=3, dilation=3),
    skip_connect=dict(type='mmnas_tricks.Identity'),
    def_conv_3x3=dict(
        type='mmnas_tricks.DeformConvOp', deform_groups=2, bias=True))
