"""Channel importance sorting of a plain FCOS or Semantic FPN checkpoint
(Once-for-All's channel re-organisation, Cai et al., ICLR 2020, sec. 3.2):
permute every channel space of the trained plain network so that its most
important channels come first, without changing what the network computes. A
weight-sharing supernet whose narrower widths take the *first* channels
then starts each narrower subnet from the channels that matter most
instead of arbitrary ones (docs/tricks.md, "Channel sorting").

A channel space is the set of tensors one permutation must move together:
the producers (conv / norm tensors whose dim 0 indexes it) and the
consumers (conv weights whose dim 1 reads it). In a ResNet of basic blocks
every stage's residual stream is one space (the stem or downsample, every
block's second conv and everything reading the stream) and each block's
inner channels another; in an FPN the lateral outputs are one space (they
are summed top-down) and the outputs of every level one more (the head is
shared across levels); each head tower layer is a space whose GroupNorm
groups move whole (a Semantic FPN head: each scale-head conv's output, and
the one space all scale heads sum into). The importance of a channel is
the L1 norm of what its consumers read from it (Once-for-All ranks by the
next layer's weights); a GroupNorm group's is the sum over its channels.
"""
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import torch

_NORM_STATS = ('weight', 'bias', 'running_mean', 'running_var')


@dataclass
class ChannelSpace:
    """Tensors (state-dict keys) that one channel permutation moves:
    ``producers`` along dim 0, ``consumers`` along dim 1, ``group``
    channels at a time (a GroupNorm's group size)."""
    name: str
    producers: List[str] = field(default_factory=list)
    consumers: List[str] = field(default_factory=list)
    group: int = 1


def importance(state: Dict[str, torch.Tensor],
               space: ChannelSpace) -> torch.Tensor:
    """L1 norm per channel of what the consumers read from it."""
    total = None
    for key in space.consumers:
        w = state[key].detach().float().abs()
        per = w.transpose(0, 1).reshape(w.shape[1], -1).sum(1)
        total = per if total is None else total + per
    return total


def sort_order(score: torch.Tensor, group: int = 1) -> torch.Tensor:
    """The permutation (new position -> old channel) that puts the highest
    ``score`` first, ``group`` consecutive channels kept together (groups
    by their summed score, channels within a group by their own); ties keep
    their order."""
    n = score.numel()
    if n % group:
        raise ValueError(f'{n} channels are not whole groups of {group}')
    s = score.double().view(n // group, group)
    groups = torch.sort(-s.sum(1), stable=True).indices
    within = torch.sort(-s, dim=1, stable=True).indices
    base = torch.arange(0, n, group).view(-1, 1)
    return (base + within)[groups].reshape(-1)


def permute_space(state: Dict[str, torch.Tensor], space: ChannelSpace,
                  order: torch.Tensor) -> None:
    """Apply ``order`` to every tensor of ``space`` in ``state`` (in
    place: the dict's values are replaced)."""
    for key in space.producers:
        state[key] = state[key].index_select(0, order.to(state[key].device))
    for key in space.consumers:
        state[key] = state[key].index_select(1, order.to(state[key].device))


def sort_channels(state: Dict[str, torch.Tensor],
                  spaces: Sequence[ChannelSpace]) -> Dict[str, list]:
    """Sort every space of ``state`` by :func:`importance` (in place);
    returns ``{space name: order}`` (new position -> old channel)."""
    out = {}
    for space in spaces:
        order = sort_order(importance(state, space), space.group)
        permute_space(state, space, order)
        out[space.name] = order.tolist()
    return out


def _norm(state, prefix: str) -> List[str]:
    """The norm tensors at ``prefix`` that ``state`` holds."""
    return [f'{prefix}.{s}' for s in _NORM_STATS if f'{prefix}.{s}' in state]


def _conv_module(state, prefix: str) -> List[str]:
    """The producer keys of the conv at ``prefix`` (``prefix.weight`` or an
    mmcv ConvModule's ``prefix.conv.weight``), its bias and its norm."""
    conv = prefix + '.conv' if prefix + '.conv.weight' in state else prefix
    keys = [conv + '.weight'] + [conv + '.bias'] * (conv + '.bias' in state)
    for norm in ('bn', 'gn', 'norm'):
        keys += _norm(state, f'{prefix}.{norm}')
    return keys


def _weight(state, prefix: str) -> str:
    return prefix + ('.conv.weight' if prefix +
                     '.conv.weight' in state else '.weight')


def _indices(state, pattern: str) -> List[int]:
    rx = re.compile(pattern)
    return sorted({int(m.group(1)) for k in state for m in [rx.match(k)] if m})


def _resnet_fpn_spaces(state: Dict[str,
                                   torch.Tensor], out_indices: Sequence[int],
                       backbone: str, neck: str) -> tuple:
    """The channel spaces of a ResNet of basic blocks (mmdet's stem or
    mmseg's V1c deep stem) and the FPN reading its ``out_indices`` stages:
    ``(spaces, outputs)``, the FPN's output space last, its readers to be
    added by the head."""
    bb, spaces = backbone, []
    if not any(k.startswith(f'{bb}.layer1.0.conv1.') for k in state):
        raise ValueError(f'channel sorting needs a ResNet at {bb!r}: no '
                         f'{bb}.layer1.0.conv1.weight in the checkpoint')
    if any(re.match(rf'{bb}\.layer\d+\.\d+\.conv3\.', k) for k in state):
        raise ValueError('channel sorting supports basic blocks only: the '
                         f'checkpoint has bottlenecks ({bb}.layer*.*.conv3)')
    if f'{bb}.stem.0.weight' in state:  # the deep stem: 3 convs
        convs = _indices(state, rf'{bb}\.stem\.(\d+)\.weight$')
        convs = [c for c in convs if state[f'{bb}.stem.{c}.weight'].dim() == 4]
        for a, b in zip(convs, convs[1:]):
            spaces.append(
                ChannelSpace(f'{bb}.stem.{a}', [f'{bb}.stem.{a}.weight'] +
                             _norm(state, f'{bb}.stem.{a + 1}'),
                             [f'{bb}.stem.{b}.weight']))
        stream = ChannelSpace(f'{bb}.stem', [f'{bb}.stem.{convs[-1]}.weight'] +
                              _norm(state, f'{bb}.stem.{convs[-1] + 1}'))
    else:
        stream = ChannelSpace(f'{bb}.stem', _conv_module(state, f'{bb}.conv1'))
        stream.producers += _norm(state, f'{bb}.bn1')
    spaces.append(stream)
    stage_streams = []
    for i in _indices(state, rf'{bb}\.layer(\d+)\.0\.conv1\.weight$'):
        for b in _indices(state, rf'{bb}\.layer{i}\.(\d+)\.conv1\.weight$'):
            p = f'{bb}.layer{i}.{b}'
            down = f'{p}.downsample.0.weight' in state
            stream.consumers.append(f'{p}.conv1.weight')
            if down:
                stream.consumers.append(f'{p}.downsample.0.weight')
                stream = ChannelSpace(f'{bb}.layer{i}')
                stream.producers += [f'{p}.downsample.0.weight'] + _norm(
                    state, f'{p}.downsample.1')
                spaces.append(stream)
            inner = ChannelSpace(f'{p}.inner', [f'{p}.conv1.weight'] +
                                 _norm(state, f'{p}.bn1'),
                                 [f'{p}.conv2.weight'])
            spaces.append(inner)
            stream.producers += [f'{p}.conv2.weight'] + _norm(
                state, f'{p}.bn2')
        stage_streams.append(stream)

    laterals = _indices(state, rf'{neck}\.lateral_convs\.(\d+)\.')
    outputs = _indices(state, rf'{neck}\.fpn_convs\.(\d+)\.')
    if len(laterals) != len(out_indices):
        raise ValueError(f'{len(laterals)} FPN laterals but out_indices '
                         f'{list(out_indices)} name {len(out_indices)} stages')
    lateral = ChannelSpace(f'{neck}.laterals')
    output = ChannelSpace(f'{neck}.outputs')
    for lvl, stage in zip(laterals, out_indices):
        p = f'{neck}.lateral_convs.{lvl}'
        stage_streams[stage].consumers.append(_weight(state, p))
        lateral.producers += _conv_module(state, p)
        lateral.consumers.append(_weight(state, f'{neck}.fpn_convs.{lvl}'))
    width = state[lateral.producers[0]].shape[0]
    for lvl in outputs:
        p = f'{neck}.fpn_convs.{lvl}'
        output.producers += _conv_module(state, p)
        if lvl not in laterals:  # an extra level, reading an output
            if state[_weight(state, p)].shape[1] != width:
                raise ValueError(
                    f'{p} reads {state[_weight(state, p)].shape[1]} '
                    f'channels, not the FPN width {width}: channel sorting '
                    "supports add_extra_convs='on_output' only")
            output.consumers.append(_weight(state, p))
    spaces.append(lateral)
    return spaces, output


def fcos_channel_spaces(state: Dict[str, torch.Tensor],
                        out_indices: Sequence[int],
                        centerness_on_reg: bool = True,
                        gn_group: int = 1,
                        backbone: str = 'backbone',
                        neck: str = 'neck',
                        head: str = 'bbox_head') -> List[ChannelSpace]:
    """The channel spaces of a plain FCOS checkpoint: mmdet's ResNet of
    basic blocks (``backbone``), FPN (``neck``, extra convs on its outputs)
    and FCOSHead (``head``; towers with GroupNorm groups of ``gn_group``
    channels; centerness on the regression tower when
    ``centerness_on_reg``). ``out_indices``: the backbone stages the FPN
    reads, in order.

    Raises:
        ValueError: a checkpoint of another layout (bottleneck blocks, an
            FPN whose extra convs read the backbone, missing tensors),
            naming what does not fit.
    """
    spaces, output = _resnet_fpn_spaces(state, out_indices, backbone, neck)
    spaces.append(output)
    towers = dict(
        cls=[f'{head}.conv_cls.weight'], reg=[f'{head}.conv_reg.weight'])
    towers['reg' if centerness_on_reg else 'cls'].append(
        f'{head}.conv_centerness.weight')
    for tower, finals in towers.items():
        reads = output
        layers = _indices(state, rf'{head}\.{tower}_convs\.(\d+)\.')
        for j in layers:
            p = f'{head}.{tower}_convs.{j}'
            reads.consumers.append(_weight(state, p))
            reads = ChannelSpace(p, _conv_module(state, p), group=gn_group)
            spaces.append(reads)
        reads.consumers += finals
    return _checked(state, spaces, 'an FCOS')


def sem_fpn_channel_spaces(state: Dict[str, torch.Tensor],
                           out_indices: Sequence[int],
                           backbone: str = 'backbone',
                           neck: str = 'neck',
                           head: str = 'decode_head') -> List[ChannelSpace]:
    """The channel spaces of a plain Semantic FPN checkpoint: a ResNet of
    basic blocks (mmseg's V1c deep stem or mmdet's), the FPN and mmseg's
    ``FPNHead``: each scale head's convs in turn (every inner output a
    space), the last conv of every scale head producing the one space the
    head sums and ``conv_seg`` reads. Raises ``ValueError`` as
    :func:`fcos_channel_spaces` does."""
    spaces, output = _resnet_fpn_spaces(state, out_indices, backbone, neck)
    spaces.append(output)
    summed = ChannelSpace(f'{head}.sum', [], [f'{head}.conv_seg.weight'])
    scales = _indices(state, rf'{head}\.scale_heads\.(\d+)\.')
    if not scales:
        raise ValueError(f'channel sorting needs an FPNHead at {head!r}: no '
                         f'{head}.scale_heads.* in the checkpoint')
    for i in scales:
        reads = output
        convs = _indices(state, rf'{head}\.scale_heads\.{i}\.(\d+)\.')
        for n, j in enumerate(convs):
            p = f'{head}.scale_heads.{i}.{j}'
            reads.consumers.append(_weight(state, p))
            if n == len(convs) - 1:
                summed.producers += _conv_module(state, p)
            else:
                reads = ChannelSpace(p, _conv_module(state, p))
                spaces.append(reads)
    spaces.append(summed)
    return _checked(state, spaces, 'a Semantic FPN')


def _checked(state, spaces: List[ChannelSpace], what: str) -> list:
    missing = [
        k for s in spaces for k in s.producers + s.consumers if k not in state
    ]
    if missing:
        raise ValueError(f'the checkpoint lacks {missing[:5]} (of '
                         f'{len(missing)}): not {what} of this layout')
    return spaces


def fcos_layout(model) -> dict:
    """The facts :func:`fcos_channel_spaces` needs, read from a built FCOS
    (plain or its supernet: the same layout): the stages the neck reads,
    where the centerness branch sits and the head's GroupNorm group size
    (one for every tower layer)."""
    from .mutables.elastic import group_size
    head = model.bbox_head
    groups = {
        group_size(m)
        for name, m in head.named_modules()
        if isinstance(m, torch.nn.GroupNorm)
    }
    if len(groups) > 1:
        raise ValueError(f'head GroupNorms of different group sizes '
                         f'{sorted(groups)}: channel sorting needs one')
    start = getattr(model.neck, 'start_level', 0)
    return dict(
        out_indices=list(model.backbone.out_indices)[start:],
        centerness_on_reg=bool(getattr(head, 'centerness_on_reg', False)),
        gn_group=groups.pop() if groups else 1)


def sort_fcos_checkpoint(state: Dict[str, torch.Tensor],
                         model,
                         layout: Optional[dict] = None) -> Dict[str, list]:
    """Sort the channels of the plain FCOS checkpoint ``state`` (in place)
    with the layout of ``model`` (:func:`fcos_layout`); returns the orders
    per space (:func:`sort_channels`)."""
    layout = layout or fcos_layout(model)
    return sort_channels(state, fcos_channel_spaces(state, **layout))


def sort_plain_checkpoint(state: Dict[str, torch.Tensor],
                          model) -> Dict[str, list]:
    """Sort the channels of the plain checkpoint ``state`` (in place) in
    the layout of ``model``: an FCOS (``bbox_head``,
    :func:`sort_fcos_checkpoint`) or a Semantic FPN (``decode_head``,
    :func:`sem_fpn_channel_spaces`); returns the orders per space.

    Raises:
        ValueError: ``model`` is neither.
    """
    if hasattr(model, 'bbox_head'):
        return sort_fcos_checkpoint(state, model)
    if hasattr(model, 'decode_head'):
        start = getattr(model.neck, 'start_level', 0)
        out = list(model.backbone.out_indices)[start:]
        return sort_channels(state, sem_fpn_channel_spaces(state, out))
    raise ValueError(f'channel sorting knows FCOS detectors and Semantic FPN '
                     f'segmentors; {type(model).__name__} has neither a '
                     'bbox_head nor a decode_head')
