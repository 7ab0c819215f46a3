"""FLOPs and parameters of a subnet of a whole model (backbone + neck +
head), counted by mmengine's analysis tools at a given input size, and its
latency, measured.

One rule for the input size of every figure (:func:`input_size`): an
explicit size, else the config's data preprocessor ``size``, else the first
resize of its test pipeline (padded as the network sees it), else an error
asking for an explicit size. Every tool prints and writes the size beside
the figures it reports (``input_size: [H, W]``)."""
import statistics
import time
from typing import Dict, NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.model import is_model_wrapper

from mmnas_tricks.structures import subnet_key
from .mutables import (ConvShapeChoice, DepthChoice, KernelSizeChoice,
                       MBConvChoice, OpChoice, Subnet, get_subnet,
                       named_mutables, set_subnet, static_copy,
                       subnet_param_count)


def subnet_resources(
        model: nn.Module,
        subnet: Optional[Subnet] = None,
        input_shape: Optional[Sequence[int]] = None,
        inputs: Optional[Union[torch.Tensor, Tuple]] = None) -> Dict[str, int]:
    """FLOPs (multiply-adds, as mmengine's ``FlopAnalyzer`` counts them) and
    parameters of ``subnet`` (default: the current choices).

    The supernet is not copied: the subnet is set, every mutable that is not
    fixed runs in ``sampled`` mode (only the chosen candidates are traced),
    and choices, modes and train/eval state are restored afterwards.

    Args:
        model (nn.Module): The supernet, e.g. an mmdet detector (its
            ``forward(inputs)`` runs backbone, neck and head in ``tensor``
            mode).
        subnet (dict, optional): The subnet. Defaults to None.
        input_shape (Sequence[int]): (C, H, W) of one input image when
            ``inputs`` is None: required then (:func:`input_size` finds
            a config's).
        inputs (Tensor | tuple, optional): Explicit forward arguments.
            Defaults to None.

    Returns:
        dict: ``flops`` and ``params`` (ints).
    """
    if input_shape is None and inputs is None:
        raise TypeError('subnet_resources needs input_shape (C, H, W) or '
                        'inputs')
    flops, _ = _trace(model, subnet, input_shape, inputs)
    return dict(
        flops=flops,
        params=subnet_param_count(
            model.module if is_model_wrapper(model) else model, subnet))


def _trace(model: nn.Module, subnet: Optional[Subnet], input_shape,
           inputs) -> Tuple[int, Dict[str, int]]:
    """Total FLOPs of ``subnet`` and FLOPs by module path (mmengine's
    ``FlopAnalyzer``); choices, modes and train / eval state restored."""
    from mmengine.analysis import FlopAnalyzer
    if is_model_wrapper(model):
        model = model.module
    if isinstance(inputs, torch.Tensor):
        inputs = (inputs, )
    mutables = named_mutables(model)
    previous = get_subnet(model)
    modes = {n: m.mode for n, m in mutables.items()}
    was_training = model.training
    try:
        if subnet is not None:
            set_subnet(model, subnet)
        if inputs is None:
            param = next(model.parameters(), None)
            device = param.device if param is not None else 'cpu'
            inputs = (torch.zeros(
                1, *traced_input_shape(model, input_shape), device=device), )
        for m in mutables.values():
            if m.mode != 'fixed':
                m.set_mode('sampled')
        model.eval()
        traced, prefix = model, ''
        if hasattr(model, 'rpn_head') and len(inputs) == 1:
            traced, prefix = _WithImageShape(model), 'detector.'
        with torch.no_grad():
            analyzer = FlopAnalyzer(traced, inputs)
            analyzer.unsupported_ops_warnings(False)
            analyzer.uncalled_modules_warnings(False)
            flops = int(analyzer.total())
            by_module = {
                k[len(prefix):]: int(v)
                for k, v in analyzer.by_module().items()
                if k.startswith(prefix)
            }
    finally:
        set_subnet(model, previous)
        for n, m in mutables.items():
            m.set_mode(modes[n])
        model.train(was_training)
    return flops, by_module


def traced_input_shape(model: nn.Module,
                       input_shape: Sequence[int],
                       subnet: Optional[Subnet] = None) -> Tuple[int, ...]:
    """The shape the network sees for an input of ``input_shape``: resized
    by a data preprocessor with an input-size choice
    (:class:`~mmnas_tricks.models.SearchableDetDataPreprocessor`), at
    ``subnet``'s size (default: the current choice), so that FLOPs are
    counted at the chosen size."""
    if is_model_wrapper(model):
        model = model.module
    pre = getattr(model, 'data_preprocessor', None)
    if not hasattr(pre, 'input_shape'):
        return tuple(input_shape)
    if subnet is None:
        return tuple(pre.input_shape(tuple(input_shape)))
    previous = get_subnet(model)
    try:
        set_subnet(model, subnet)
        return tuple(pre.input_shape(tuple(input_shape)))
    finally:
        set_subnet(model, previous)


class InputSize(NamedTuple):
    """``shape`` (C, H, W) of one input and ``source``, where the size came
    from; ``str()`` is what tools print beside a figure."""
    shape: Tuple[int, int, int]
    source: str

    @property
    def hw(self) -> list:
        """``[H, W]``, as the JSON outputs write it."""
        return list(self.shape[1:])

    def __str__(self) -> str:
        return f'{size_text(self.shape)} ({self.source})'


def size_text(shape: Sequence[int]) -> str:
    """``'HxW'`` of a (C, H, W) or (H, W) shape."""
    return 'x'.join(str(int(v)) for v in tuple(shape)[-2:])


def input_size(cfg, explicit: Optional[Sequence[int]] = None) -> InputSize:
    """The input size of every FLOPs / params / latency figure of the model
    a config builds, and where it came from, by one rule:

    1. ``explicit`` (H, W) or (C, H, W), e.g. a tool's ``--shape``;
    2. the data preprocessor's ``size`` (mmseg's crop size);
    3. the ``scale`` (w, h) of the first resize of the test pipeline (mmdet;
       the val pipeline when there is no test loader), padded up to the data
       preprocessor's ``pad_size_divisor``: what the network sees. A
       ``keep_ratio`` resize fits the image inside that scale, so the size
       is an upper bound, as the source says. With an input-size choice the
       pipelines resize to its base size and FLOPs are counted at each
       subnet's size (:func:`traced_input_shape`);
    4. else a ``ValueError`` naming the config and asking for (1).
    """
    if explicit is not None:
        shape = tuple(int(v) for v in explicit)
        if len(shape) == 2:
            shape = (3, ) + shape
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f'input size {tuple(explicit)!r}: expected '
                             '(H, W) or (C, H, W) of positive ints')
        return InputSize(shape, 'given explicitly')
    pre = cfg.model.get('data_preprocessor') or {}
    size = pre.get('size')
    if size:
        return InputSize((3, *(int(v) for v in size)),
                         'model.data_preprocessor.size')
    for name in ('test_dataloader', 'val_dataloader'):
        dataset = (cfg.get(name) or {}).get('dataset', {})
        while 'pipeline' not in dataset and 'dataset' in dataset:  # wrappers
            dataset = dataset['dataset']
        if not dataset.get('pipeline'):
            continue
        d = int(pre.get('pad_size_divisor') or 1)
        for step in dataset['pipeline']:
            scale = step.get('scale') if 'Resize' in str(step.get('type')) \
                else None
            if isinstance(scale, int):
                scale = (scale, scale)
            if isinstance(scale, (list, tuple)) and len(scale) == 2 and all(
                    isinstance(v, int) for v in scale):
                source = f"{name}'s {step['type']} scale " \
                    f'{tuple(scale)} (w, h)'
                if d > 1:
                    source += f', padded to a multiple of {d}'
                if step.get('keep_ratio'):
                    source += ', keep_ratio: at most'
                return InputSize(
                    (3, -(-scale[1] // d) * d, -(-scale[0] // d) * d), source)
        break
    where = getattr(cfg, 'filename', None) or 'the config'
    raise ValueError(
        f'{where}: no input size for FLOPs / params / latency: '
        'model.data_preprocessor has no `size` and the test pipeline no '
        'Resize with an int (w, h) `scale`; give one explicitly (the '
        "tools' --shape H W)")


def config_input_shape(cfg) -> Tuple[int, int, int]:
    """(C, H, W) of one input of the model a config builds
    (:func:`input_size`'s rule)."""
    return input_size(cfg).shape


def config_resources(cfg, latency: bool = True) -> Dict[str, float]:
    """``flops``, ``params`` and, with ``latency``, ``latency_ms``
    (:func:`measure_latency`) of the model a plain config builds, at its
    input size (:func:`input_size`), written as ``input_size`` ([H, W]) and
    ``input_source``."""
    from mmnas_tricks.utils import build_model
    size = input_size(cfg)
    shape = size.shape
    model = build_model(cfg)
    res = subnet_resources(model, input_shape=shape)
    res['input_size'] = list(traced_input_shape(model, shape)[1:])
    res['input_source'] = size.source
    if latency:
        res['latency_ms'] = measure_latency(model, input_shape=shape)
    return res


def measure_latency(model: nn.Module,
                    subnet: Optional[Subnet] = None,
                    input_shape: Optional[Sequence[int]] = None,
                    repeats: int = 10,
                    warmup: int = 2) -> float:
    """Median milliseconds of one forward (batch 1, ``tensor`` mode, no
    autograd) of ``subnet`` (default: the current choices) built as the
    plain model it exports to (:func:`static_copy`: no supernet overhead),
    on the device of ``model``'s parameters, at the input size the subnet
    sees (:func:`traced_input_shape`). Measured, so it moves with the load
    of the machine: compare latencies taken in one run.

    Args:
        model (nn.Module): The supernet (DDP wrappers are unwrapped).
        subnet (dict, optional): The subnet. Defaults to None.
        input_shape (Sequence[int]): (C, H, W) of one input image
            (required; :func:`input_size` finds a config's).
        repeats (int): Timed forwards (the median is returned). Defaults
            to 10.
        warmup (int): Untimed forwards first. Defaults to 2.
    """
    if input_shape is None:
        raise TypeError('measure_latency needs input_shape (C, H, W)')
    if repeats < 1 or warmup < 0:
        raise ValueError(f'repeats={repeats} must be >= 1 and warmup='
                         f'{warmup} >= 0')
    if is_model_wrapper(model):
        model = model.module
    previous = get_subnet(model)
    try:
        if subnet is not None:
            set_subnet(model, subnet)
        shape = traced_input_shape(model, input_shape)
        # a structural view: the supernet's tensors are not copied
        static, _ = static_copy(model, share_weights=True)
    finally:
        set_subnet(model, previous)
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device('cpu')
    static.to(device).eval()
    run = _WithImageShape(static) if hasattr(static, 'rpn_head') else static
    inputs = torch.zeros(1, *shape, device=device)
    times = []
    with torch.no_grad():
        for i in range(warmup + repeats):
            if device.type == 'cuda':
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            run(inputs)
            if device.type == 'cuda':
                torch.cuda.synchronize(device)
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


#: mutable classes whose choice changes only their own computation (exact
#: classes: a subclass may drive other layers)
ADDITIVE = (OpChoice, ConvShapeChoice, KernelSizeChoice, DepthChoice,
            MBConvChoice)


def not_additive(model: nn.Module) -> Optional[str]:
    """Why the cost of a subnet of ``model`` is not a sum of one term per
    (mutable, choice), or None where it is: every mutable of a kind in
    :data:`ADDITIVE` (an MBConv choice without elastic width), none nested in
    another, and not a two-stage detector (its RoI head's cost follows the
    proposals). Channel and input(-size) choices change the layers around
    them, so a space with any is not additive."""
    mutables = named_mutables(model)
    if not mutables:
        return 'no mutables'
    for name, m in mutables.items():
        if (type(m) not in ADDITIVE
                or (type(m) is MBConvChoice and
                    (m.__dict__.get('_in_width') is not None
                     or m.__dict__.get('_out_width') is not None))):
            return f'{name} is a {type(m).__name__}, whose choice ' \
                'changes other layers (or is not known not to)'
        if any(name.startswith(other + '.') for other in mutables):
            return f'{name} is nested in another mutable'
    if hasattr(model, 'rpn_head'):
        return 'a two-stage detector: RoI head costs follow proposals'
    return None


class ResourceTable:
    """FLOPs and params of subnets as a search needs them for every
    candidate (and every candidate a constraint rejects), without tracing
    each one when the space allows: FLOPs = the FLOPs outside the mutables
    + one table entry per (mutable, choice), each measured by
    :func:`subnet_resources`' trace (mmengine's ``FlopAnalyzer``, by module).

    The table is used only where it is exact: every mutable is of a kind
    whose choice changes only its own computation (op, conv shape, kernel
    size, depth choices; MBConv choices without elastic width), none is
    nested in another, and ``max(num_choices)`` probe traces (probe k: every
    mutable at its k-th choice) agree: the same FLOPs outside the mutables
    and the same FLOPs for a (mutable, choice) seen twice. The first
    ``check`` predictions are traced too and must match; otherwise, and for
    every other space (channel choices, input choices, two-stage detectors
    whose RoI head depends on the proposals), each subnet is traced, as
    :func:`subnet_resources` does. Params are counted directly (cheap).

    Args:
        model (nn.Module): The supernet.
        input_shape (Sequence[int]): (C, H, W) of one input.
        check (int): Predictions verified by a trace. Defaults to 2.
    """

    def __init__(self,
                 model: nn.Module,
                 input_shape: Sequence[int],
                 check: int = 2) -> None:
        self.model = model.module if is_model_wrapper(model) else model
        self.input_shape = tuple(input_shape)
        self.check = check
        self.table: Optional[Dict[str, Dict[str, int]]] = None
        self.rest: Optional[int] = None
        self.traces = 0
        self.why_not = self._build()

    def _build(self) -> Optional[str]:
        """Probe and fill the table; returns why it is not used, or None."""
        reason = not_additive(self.model)
        if reason:
            return reason
        mutables = named_mutables(self.model)
        self.table = {n: {} for n in mutables}
        base = get_subnet(self.model)
        for k in range(max(m.num_choices for m in mutables.values())):
            probe = dict(base)
            for n, m in mutables.items():
                if m.mode != 'fixed':
                    probe[n] = m.choices[min(k, m.num_choices - 1)]
            reason = self._learn(probe, self._trace(probe))
            if reason:
                self.table = None
                return reason
        return None

    def _trace(self, subnet: Subnet) -> Tuple[int, Dict[str, int]]:
        self.traces += 1
        return _trace(self.model, subnet, self.input_shape, None)

    def _learn(self, subnet: Subnet, traced) -> Optional[str]:
        total, by_module = traced
        inside = 0
        for name in self.table:
            flops = by_module.get(name, 0)
            inside += flops
            key = subnet_key({name: subnet[name]})
            if self.table[name].setdefault(key, flops) != flops:
                return f'{name} = {subnet[name]!r} counted {flops} and ' \
                    f'{self.table[name][key]} FLOPs in two subnets'
        rest = total - inside
        if self.rest is None:
            self.rest = rest
        elif rest != self.rest:
            return f'the FLOPs outside the mutables changed ({self.rest} ' \
                f'-> {rest})'
        return None

    def _predict(self, subnet: Subnet) -> Optional[int]:
        flops = self.rest
        for name, entries in self.table.items():
            value = entries.get(subnet_key({name: subnet[name]}))
            if value is None:
                return None
            flops += value
        return flops

    def __call__(self, subnet: Subnet) -> Dict[str, int]:
        subnet = dict(get_subnet(self.model), **subnet)
        params = subnet_param_count(self.model, subnet)
        flops = None if self.table is None else self._predict(subnet)
        if flops is None or self.check > 0:
            traced = self._trace(subnet)
            if flops is not None:
                self.check -= 1
                if traced[0] != flops:
                    self.table = None
                    self.why_not = f'predicted {flops} FLOPs, traced ' \
                        f'{traced[0]}'
            if self.table is not None:
                reason = self._learn(subnet, traced)
                if reason:
                    self.table, self.why_not = None, reason
            flops = traced[0]
        return dict(flops=flops, params=params)


class LatencyTable:
    """Measured latency of subnets from a per-choice table where latency is
    additive (the latency lookup table of ProxylessNAS and FBNet): the base
    subnet's latency plus, for every mutable off its base choice, what that
    choice alone changes (measured with every other mutable at its base
    choice, each against a measurement of the base taken just before it).
    Two measurements per (mutable, choice) instead of one per candidate.

    The table is built only for a space whose cost is additive by
    construction (:func:`not_additive`: the same rule as
    :class:`ResourceTable`'s), and kept only while its first ``check``
    predictions agree with a measurement within ``tolerance`` (relative):
    timings move with the load of the machine and with cache effects that
    no sum captures, so a table that does not predict is dropped
    (:attr:`why_not` says why) and every subnet is measured. Without a
    table each call measures.

    Args:
        model (nn.Module): The supernet.
        measure (callable): ``measure(subnet) -> milliseconds``, e.g.
            :func:`measure_latency` bound to the model and input shape.
        check (int): Predictions verified by a measurement. Defaults to 4.
        tolerance (float): The largest relative error of a checked
            prediction. Defaults to 0.15.
        state (dict, optional): :meth:`state_dict` of an earlier table (a
            resumed search predicts as the uninterrupted one did). Defaults
            to None (measure the table).
    """

    def __init__(self,
                 model: nn.Module,
                 measure,
                 check: int = 4,
                 tolerance: float = 0.15,
                 state: Optional[dict] = None) -> None:
        if check < 0 or not tolerance > 0:
            raise ValueError(f'check={check} must be >= 0 and tolerance='
                             f'{tolerance} > 0')
        self.model = model.module if is_model_wrapper(model) else model
        self.measure = measure
        self.tolerance = float(tolerance)
        self.measurements = 0
        if state is not None:
            self.load_state_dict(state)
            return
        self.check = check
        self.base: Optional[Subnet] = None
        self.base_ms: Optional[float] = None
        self.deltas: Optional[Dict[str, Dict[str, float]]] = None
        self.errors = []
        self.why_not = not_additive(self.model)
        if self.why_not is None:
            self._build()

    def _measure(self, subnet: Subnet) -> float:
        self.measurements += 1
        return float(self.measure(subnet))

    #: base measurements run and discarded before the table (the first
    #: forwards of a process are slower: allocator, thread pool, caches)
    WARMUP = 3

    def _build(self) -> None:
        """Each entry a paired difference: the base measured right before
        the one-off subnet, so that a drift of the machine's speed during
        the build cancels instead of entering every later entry (how far
        the sums are from a measurement: ``benchmarks/latency_table.py``)."""
        self.base = get_subnet(self.model)
        for _ in range(self.WARMUP):
            self.measure(self.base)
        bases = []
        self.deltas = {}
        for name, m in named_mutables(self.model).items():
            if m.mode == 'fixed':
                continue
            entries = self.deltas[name] = {}
            base_key = subnet_key({name: self.base[name]})
            for choice in m.choices:
                key = subnet_key({name: choice})
                if key == base_key:
                    continue
                bases.append(self._measure(self.base))
                entries[key] = self._measure(
                    dict(self.base, **{name: choice})) - bases[-1]
        self.base_ms = statistics.median(bases) if bases else \
            self._measure(self.base)

    def predict(self, subnet: Subnet) -> Optional[float]:
        """The table's latency of ``subnet`` (None without a table)."""
        if self.deltas is None:
            return None
        ms = self.base_ms
        for name, entries in self.deltas.items():
            key = subnet_key({name: subnet[name]})
            if key != subnet_key({name: self.base[name]}):
                ms += entries[key]
        return ms

    def __call__(self, subnet: Subnet) -> float:
        subnet = dict(get_subnet(self.model), **subnet)
        predicted = self.predict(subnet)
        if predicted is not None and self.check <= 0:
            return predicted
        measured = self._measure(subnet)
        if predicted is not None:
            self.check -= 1
            error = abs(predicted - measured) / max(measured, 1e-9)
            self.errors.append(round(error, 4))
            if error > self.tolerance:
                self.deltas = None
                self.why_not = (
                    f'predicted {predicted:.3f} ms, measured {measured:.3f} '
                    f'ms (relative error {error:.2f} > {self.tolerance})')
        return measured

    def state_dict(self) -> dict:
        return dict(
            base=self.base,
            base_ms=self.base_ms,
            deltas=self.deltas,
            check=self.check,
            errors=self.errors,
            why_not=self.why_not)

    def load_state_dict(self, state: dict) -> None:
        self.base = state['base']
        self.base_ms = state['base_ms']
        self.deltas = state['deltas']
        self.check = state['check']
        self.errors = list(state['errors'])
        self.why_not = state['why_not']


class _WithImageShape(nn.Module):
    """A two-stage detector's tensor mode predicts proposals, which needs
    each image's shape: traced with the data samples bound (as mmdet's
    get_flops does), since the tracer takes tensors only."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, inputs: torch.Tensor):
        from mmdet.structures import DetDataSample
        h, w = inputs.shape[-2:]
        samples = [
            DetDataSample(
                metainfo=dict(
                    img_shape=(h, w),
                    ori_shape=(h, w),
                    pad_shape=(h, w),
                    batch_input_shape=(h, w),
                    scale_factor=(1.0, 1.0))) for _ in range(inputs.shape[0])
        ]
        return self.detector(inputs, samples, mode='tensor')
