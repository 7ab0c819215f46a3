"""mmdet's FPN with an op choice per lateral and per output connection."""
from typing import Dict, Optional, Sequence

from mmdet.models.necks import FPN
from mmengine.registry import DefaultScope

from mmnas_tricks.registry import MODELS
from ..contract import searchable
from ..mutables import ConvShapeChoice, Subnet, conv_choices, fix_in_place
from ..mutables.elastic import width_choice
from ..ops.candidates import DENSE_CONV_OPS

#: Output (3x3) connection candidates; ``conv3x3`` first = mmdet's FPN.
FPN_OUTPUT_OPS = DENSE_CONV_OPS

#: Lateral (1x1) connection candidates; ``conv1x1`` first = mmdet's FPN.
FPN_LATERAL_OPS = dict(
    conv1x1=dict(type='ConvOp', kernel_size=1),
    conv3x3=dict(type='ConvOp', kernel_size=3),
    sep_conv_3x3=dict(type='SepConv', kernel_size=3))


@MODELS.register_module(name='SearchableFPN')
@searchable
def searchable_fpn(output_ops: Optional[Dict[str, dict]] = None,
                   lateral_ops: Optional[Dict[str, dict]] = None,
                   search_extra_convs: bool = True,
                   widths: Optional[Sequence[int]] = None,
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

    With ``widths``, the FPN's width (the channels of every level) is a
    choice too, ``width`` (a :class:`~mmnas_tricks.models.mutables.
    ChannelChoice`): every conv keeps weights for ``out_channels`` (which
    must be the largest width) and uses the first channels (Once-for-All);
    the laterals' input channels follow the backbone's elastic widths
    (``in_channels`` are the largest; :func:`~mmnas_tricks.models.mutables.
    link_widths`), and the head's first convs follow this width. The convs
    must then be conv-shape choices (lists of ``(kernel, dilation)``); the
    ones not searched become single-shape choices.

    Args:
        output_ops (dict | list, optional): Candidates of the output convs.
            Defaults to None (:data:`FPN_OUTPUT_OPS`; with ``widths``, the
            plain 3x3 only).
        lateral_ops (dict | list, optional): Candidates of the lateral
            convs; an empty dict keeps them fixed. Defaults to None
            (:data:`FPN_LATERAL_OPS`; with ``widths``, the plain 1x1
            only).
        search_extra_convs (bool): Also search the extra-level convs (their
            stride is 2; ``skip_connect`` then projects). Defaults to True.
        widths (Sequence[int], optional): Width choices of the FPN; the
            first is the default. Defaults to None (``out_channels``).
        fixed_subnet (dict, optional): Build the static neck of this subnet.
            Defaults to None.
        **kwargs: ``FPN`` arguments.
    """
    with DefaultScope.overwrite_default_scope('mmdet'):
        fpn = FPN(**kwargs)
    if widths is None:
        output_ops = FPN_OUTPUT_OPS if output_ops is None else output_ops
        lateral_ops = FPN_LATERAL_OPS if lateral_ops is None else lateral_ops
    else:
        output_ops, lateral_ops = _shape_lists(output_ops, lateral_ops)
    num_outputs = len(fpn.fpn_convs) if search_extra_convs else len(
        fpn.lateral_convs)
    if output_ops:
        conv_choices(fpn, [f'fpn_convs.{i}' for i in range(num_outputs)],
                     output_ops)
    if lateral_ops:
        conv_choices(
            fpn, [f'lateral_convs.{i}' for i in range(len(fpn.lateral_convs))],
            lateral_ops)
    if widths is not None:
        _make_width(fpn, widths, num_outputs)
    if fixed_subnet is not None:
        fix_in_place(fpn, fixed_subnet)
        fpn.out_width_choices = None
    return fpn


def _shape_lists(output_ops, lateral_ops):
    """An elastic-width FPN slices conv-shape choices: op dicts refused,
    an empty choice (fixed convs) becomes the plain conv's single shape."""
    out = []
    for name, ops, plain in (('output_ops', output_ops, [(3, 1)]),
                             ('lateral_ops', lateral_ops, [(1, 1)])):
        if isinstance(ops, dict) and ops:
            raise ValueError(f'an FPN with widths needs {name} as a list of '
                             f'(kernel_size, dilation) pairs (weight-sharing '
                             f'conv shapes), got the op dict {sorted(ops)}')
        out.append(list(ops) if ops else plain)
    return out


def _make_width(fpn: FPN, widths: Sequence[int], num_outputs: int) -> None:
    """The FPN's ``width`` choice, wired into every conv; the laterals (and
    an extra conv on the input) read the backbone's widths."""
    fpn.width = width_choice(widths, fpn.out_channels, 'FPN', 'out_channels')
    for i in range(num_outputs, len(fpn.fpn_convs)):
        conv_choices(fpn, [f'fpn_convs.{i}'], [(3, 1)])
    for i, conv in enumerate(fpn.lateral_convs):
        conv.set_width_sources(out_width=fpn.width)
        conv.upstream_index = i + fpn.start_level
    extra_on_input = fpn.add_extra_convs == 'on_input'
    for i, conv in enumerate(fpn.fpn_convs):
        if not isinstance(conv, ConvShapeChoice):
            raise TypeError(f'fpn_convs.{i} is a {type(conv).__name__}')
        first_extra = i == len(fpn.lateral_convs)
        if first_extra and extra_on_input:
            conv.set_width_sources(out_width=fpn.width)
            conv.upstream_index = fpn.backbone_end_level - 1
        else:
            conv.set_width_sources(in_width=fpn.width, out_width=fpn.width)
    fpn.out_width_choices = [fpn.width] * fpn.num_outs
