"""Elastic input resolution: the size a batch is resized to."""
from typing import Sequence

import torch.nn as nn

from mmnas_tricks.registry import MODELS
from .base import BaseMutable, integral


@MODELS.register_module()
class InputSize(nn.Module):
    """The static form of :class:`InputSizeChoice`: the chosen size, no
    parameters.

    Args:
        size (int): The input size.
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = int(size)

    @property
    def current_choice(self) -> int:
        """The size (as the choice it was: read like the mutable's)."""
        return self.size

    def extra_repr(self) -> str:
        return f'size={self.size}'


@MODELS.register_module()
class InputSizeChoice(BaseMutable):
    """The input resolution as a choice (Once-for-All's elastic resolution,
    Cai et al., ICLR 2020; the resolution re-spending of mmyolo's OFA and
    EfficientNet's compound scaling): the size, in pixels, that the data
    preprocessor resizes a batch to, relative to the pipeline's size. It
    computes nothing itself; the data preprocessor that owns it reads
    :attr:`current_choice`. Only ``fixed`` / ``sampled`` modes apply (a
    resolution cannot be mixed).

    Args:
        sizes (Sequence[int]): Candidate sizes (> 0); the first is the
            default (by convention the pipeline's, the plain model).
        init_cfg (dict, optional): Initialisation. Defaults to None.

    Example:
        >>> size = InputSizeChoice([128, 96, 160])
        >>> size.current_choice = 160
    """

    def __init__(self, sizes: Sequence[int], init_cfg=None) -> None:
        sizes = [integral(s) for s in sizes]
        bad = [s for s in sizes if not isinstance(s, int) or s < 1]
        if bad:
            raise ValueError(f'input sizes must be positive ints, got {bad}')
        super().__init__(sizes, init_cfg)

    def _normalise(self, choice):
        return integral(choice)

    def set_mode(self, mode: str, drop_prob=None) -> None:
        if mode in ('differentiable', 'all_on'):
            raise ValueError(f'an input size cannot be mixed: mode {mode!r} '
                             "is not one of ['fixed', 'sampled']")
        super().set_mode(mode, drop_prob)

    def export_module(self) -> nn.Module:
        return InputSize(self.current_choice)

    def export_cfg(self) -> dict:
        return dict(type='mmnas_tricks.InputSize', size=self.current_choice)
