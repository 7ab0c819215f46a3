from .basic import ConvOp, DeformConvOp, Identity, SepConv, Zero
from .mbconv import MBConv

__all__ = ['ConvOp', 'SepConv', 'DeformConvOp', 'Identity', 'Zero', 'MBConv']
