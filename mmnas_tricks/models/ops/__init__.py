from .aggregate import ConcatReduce, ParamSum, resize_to_largest
from .basic import ConvOp, DeformConvOp, Identity, SepConv, Zero
from .mbconv import MBConv
from .shuffle import ShuffleBlock, channel_shuffle

__all__ = [
    'ConvOp', 'SepConv', 'DeformConvOp', 'Identity', 'Zero', 'MBConv',
    'ShuffleBlock', 'channel_shuffle', 'ParamSum', 'ConcatReduce',
    'resize_to_largest'
]
