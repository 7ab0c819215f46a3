"""Elastic width: how many output channels a group of layers uses."""
from typing import Sequence

import torch
import torch.nn as nn

from mmnas_tricks.registry import MODELS
from .base import BaseMutable, integral


@MODELS.register_module()
class ChannelChoice(BaseMutable):
    """The number of output channels of a group of layers (e.g. every block
    of a stage), shared by them; the layers keep weights for the largest
    width and a width of c uses their first c channels (Once-for-All, Cai et
    al., ICLR 2020). It computes nothing itself: the layers it drives read
    :attr:`current_choice` (``fixed`` / ``sampled``) or multiply their full
    output by :meth:`channel_mask` (``differentiable``: the softmax(alpha)
    mix of the widths' channel masks, as FBNetV2's DMaskingNAS; ``all_on``:
    per-example path-dropout masks over the widths).

    Args:
        channels (Sequence[int]): Candidate widths; the first is the
            default (by convention the largest, the plain network).
        init_cfg (dict, optional): Initialisation. Defaults to None.

    Example:
        >>> width = ChannelChoice([32, 24, 16])
        >>> width.current_choice = 24
    """

    def __init__(self, channels: Sequence[int], init_cfg=None) -> None:
        channels = [int(c) for c in channels]
        if any(c < 1 for c in channels):
            raise ValueError(f'channel choices must be >= 1, got {channels}')
        super().__init__(channels, init_cfg)
        self.max_channels = max(channels)

    def _normalise(self, choice):
        return integral(choice)

    @property
    def slicing(self) -> bool:
        """Whether the driven layers slice (``fixed`` / ``sampled``) rather
        than mask their full output."""
        return self.mode in ('fixed', 'sampled')

    def channel_mask(self, batch: int, device=None) -> torch.Tensor:
        """(batch, max_channels, 1, 1): the weight of every channel in the
        ``differentiable`` / ``all_on`` mix of the widths."""
        ones = torch.zeros(self.num_choices, self.max_channels, device=device)
        for i, c in enumerate(self.choices):
            ones[i, :c] = 1.0
        if self.mode == 'differentiable':
            coef = self.arch_weights().to(device).unsqueeze(0).expand(
                batch, -1)
        else:
            coef = self.path_mask(batch, device)
        return (coef @ ones).view(batch, self.max_channels, 1, 1)

    def export_module(self) -> nn.Module:
        """Nothing to compute once fixed (the driven layers export sliced):
        a parameter-free placeholder."""
        from mmnas_tricks.models.ops import Identity
        return Identity(1, 1)

    def export_cfg(self) -> dict:
        return dict(
            type='mmnas_tricks.Identity', in_channels=1, out_channels=1)
