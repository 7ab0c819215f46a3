"""mmdet's detection data preprocessor with the input resolution as a
choice."""
from typing import Any, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.data_preprocessors import DetDataPreprocessor

from mmnas_tricks.registry import MODELS
from ..mutables import InputSizeChoice, Subnet, fix_in_place

#: transforms whose ``scale`` the exported config multiplies
_RESIZES = ('Resize', 'RandomResize', 'RandomChoiceResize', 'FixShapeResize')


@MODELS.register_module()
class SearchableDetDataPreprocessor(DetDataPreprocessor):
    """``mmdet.DetDataPreprocessor`` that then resizes the batch by
    ``size / base_size``, ``size`` a choice
    (:class:`~mmnas_tricks.models.mutables.InputSizeChoice`, mutable name
    ``data_preprocessor.size``): the elastic resolution of Once-for-All (Cai
    et al., ICLR 2020), so a search can spend FLOPs on resolution instead of
    layers. As mmdet's ``BatchSyncRandomResize`` (YOLOX), the padded batch
    is resized bilinearly and the ground-truth boxes scaled with it; here in
    test mode too, with ``img_shape`` and ``scale_factor`` updated so that
    predictions map back to the original image; the batch is padded again
    to ``pad_size_divisor``, of which every size must be a multiple.

    The pipelines resize images to ``base_size`` (the plain model's size);
    :meth:`to_plain_config` writes the chosen size into them instead, with
    mmdet's ``DetDataPreprocessor``: the exported config is a plain mmdet
    config. FLOPs are counted at the chosen size (:meth:`input_shape`).

    Args:
        sizes (Sequence[int]): Candidate sizes; the first is the default.
        base_size (int): The size the pipelines resize to. Defaults to 128.
        fixed_subnet (dict, optional): ``{'size': s}``: a static size.
            Defaults to None.
        **kwargs: ``DetDataPreprocessor`` arguments.

    Example:
        >>> pre = SearchableDetDataPreprocessor(
        ...     sizes=[128, 160], base_size=128, pad_size_divisor=32)
        >>> pre.size.current_choice = 160
    """

    def __init__(self,
                 sizes: Sequence[int],
                 base_size: int = 128,
                 fixed_subnet: Optional[Subnet] = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if int(base_size) != base_size or base_size < 1:
            raise ValueError(f'base_size={base_size!r} must be a positive '
                             'int')
        self.base_size = int(base_size)
        d = self.pad_size_divisor
        self.size = InputSizeChoice(sizes)
        off = [
            s for s in [self.base_size, *self.size.choices] if d > 1 and s % d
        ]
        if off:
            raise ValueError(
                f'sizes {sorted(set(off))} (base_size {self.base_size}) are '
                f'not multiples of pad_size_divisor={d}: the batch is padded '
                'up to the next multiple, so such a size costs what that '
                f'one costs and sees fewer pixels; use multiples of {d}')
        if fixed_subnet is not None:
            fix_in_place(self, fixed_subnet)

    @property
    def current_size(self) -> int:
        return int(self.size.current_choice)  # the choice or, fixed, its op

    def _padded(self, h: int, w: int) -> Tuple[int, int]:
        d = self.pad_size_divisor
        return (-(-h // d) * d, -(-w // d) * d)

    def input_shape(self, shape: Sequence[int]) -> Tuple[int, ...]:
        """``(C, H, W)`` of an input of ``shape`` (at the base size) after
        the resize and the padding: what the network sees."""
        c, h, w = shape
        r = self.current_size / self.base_size
        return (c, ) + self._padded(round(h * r), round(w * r))

    def forward(self, data: dict, training: bool = False) -> dict:
        data = super().forward(data, training)
        if self.current_size == self.base_size:
            return data
        inputs, samples = data['inputs'], data['data_samples']
        h, w = inputs.shape[-2:]
        r = self.current_size / self.base_size
        th, tw = round(h * r), round(w * r)
        sy, sx = th / h, tw / w
        inputs = F.interpolate(
            inputs, size=(th, tw), mode='bilinear', align_corners=False)
        ph, pw = self._padded(th, tw)
        if (ph, pw) != (th, tw):
            inputs = F.pad(
                inputs, (0, pw - tw, 0, ph - th), value=self.pad_value)
        for sample in samples or []:
            _rescale_sample(sample, sx, sy, (ph, pw))
        data['inputs'] = inputs
        return data

    @classmethod
    def to_plain_config(cls, cfg: Any, part: dict, own: Subnet) -> None:
        """Turn the data preprocessor config ``part`` (inside ``cfg``) into
        mmdet's ``DetDataPreprocessor`` and write the chosen size into every
        resize transform of ``cfg``'s pipelines (their ``scale`` times
        ``size / base_size``)."""
        base = int(part.get('base_size', 128))
        size = int((own or {}).get('size', list(part['sizes'])[0]))
        for key in ('sizes', 'base_size', 'fixed_subnet'):
            part.pop(key, None)
        part['type'] = 'mmdet.DetDataPreprocessor'
        if size != base:
            _scale_resizes(cfg, size / base)


def _rescale_sample(sample, sx: float, sy: float, batch_shape) -> None:
    """A data sample's shapes, scale factor and boxes after the batch was
    resized by (sx, sy) and padded to ``batch_shape``."""
    meta = {}
    for key in ('img_shape', 'pad_shape'):
        if key in sample:
            h, w = sample.metainfo[key][:2]
            meta[key] = (round(h * sy), round(w * sx))
    if 'scale_factor' in sample:
        fx, fy = sample.metainfo['scale_factor'][:2]
        meta['scale_factor'] = (fx * sx, fy * sy)
    meta['batch_input_shape'] = tuple(batch_shape)
    sample.set_metainfo(meta)
    for field in ('gt_instances', 'ignored_instances'):
        instances = getattr(sample, field, None)
        if instances is None or 'bboxes' not in instances:
            continue
        boxes = instances.bboxes
        if hasattr(boxes, 'rescale_'):
            boxes.rescale_((sx, sy))
        else:
            scale = torch.tensor([sx, sy, sx, sy],
                                 dtype=boxes.dtype,
                                 device=boxes.device)
            instances.bboxes = boxes * scale


def _scale_resizes(cfg: Any, r: float) -> None:
    """Multiply the ``scale`` of every resize transform under ``cfg`` (the
    model config excluded) by ``r``."""

    def visit(node, key=None):
        if isinstance(node, dict):
            if key == 'model':
                return
            kind = str(node.get('type', '')).rsplit('.', 1)[-1]
            if kind in _RESIZES and 'scale' in node:
                node['scale'] = _times(node['scale'], r)
            for k, v in node.items():
                visit(v, k)
        elif isinstance(node, (list, tuple)):
            for v in node:
                visit(v)

    for key in list(cfg.keys()):  # a Config or a dict
        visit(cfg[key], key)


def _times(scale, r: float):
    if isinstance(scale, (int, float)):
        return int(round(scale * r))
    if scale and isinstance(scale[0], (list, tuple)):
        return [_times(s, r) for s in scale]
    return tuple(int(round(v * r)) for v in scale)
