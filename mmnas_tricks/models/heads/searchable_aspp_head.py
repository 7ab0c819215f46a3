"""mmseg's ASPP (DeepLabV3) decode head with a dilation-rate choice per
atrous branch."""
from typing import Optional, Sequence

from mmengine.registry import DefaultScope
from mmseg.models.decode_heads import ASPPHead

from mmnas_tricks.registry import MODELS
from ..contract import searchable
from ..mutables import Subnet, conv_choices, fix_in_place


@MODELS.register_module(name='SearchableASPPHead')
@searchable
def searchable_aspp_head(rate_choices: Sequence[int] = (3, 6, 12, 18, 24),
                         fixed_subnet: Optional[Subnet] = None,
                         **kwargs) -> ASPPHead:
    """An ``mmseg.ASPPHead`` (DeepLabV3, Chen et al., 2017) in which every
    atrous branch (``aspp_modules.{i}`` with dilation > 1) chooses its
    dilation rate: candidates ``dil{r}`` (3x3 conv, dilation r, the head's
    norm and activation), the branch's configured rate first (so the first
    subnet is mmseg's head) and then ``rate_choices``. The 1x1 branch, image
    pooling and bottleneck stay fixed; losses and inference are mmseg's.

    Args:
        rate_choices (Sequence[int]): Dilation rates (> 1) every atrous
            branch may take. Defaults to (3, 6, 12, 18, 24).
        fixed_subnet (dict, optional): Build the static head of this subnet.
            Defaults to None.
        **kwargs: ``ASPPHead`` arguments (``dilations`` as mmseg's).
    """
    bad = [r for r in rate_choices if int(r) < 2]
    if bad:
        raise ValueError(f'rate_choices must be dilation rates > 1, got {bad} '
                         '(the 1x1 branch is fixed)')
    with DefaultScope.overwrite_default_scope('mmseg'):
        head = ASPPHead(**kwargs)
    for i, rate in enumerate(head.dilations):
        if rate == 1:
            continue
        rates = [rate] + [int(r) for r in rate_choices if int(r) != rate]
        conv_choices(
            head, [f'aspp_modules.{i}'], {
                f'dil{r}': dict(type='ConvOp', kernel_size=3, dilation=r)
                for r in rates
            })
    if fixed_subnet is not None:
        fix_in_place(head, fixed_subnet)
    return head
