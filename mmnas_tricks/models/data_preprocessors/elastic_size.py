"""What the searchable data preprocessors share: the input size as a choice,
the batch resized by ``size / base_size`` and padded again, FLOPs counted at
that size, and the chosen size written into a plain config."""
from typing import Any, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from ..mutables import InputSizeChoice, Subnet, fix_in_place

#: transforms whose ``scale`` the exported config multiplies
RESIZES = ('Resize', 'RandomResize', 'RandomChoiceResize', 'FixShapeResize')

#: The image size the searchable preprocessors' pipelines resize to unless a
#: config says otherwise (``base_size``): the digits data's canvas.
DEFAULT_BASE_SIZE = 128


class ElasticSizeMixin:
    """The input size of a data preprocessor as an
    :class:`~mmnas_tricks.models.mutables.InputSizeChoice`, the attribute
    :attr:`SIZE_ATTR` (mutable name ``data_preprocessor.<SIZE_ATTR>``). The
    class mixing it in calls :meth:`init_size` after its own ``__init__`` and
    :meth:`resize_batch` in its ``forward``."""

    #: the choice's attribute (``size``; mmseg's preprocessor has its own)
    SIZE_ATTR = 'size'

    def init_size(self, sizes: Sequence[int], base_size: int, divisor: int,
                  fixed_subnet: Optional[Subnet]) -> None:
        if int(base_size) != base_size or base_size < 1:
            raise ValueError(f'base_size={base_size!r} must be a positive '
                             'int')
        self.base_size = int(base_size)
        self.divisor = int(divisor or 1)
        d = self.divisor
        setattr(self, self.SIZE_ATTR, InputSizeChoice(sizes))
        off = [
            s for s in [self.base_size, *self.size_choice.choices]
            if d > 1 and s % d
        ]
        if off:
            raise ValueError(
                f'sizes {sorted(set(off))} (base_size {self.base_size}) are '
                f'not multiples of the pad divisor {d}: the batch is padded '
                'up to the next multiple, so such a size costs what that '
                f'one costs and sees fewer pixels; use multiples of {d}')
        if fixed_subnet is not None:
            fix_in_place(self, fixed_subnet)

    @property
    def size_choice(self) -> InputSizeChoice:
        return getattr(self, self.SIZE_ATTR)

    @property
    def current_size(self) -> int:
        # the choice or, fixed, its op
        return int(self.size_choice.current_choice)

    def _padded(self, h: int, w: int) -> Tuple[int, int]:
        d = self.divisor
        return (-(-h // d) * d, -(-w // d) * d)

    def input_shape(self, shape: Sequence[int]) -> Tuple[int, ...]:
        """``(C, H, W)`` of an input of ``shape`` (at the base size) after
        the resize and the padding: what the network sees."""
        c, h, w = shape
        r = self.current_size / self.base_size
        return (c, ) + self._padded(round(h * r), round(w * r))

    def resize_batch(self, inputs: torch.Tensor, pad_value: float) -> tuple:
        """``inputs`` resized bilinearly by ``size / base_size`` and padded
        (bottom, right) to the divisor: ``(inputs, (sx, sy), (th, tw),
        (ph, pw))``, the scale, the resized and the padded size."""
        h, w = inputs.shape[-2:]
        r = self.current_size / self.base_size
        th, tw = round(h * r), round(w * r)
        inputs = F.interpolate(
            inputs, size=(th, tw), mode='bilinear', align_corners=False)
        ph, pw = self._padded(th, tw)
        if (ph, pw) != (th, tw):
            inputs = F.pad(inputs, (0, pw - tw, 0, ph - th), value=pad_value)
        return inputs, (tw / w, th / h), (th, tw), (ph, pw)

    @classmethod
    def plain_part(cls, part: dict, own: Subnet, plain_type: str) -> tuple:
        """Turn the preprocessor config ``part`` into ``plain_type`` (its
        own keys removed); returns ``(base_size, chosen size)``."""
        base = int(part.get('base_size', DEFAULT_BASE_SIZE))
        size = int((own or {}).get(cls.SIZE_ATTR, list(part['sizes'])[0]))
        for key in ('sizes', 'base_size', 'fixed_subnet'):
            part.pop(key, None)
        part['type'] = plain_type
        return base, size


def scale_resizes(cfg: Any, r: float) -> int:
    """Multiply the ``scale`` of every resize transform under ``cfg`` (the
    model config excluded) by ``r``; returns how many."""
    found = [0]

    def visit(node, key=None):
        if isinstance(node, dict):
            if key == 'model':
                return
            kind = str(node.get('type', '')).rsplit('.', 1)[-1]
            if kind in RESIZES and 'scale' in node:
                node['scale'] = times(node['scale'], r)
                found[0] += 1
            for k, v in node.items():
                visit(v, k)
        elif isinstance(node, (list, tuple)):
            for v in node:
                visit(v)

    for key in list(cfg.keys()):  # a Config or a dict
        visit(cfg[key], key)
    return found[0]


def times(scale, r: float):
    if isinstance(scale, (int, float)):
        return int(round(scale * r))
    if scale and isinstance(scale[0], (list, tuple)):
        return [times(s, r) for s in scale]
    return tuple(int(round(v * r)) for v in scale)
