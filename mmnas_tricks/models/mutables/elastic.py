"""Elastic width: layers whose channels follow width choices they do not own.

A width is a :class:`~mmnas_tricks.models.mutables.ChannelChoice` owned by
the module that groups the layers (a backbone stage, an FPN, a head's
towers); the layers keep weights for the largest width and a width of ``c``
uses their first ``c`` channels (Once-for-All, Cai et al., ICLR 2020). A
layer reads its output width from its ``out_width`` source and its input
width from the tensor it is given; its ``in_width`` source (the upstream
layers' width) tells the static export how many input channels it has. A
component's first layers take their input width from the component before
it (backbone -> neck -> head): they carry an ``upstream_index`` (which of
the component's inputs feeds them) and :func:`link_widths` connects them.
"""
import weakref
from typing import Callable, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import is_model_wrapper
from torch.nn.modules.batchnorm import _BatchNorm

from .channel_choice import ChannelChoice


class WidthSources:
    """Elastic input / output channels of a layer, driven by the
    :class:`ChannelChoice` of the layers before it (``in_width``) and of its
    own group (``out_width``). The sources are plain references (not
    submodules: they are registered where they are owned). The class using
    it has ``in_channels`` / ``out_channels``: the largest widths, those its
    weights are allocated for.
    """

    #: which input of its component feeds this layer (its input width is
    #: the upstream component's output width, set by :func:`link_widths`);
    #: None for layers inside a component
    upstream_index: Optional[int] = None

    def set_width_sources(self,
                          in_width: Optional[ChannelChoice] = None,
                          out_width: Optional[ChannelChoice] = None) -> None:
        """Make the input and / or output width elastic (None: fixed at
        ``in_channels`` / ``out_channels``)."""
        for name, source, limit in (('_in_width', in_width, self.in_channels),
                                    ('_out_width', out_width,
                                     self.out_channels)):
            if source is not None:
                if not isinstance(source, ChannelChoice):
                    raise TypeError(f'{name[1:]} must be a ChannelChoice, got '
                                    f'{type(source).__name__}')
                if source.max_channels != limit:
                    raise ValueError(
                        f'{name[1:]} choices {source.choices} do not top '
                        f'out at this block\'s {limit} {name[1:-6]}put '
                        f'channels ({type(self).__name__})')
            self.__dict__[name] = source

    @property
    def in_width(self) -> Optional[ChannelChoice]:
        return self.__dict__.get('_in_width')

    @property
    def out_width(self) -> Optional[ChannelChoice]:
        return self.__dict__.get('_out_width')

    def active_channels(self) -> Tuple[int, int]:
        """(input, output) channels of the current choices (the largest
        where a width is mixed rather than sliced)."""
        return (_active(self.in_width, self.in_channels),
                _active(self.out_width, self.out_channels))

    def input_channels(self, x: torch.Tensor) -> int:
        """The channels of ``x``, checked against the input width: equal to
        it, or (a component's first layer not yet linked to its upstream
        width) at most ``in_channels``."""
        c = x.shape[1]
        expected = self.active_channels()[0]
        unlinked = self.upstream_index is not None and self.in_width is None
        if c != expected and not (unlinked and c <= self.in_channels):
            raise ValueError(
                f'{type(self).__name__} expected {expected} input '
                f'channels (its input width), got {c}')
        return c

    def mask_output(self, out: torch.Tensor) -> torch.Tensor:
        """``differentiable`` / ``all_on`` widths: the full-width output
        times the mix of the widths' channel masks."""
        source = self.out_width
        if source is not None and not source.slicing:
            out = out * source.channel_mask(out.shape[0], out.device)
        return out


def width_choice(widths, limit: int, owner: str, where: str) -> ChannelChoice:
    """The :class:`ChannelChoice` of ``widths`` for the layers of ``owner``
    allocated at ``limit`` channels (its argument ``where``), which must be
    the largest width."""
    widths = [int(c) for c in widths]
    if max(widths) != limit:
        raise ValueError(f'{owner} widths {widths} must top out at {where}='
                         f'{limit} (the weights are allocated for the '
                         'largest width)')
    return ChannelChoice(widths)


def _active(source: Optional[ChannelChoice], limit: int) -> int:
    if source is not None and source.slicing:
        return int(source.current_choice)
    return limit


def group_size(norm: nn.Module) -> int:
    """Channels per group of a GroupNorm (1 for other norms)."""
    if isinstance(norm, nn.GroupNorm):
        return norm.num_channels // norm.num_groups
    return 1


def check_norm_widths(norm: nn.Module, source: ChannelChoice) -> None:
    """Every width of ``source`` must be a whole number of the GroupNorm's
    groups (the group size stays, the number of groups scales)."""
    size = group_size(norm)
    bad = [c for c in source.choices if c % size]
    if bad:
        raise ValueError(f'widths {bad} are not multiples of the GroupNorm '
                         f'group size {size} ({norm.num_groups} groups of '
                         f'{norm.num_channels} channels); valid widths are '
                         f'multiples of {size}')


def sliced_norm(x: torch.Tensor, norm: nn.Module, c: int) -> torch.Tensor:
    """``norm`` (BatchNorm or GroupNorm of the largest width) on the first
    ``c`` channels, as the plain module computes it on ``c`` channels:
    BatchNorm running statistics updated in place through the slices (with
    ``momentum=None``, the cumulative average BN calibration uses);
    GroupNorm with its group size kept (``c / size`` groups). At the full
    width a plain norm runs itself (a SyncBatchNorm stays synchronised)."""
    full = getattr(norm, 'num_features', getattr(norm, 'num_channels', None))
    if c == full and not isinstance(norm, ElasticModule):
        return norm(x)
    if isinstance(norm, _BatchNorm):
        momentum = 0.0 if norm.momentum is None else norm.momentum
        if norm.training and norm.track_running_stats:
            norm.num_batches_tracked.add_(1)
            if norm.momentum is None:
                momentum = 1.0 / float(norm.num_batches_tracked)
        training = norm.training or norm.running_mean is None
        stats = not norm.training or norm.track_running_stats
        return F.batch_norm(x,
                            _slice(norm.running_mean, c) if stats else None,
                            _slice(norm.running_var, c) if stats else None,
                            _slice(norm.weight, c), _slice(norm.bias, c),
                            training, momentum, norm.eps)
    if isinstance(norm, nn.GroupNorm):
        return F.group_norm(x, c // group_size(norm), _slice(norm.weight, c),
                            _slice(norm.bias, c), norm.eps)
    raise TypeError(f'a sliced width needs BatchNorm or GroupNorm, got '
                    f'{type(norm).__name__}')


#: weight views (crops, slices) a layer made, by layer: kept off the modules,
#: since a view made with autograd is no graph leaf, which deepcopy and
#: pickling refuse
_VIEWS: 'weakref.WeakKeyDictionary[nn.Module, dict]' = \
    weakref.WeakKeyDictionary()


def reused_view(owner: nn.Module, key: tuple, sources: Sequence[torch.Tensor],
                make: Callable[[], torch.Tensor]) -> torch.Tensor:
    """``make()``, a view of ``sources`` (a crop or slice of a weight, made
    contiguous), made once and handed out again while every source is the
    same tensor, unchanged (its in-place version: an optimizer step, a load
    or an init changes it), and grad mode is the same. A layer called
    several times per forward (a detection head's tower, on each pyramid
    level) or by several subnets between two optimizer steps (the sandwich
    rule) then slices its weight once instead of on every call; the
    gradients of the calls add up at the view, which passes them to the
    weight in one step. Safe across graphs: a slice's or copy's backward
    keeps no tensors, so a view can be backpropagated through again."""
    state = (tuple((t._version, t.data_ptr(), t.device, t.dtype)
                   for t in sources), torch.is_grad_enabled())
    views = _VIEWS.get(owner)
    if views is None:
        views = _VIEWS[owner] = {}
    hit = views.get(key)
    if hit is not None and hit[0] == state:
        return hit[1]
    view = make()
    views[key] = (state, view)
    return view


class _Crop(torch.autograd.Function):
    """``weight[index]``, contiguous, as one autograd op: its backward
    writes the gradient into one zero tensor of the weight's shape, where a
    chain of slices (output channels, input channels, kernel rows, kernel
    columns) fills and copies one tensor per slice."""

    @staticmethod
    def forward(ctx, weight, index):
        ctx.shape = weight.shape
        ctx.index = index
        return weight[index].contiguous()

    @staticmethod
    def backward(ctx, grad):
        full = grad.new_zeros(ctx.shape)
        full[ctx.index] = grad
        return full, None


def weight_crop(owner: nn.Module,
                name: str,
                weight: torch.Tensor,
                c_out: int,
                c_in: int,
                k: Optional[int] = None) -> torch.Tensor:
    """The conv weight of ``c_out`` x ``c_in`` channels (the first ones)
    and a ``k`` x ``k`` kernel (its centre; None: the whole kernel):
    ``weight`` itself when that is all of it, else its crop, one autograd
    op (:class:`_Crop`) made once per optimizer step
    (:func:`reused_view`, under ``owner`` and ``name``); plain slices in a
    jit trace (the FLOPs count), which must record them."""
    size = weight.shape[-1]
    k = size if k is None else k
    if tuple(weight.shape[:2]) == (c_out, c_in) and k == size:
        return weight
    start = (size - k) // 2
    index = (slice(0, c_out), slice(0, c_in), slice(start, start + k),
             slice(start, start + k))
    if torch.jit.is_tracing():  # FLOPs traces: plain slices, in the graph
        return weight[index]
    return reused_view(owner, (name, c_out, c_in, k), [weight],
                       lambda: _Crop.apply(weight, index))


def _slice(t: Optional[torch.Tensor], c: int) -> Optional[torch.Tensor]:
    return None if t is None else t[:c]


def sliced_norm_module(norm: nn.Module, c: int) -> nn.Module:
    """A plain norm of ``c`` channels holding copies of ``norm``'s first
    ``c`` (the GroupNorm's group size kept)."""
    if isinstance(norm, _BatchNorm):
        out = nn.BatchNorm2d(c, norm.eps, norm.momentum, norm.affine,
                             norm.track_running_stats)
    elif isinstance(norm, nn.GroupNorm):
        out = nn.GroupNorm(c // group_size(norm), c, norm.eps, norm.affine)
    else:
        raise TypeError(f'a sliced width needs BatchNorm or GroupNorm, got '
                        f'{type(norm).__name__}')
    copy_norm(norm, out, c)
    for p, q in zip(out.parameters(), norm.parameters()):
        p.requires_grad_(q.requires_grad)
    return out.to(_device(norm)).train(norm.training)


def copy_norm(src: nn.Module, dst: nn.Module, c: int) -> None:
    """Copy the first ``c`` channels of the norm ``src`` into ``dst`` (or
    ``dst``'s whole state into the first ``c`` of ``src`` when ``dst`` is
    the larger one): weights, biases and running statistics."""
    with torch.no_grad():
        for name in ('weight', 'bias', 'running_mean', 'running_var'):
            a, b = getattr(src, name, None), getattr(dst, name, None)
            if a is None or b is None:
                continue
            if a.shape[0] >= b.shape[0]:
                b.copy_(a[:c])
            else:
                b[:c].copy_(a)
        if getattr(src, 'num_batches_tracked', None) is not None and \
                getattr(dst, 'num_batches_tracked', None) is not None:
            dst.num_batches_tracked.copy_(src.num_batches_tracked)


def _device(module: nn.Module):
    t = next(iter(list(module.parameters()) + list(module.buffers())), None)
    return 'cpu' if t is None else t.device


class ElasticModule(WidthSources):
    """A plain layer (conv, norm) whose widths follow :class:`ChannelChoice`
    sources; it owns no choice, so it is not a mutable, but the static
    export (``fix_in_place``) replaces it by :meth:`export_module`, the
    plain layer of the current widths, like a mutable."""

    def export_module(self) -> nn.Module:
        raise NotImplementedError

    def import_module(self, module: nn.Module) -> None:
        raise NotImplementedError


class ElasticConv2d(nn.Conv2d, ElasticModule):
    """``nn.Conv2d`` (same parameter names, so a plain conv's state loads
    into it at its largest widths) that uses the first ``c_out`` filters
    over the first ``c_in`` input channels. Groups must be 1.

    Example:
        >>> conv = ElasticConv2d(3, 16, 7, stride=2, padding=3, bias=False)
        >>> conv.set_width_sources(out_width=ChannelChoice([16, 8]))
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.groups != 1:
            raise ValueError(f'ElasticConv2d needs groups=1, got '
                             f'{self.groups}')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c_in = self.input_channels(x)
        c_out = self.active_channels()[1]
        weight = weight_crop(self, 'weight', self.weight, c_out, c_in)
        return self.mask_output(
            self._conv_forward(x, weight, _slice(self.bias, c_out)))

    def export_module(self) -> nn.Module:
        c_in, c_out = self.active_channels()
        conv = nn.Conv2d(
            c_in,
            c_out,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            bias=self.bias is not None,
            padding_mode=self.padding_mode).to(self.weight.device)
        self._copy(conv, into_self=False)
        conv.weight.requires_grad_(self.weight.requires_grad)
        return conv.train(self.training)

    def import_module(self, module: nn.Module) -> None:
        self._copy(module, into_self=True)

    def _copy(self, conv: nn.Conv2d, into_self: bool) -> None:
        c_in, c_out = self.active_channels()
        pairs = [(self.weight[:c_out, :c_in], conv.weight)]
        if self.bias is not None:
            pairs.append((self.bias[:c_out], conv.bias))
        with torch.no_grad():
            for mine, theirs in pairs:
                if mine.shape != theirs.shape:
                    raise ValueError(f'a {tuple(theirs.shape)} conv does not '
                                     f'fit the {tuple(mine.shape)} slice')
                (mine
                 if into_self else theirs).copy_(theirs if into_self else mine)


class _ElasticNorm(ElasticModule):
    """A norm whose width is its ``out_width`` (input = output); first base
    of the elastic norms, so its ``forward`` is theirs."""

    @property
    def in_channels(self) -> int:
        return getattr(self, 'num_features', None) or self.num_channels

    out_channels = in_channels

    def _check_source(self, source) -> None:
        if source is not None:
            check_norm_widths(self, source)

    def set_width_sources(self, in_width=None, out_width=None) -> None:
        self._check_source(out_width)
        super().set_width_sources(out_width, out_width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.input_channels(x)
        c = self.active_channels()[1]
        return self.mask_output(sliced_norm(x, self._plain_view(), c))

    def export_module(self) -> nn.Module:
        return sliced_norm_module(self._plain_view(),
                                  self.active_channels()[1])

    def import_module(self, module: nn.Module) -> None:
        copy_norm(module, self, module.weight.shape[0])

    def _plain_view(self) -> nn.Module:
        return self


class ElasticBatchNorm2d(_ElasticNorm, nn.BatchNorm2d):
    """``nn.BatchNorm2d`` on the first ``c`` channels of the current width
    (running statistics updated through the slices)."""


class ElasticGroupNorm(_ElasticNorm, nn.GroupNorm):
    """``nn.GroupNorm`` whose group size stays and whose number of groups
    follows the width (``c / size`` groups of the first ``c`` channels):
    the GroupNorm-compatible elastic width of a detection head."""


def elastic_norm(norm: nn.Module) -> nn.Module:
    """The elastic copy (same state) of a BatchNorm2d / GroupNorm."""
    if isinstance(norm, nn.BatchNorm2d):
        out = ElasticBatchNorm2d(norm.num_features, norm.eps, norm.momentum,
                                 norm.affine, norm.track_running_stats)
    elif isinstance(norm, nn.GroupNorm):
        out = ElasticGroupNorm(norm.num_groups, norm.num_channels, norm.eps,
                               norm.affine)
    else:
        raise TypeError(f'an elastic width needs BatchNorm or GroupNorm, got '
                        f'{type(norm).__name__}')
    out.load_state_dict(norm.state_dict())
    return out.to(_device(norm)).train(norm.training)


def elastic_conv(conv: nn.Conv2d) -> ElasticConv2d:
    """The elastic copy (same weights) of an ``nn.Conv2d``."""
    out = ElasticConv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        conv.groups,
        conv.bias is not None,
        padding_mode=conv.padding_mode)
    out.load_state_dict(conv.state_dict())
    return out.to(conv.weight.device).train(conv.training)


# -- between components -------------------------------------------------------

#: the data flow of an mmdet / mmseg model: (upstream, downstream) component
#: attribute names
_FLOW = (('backbone', 'neck'), ('neck', 'bbox_head'), ('neck', 'rpn_head'),
         ('neck', 'decode_head'), ('neck', 'auxiliary_head'))


def _components(model: nn.Module) -> List[Tuple[nn.Module, str, nn.Module]]:
    """(upstream, downstream name, downstream) pairs present in ``model``;
    without a neck the heads read the backbone."""
    pairs = []
    for up, down in _FLOW:
        if up == 'neck' and getattr(model, 'neck', None) is None:
            up = 'backbone'
        a, b = getattr(model, up, None), getattr(model, down, None)
        if isinstance(a, nn.Module) and isinstance(b, nn.Module):
            pairs.append((a, down, b))
    return pairs


def link_widths(model: nn.Module) -> None:
    """Connect every component's first layers (``upstream_index`` set) to
    the output width of the component before it (``out_width_choices``: a
    list per output of :class:`ChannelChoice` or None), so that the static
    export and the parameter count know their input channels. Idempotent;
    a model without elastic widths is left alone.

    Raises:
        ValueError: an upstream width does not top out at the channels the
            downstream layer was built for (e.g. an FPN's ``in_channels``
            smaller than the backbone's largest stage width).
    """
    if is_model_wrapper(model):
        model = model.module
    for upstream, name, downstream in _components(model):
        sources = getattr(upstream, 'out_width_choices', None)
        if sources is None:
            continue
        for layer_name, layer in downstream.named_modules():
            index = getattr(layer, 'upstream_index', None)
            if index is None or not isinstance(layer, WidthSources):
                continue
            if index >= len(sources):
                raise ValueError(f'{name}.{layer_name} reads input {index}, '
                                 f'the upstream component has '
                                 f'{len(sources)} outputs')
            source = sources[index]
            if source is not None and source.max_channels != \
                    layer.in_channels:
                raise ValueError(
                    f'{name}.{layer_name} was built for {layer.in_channels} '
                    f'input channels, its upstream width tops out at '
                    f'{source.max_channels} (choices {source.choices}): '
                    f'set {name}\'s in_channels to the largest widths')
            layer.__dict__['_in_width'] = source


def input_channels(model: nn.Module) -> dict:
    """``{component name: its input channels}`` for the current choices of
    every component fed by elastic widths (``out_width_choices`` upstream):
    one entry per input of the component, the active width of its upstream
    source, or None where the upstream output is not elastic (the config's
    value stands). What the exported config's ``in_channels`` must say."""
    if is_model_wrapper(model):
        model = model.module
    link_widths(model)
    found = {}
    for upstream, name, _ in _components(model):
        sources = getattr(upstream, 'out_width_choices', None)
        if sources is None or all(s is None for s in sources):
            continue
        found[name] = [
            None if s is None else _active(s, s.max_channels) for s in sources
        ]
    return found
