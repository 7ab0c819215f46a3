"""Candidate sets that several searchable modules share."""

#: Same-shape conv candidates of dense-prediction layers (FPN outputs, head
#: towers): conv 3x3 first (the plain layer), separable 3x3 / 5x5, dilated
#: 3x3, deformable 3x3 (DCNv2), skip. Types are this package's ops.
DENSE_CONV_OPS = dict(
    conv3x3=dict(type='ConvOp', kernel_size=3),
    sep_conv_3x3=dict(type='SepConv', kernel_size=3),
    sep_conv_5x5=dict(type='SepConv', kernel_size=5),
    dil_conv_3x3=dict(type='ConvOp', kernel_size=3, dilation=2),
    def_conv_3x3=dict(type='DeformConvOp'),
    skip_connect=dict(type='Identity'))
