"""mmdet's FPN with an op choice per lateral and per output connection."""
from typing import Dict, Optional

from mmdet.models.necks import FPN
from mmengine.registry import DefaultScope

from mmnas_tricks.registry import MODELS
from ..mutables import Subnet, conv_choices, fix_in_place
from ..ops.candidates import DENSE_CONV_OPS

#: Output (3x3) connection candidates; ``conv3x3`` first = mmdet's FPN.
FPN_OUTPUT_OPS = DENSE_CONV_OPS

#: Lateral (1x1) connection candidates; ``conv1x1`` first = mmdet's FPN.
FPN_LATERAL_OPS = dict(
    conv1x1=dict(type='ConvOp', kernel_size=1),
    conv3x3=dict(type='ConvOp', kernel_size=3),
    sep_conv_3x3=dict(type='SepConv', kernel_size=3))


@MODELS.register_module(name='SearchableFPN')
def searchable_fpn(output_ops: Optional[Dict[str, dict]] = None,
                   lateral_ops: Optional[Dict[str, dict]] = None,
                   search_extra_convs: bool = True,
                   fixed_subnet: Optional[Subnet] = None,
                   **kwargs) -> FPN:
    """An ``mmdet.FPN`` whose connections are op choices: each lateral conv
    (``lateral_convs.{i}``) chooses from ``lateral_ops``, each output conv
    (``fpn_convs.{i}``, the extra stride-2 levels included when
    ``search_extra_convs``) from ``output_ops``. Every candidate keeps the
    FPN's norm and activation (none by default) unless it sets its own.

    The simple mode of the searchable neck: levels, channels and top-down
    path are mmdet's, so any dense head accepts it; the default subnet
    (``conv1x1`` laterals, ``conv3x3`` outputs) *is* mmdet's FPN, parameter
    names included. See :class:`~mmnas_tricks.models.necks.NASFCOSSearchFPN`
    for the NAS-FCOS cell space.

    Args:
        output_ops (dict, optional): Candidates of the output convs.
            Defaults to None (:data:`FPN_OUTPUT_OPS`).
        lateral_ops (dict, optional): Candidates of the lateral convs; an
            empty dict keeps them fixed. Defaults to None
            (:data:`FPN_LATERAL_OPS`).
        search_extra_convs (bool): Also search the extra-level convs (their
            stride is 2; ``skip_connect`` then projects). Defaults to True.
        fixed_subnet (dict, optional): Build the static neck of this subnet.
            Defaults to None.
        **kwargs: ``FPN`` arguments.
    """
    with DefaultScope.overwrite_default_scope('mmdet'):
        fpn = FPN(**kwargs)
    output_ops = FPN_OUTPUT_OPS if output_ops is None else output_ops
    lateral_ops = FPN_LATERAL_OPS if lateral_ops is None else lateral_ops
    num_outputs = len(fpn.fpn_convs) if search_extra_convs else len(
        fpn.lateral_convs)
    if output_ops:
        conv_choices(fpn, [f'fpn_convs.{i}' for i in range(num_outputs)],
                     output_ops)
    if lateral_ops:
        conv_choices(
            fpn, [f'lateral_convs.{i}' for i in range(len(fpn.lateral_convs))],
            lateral_ops)
    if fixed_subnet is not None:
        fix_in_place(fpn, fixed_subnet)
    return fpn
