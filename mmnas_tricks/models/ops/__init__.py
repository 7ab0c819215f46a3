from .aggregate import ConcatReduce, ParamSum, resize_to_largest
from .basic import ConvOp, DeformConvOp, Identity, SepConv, Zero
from .candidates import DENSE_CONV_OPS
from .deform_conv import TorchCPUDCNv2, modulated_deform_conv2d_torch
from .mbconv import MBConv
from .norms import NORM_TARGETS, GhostBatchNorm2d, convert_batchnorms
from .res_basic_block import ResBasicBlock
from .res_bottleneck import ResBottleneck
from .shuffle import ShuffleBlock, channel_shuffle

__all__ = [
    'ConvOp', 'SepConv', 'DeformConvOp', 'Identity', 'Zero', 'MBConv',
    'ResBasicBlock', 'ResBottleneck', 'ShuffleBlock', 'channel_shuffle',
    'ParamSum', 'ConcatReduce', 'resize_to_largest', 'DENSE_CONV_OPS',
    'TorchCPUDCNv2', 'modulated_deform_conv2d_torch', 'GhostBatchNorm2d',
    'convert_batchnorms', 'NORM_TARGETS'
]
