"""The hand rules a search must beat: a detector or segmentor scaled the way
a person scales one without a search (every width by one factor, the input
size, one block per stage, and their compound grid, as EfficientNet's
compound scaling does), and the Pareto front of such models.

A rule is ``(width, size, depth)``: every channel count of the backbone,
neck and head times ``width`` (GroupNorm keeps its channels per group),
every pipeline's ``Resize`` to ``size`` px (a segmentor's data
preprocessor too), and ``depth`` blocks per backbone stage (the plain
ResNet's 2 of ResNet-18, or 1: a static
:class:`~mmnas_tricks.models.backbones.SearchableResNet`). Its name says what
changed: ``width_x0.75_res160``, ``res96``, ``depth1``; the unchanged
model is ``baseline``.
"""
import copy
import re
from typing import Iterable, List, NamedTuple, Optional, Sequence

from mmengine.config import Config

#: the default grid: widths, input sizes and depths (blocks per stage)
WIDTHS = (0.5, 0.625, 0.75, 0.875, 1.0)
SIZES = (96, 128, 144, 160, 192)
DEPTHS = (2, 1)


class HandRule(NamedTuple):
    width: float = 1.0
    size: Optional[int] = None  # None: the config's own
    depth: Optional[int] = None  # None: the config's own

    @property
    def name(self) -> str:
        parts = []
        if self.width != 1.0:
            parts.append(f'width_x{self.width:g}')
        if self.size is not None:
            parts.append(f'res{self.size}')
        if self.depth is not None:
            parts.append(f'depth{self.depth}')
        return '_'.join(parts) or 'baseline'

    def describe(self) -> str:
        parts = []
        if self.width != 1.0:
            parts.append(f'every width x{self.width:g}')
        if self.size is not None:
            parts.append(f'input {self.size} px')
        if self.depth is not None:
            parts.append(f'{self.depth} block(s) per stage')
        return ', '.join(parts) or 'the baseline'


_NAME = re.compile(r'^(?:width_x(?P<w>[0-9.]+))?_?(?:res(?P<s>[0-9]+))?_?'
                   r'(?:depth(?P<d>[0-9]+))?$')


def parse_rule(name: str, base_size: Optional[int] = None) -> HandRule:
    """The rule a name gives (:attr:`HandRule.name`'s format); ``res<s>``
    equal to ``base_size`` and ``width_x1`` count as unchanged."""
    m = _NAME.match(name) if name != 'baseline' else None
    if name != 'baseline' and (m is None or not any(m.groupdict().values())):
        raise KeyError(f'{name!r} is not a hand rule: valid names are '
                       "'baseline' or width_x<r>, res<px>, depth<n> joined "
                       "by '_' (e.g. width_x0.75_res160)")
    if m is None:
        return HandRule()
    width = float(m['w']) if m['w'] else 1.0
    size = int(m['s']) if m['s'] else None
    if size is not None and size == base_size:
        size = None
    depth = int(m['d']) if m['d'] else None
    if width <= 0 or (size is not None and size < 8) or (depth is not None
                                                         and depth < 1):
        raise KeyError(f'{name!r}: width must be > 0, size >= 8 px and '
                       'depth >= 1')
    return HandRule(width, size, depth)


def grid(widths: Sequence[float] = WIDTHS,
         sizes: Sequence[int] = SIZES,
         depths: Sequence[int] = DEPTHS,
         base_size: int = 128,
         base_depth: int = 2) -> List[HandRule]:
    """Every width with every size; each other depth at the base width
    with every size (the depth lever, alone and with the size). The base
    size and depth are written as None (unchanged)."""

    def size_of(s):
        return None if s == base_size else s

    out = [HandRule(w, size_of(s)) for w in widths for s in sizes]
    out += [
        HandRule(1.0, size_of(s), d) for d in depths if d != base_depth
        for s in sizes
    ]
    return list(dict.fromkeys(out))


def _scale(c: int, r: float, multiple: int = 1) -> int:
    value = int(round(c * r / multiple)) * multiple
    if value < multiple:
        raise ValueError(f'{c} channels x{r:g} leaves none')
    return value


def _loaders(cfg: Config):
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(key)
        if not loader:
            continue
        dataset = loader['dataset']
        while 'pipeline' not in dataset and 'dataset' in dataset:
            dataset = dataset['dataset']
        yield key, dataset.get('pipeline') or []


def scale_config(cfg: Config,
                 rule: HandRule,
                 where: str = 'the config') -> Config:
    """``cfg`` (a plain mmdet detector of a ResNet, an FPN and a dense head,
    or an mmseg Semantic FPN) scaled by ``rule``; a copy.

    Raises:
        ValueError: naming ``where`` and the part that cannot be scaled.
    """
    cfg = copy.deepcopy(cfg)
    model = cfg.model
    r = rule.width
    if r != 1.0:
        bb = model.backbone
        if 'base_channels' not in bb:
            raise ValueError(f'{where}: model.backbone ({bb.get("type")}) '
                             'has no base_channels to scale')
        bb.base_channels = _scale(bb.base_channels, r)
        if 'stem_channels' in bb and bb.stem_channels:
            bb.stem_channels = _scale(bb.stem_channels, r)
        neck = model.neck
        neck.in_channels = [_scale(c, r) for c in neck.in_channels]
        neck.out_channels = _scale(neck.out_channels, r)
        for key in ('bbox_head', 'decode_head'):
            head = model.get(key)
            if head is None:
                continue
            norm = head.get('norm_cfg') or {}
            per_group = 1
            if norm.get('type') == 'GN':  # keep the channels per group
                channels = head.get('feat_channels', head.get('channels'))
                per_group = channels // norm.num_groups
            c_in = head.in_channels
            head.in_channels = [_scale(c, r) for c in c_in] if isinstance(
                c_in, (list, tuple)) else _scale(c_in, r)
            for name in ('feat_channels', 'channels'):
                if name in head:
                    head[name] = _scale(head[name], r, per_group)
                    if norm.get('type') == 'GN':
                        norm.num_groups = head[name] // per_group
    if rule.size is not None:
        s = rule.size
        found = False
        for _, pipeline in _loaders(cfg):
            for step in pipeline:
                if 'Resize' in str(step.get('type')) and 'scale' in step:
                    step.scale = (s, s)
                    found = True
        pre = model.get('data_preprocessor') or {}
        if pre.get('size'):  # mmseg pads (and crops) to its size
            pre.size = (s, s)
        elif not found:
            raise ValueError(f'{where}: no Resize with a scale in the '
                             'pipelines and no data_preprocessor.size: '
                             'nothing to set the input size with')
        if pre.get('pad_size_divisor') and s % pre.pad_size_divisor:
            # pad no further than the network's strides need: 144 px padded
            # to 160 would cost what 160 costs
            d = pre.pad_size_divisor
            while d > 1 and s % d:
                d //= 2
            pre.pad_size_divisor = d
    if rule.depth is not None:
        bb = model.backbone
        if bb.get('type') not in ('ResNet', 'ResNetV1c', 'mmdet.ResNet',
                                  'mmseg.ResNetV1c') or bb.get('depth') != 18:
            raise ValueError(f'{where}: depth scaling takes a ResNet-18 '
                             f'backbone, got {bb.get("type")} depth '
                             f'{bb.get("depth")}')
        n = len(bb.get('out_indices', (0, 1, 2, 3)))
        stages = bb.get('num_stages', 4)
        fixed = {f'layer{i + 1}': rule.depth for i in range(stages)}
        fixed.update({
            f'layer{i + 1}.{j}': 3
            for i in range(stages) for j in range(rule.depth)
        })
        model.backbone = dict(
            type='mmnas_tricks.SearchableResNet',
            base_channels=bb.base_channels,
            depths=((rule.depth, ), ) * stages,
            kernel_sizes=(3, ),
            out_indices=tuple(bb.get('out_indices', range(n))),
            norm_cfg=bb.get('norm_cfg', dict(type='BN')),
            norm_eval=bb.get('norm_eval', False),
            deep_stem=bb.get('type', '').endswith('V1c'),
            fixed_subnet=fixed)
    return cfg


def pareto_front(points: Iterable[dict],
                 x: str = 'gflops',
                 y: str = 'mean') -> List[dict]:
    """The points no other one beats: none with at most its ``x`` and a
    higher ``y`` (ties in ``x`` keep the best ``y``), by increasing ``x``."""
    best, front = None, []
    for p in sorted(points, key=lambda p: (p[x], -p[y])):
        if best is None or p[y] > best:
            front.append(p)
            best = p[y]
    return front


def best_at(front: Sequence[dict],
            budget: float,
            x: str = 'gflops',
            y: str = 'mean') -> Optional[dict]:
    """The best point of ``front`` at no more than ``budget`` ``x``."""
    within = [p for p in front if p[x] <= budget]
    return max(within, key=lambda p: p[y]) if within else None


def read_hand_front(path: str, baseline: Config) -> dict:
    """The recorded hand front of a ``benchmarks/main_job.py`` results file
    (``hand_front``: the Pareto front of the baseline and its hand rules,
    test-split means over its seeds), with whether it was trained with
    ``baseline``'s recipe (the file's baseline row has ``baseline``'s
    config fingerprint: the same model, data, schedule and seed rule).

    Raises:
        ValueError: the file has no hand front (naming it).
    """
    import json

    from .rank import config_fingerprint
    with open(path) as f:
        result = json.load(f)
    front = result.get('hand_front') or []
    if not front:
        raise ValueError(f'{path}: no hand_front (no hand rule has every '
                         'seed finished yet): run benchmarks/main_job.py')
    rows = {r['model']: r for r in result.get('rows', [])}
    base = rows.get('baseline') or {}
    return dict(
        path=path,
        front=front,
        seeds=result.get('seeds'),
        same_recipe=base.get('fingerprint') == config_fingerprint(baseline))


def compare_with_front(found: Sequence[dict],
                       front: Sequence[dict],
                       y: str = 'test_score') -> List[dict]:
    """For each found row (``model``, ``gflops``, ``y``): the best point of
    the hand front at no more FLOPs and by how much the found row beats
    it (negative: the hand rule is better)."""
    out = []
    for r in found:
        hand = best_at(front, r['gflops'])
        out.append(
            dict(
                model=r['model'],
                gflops=r['gflops'],
                score=r[y],
                hand=hand and hand['model'],
                hand_gflops=hand and hand['gflops'],
                hand_mean=hand and hand['mean'],
                margin=None if hand is None else round(r[y] -
                                                       hand['mean'], 4)))
    return out
