"""Choose k of n incoming feature maps."""
import itertools
from typing import List, Sequence, Union

import torch
import torch.nn as nn

from mmnas_tricks.registry import MODELS
from .base import BaseMutable, integral


@MODELS.register_module()
class InputChoice(BaseMutable):
    """Pick ``k`` of ``n`` incoming feature maps (the inputs of a NAS-FCOS
    FPN cell). Choices are sorted index tuples (an int when ``k == 1``).

    ``forward(inputs)`` returns the chosen tensor (``k == 1``) or the list of
    chosen tensors in ``fixed`` / ``sampled`` mode. For ``k == 1`` the other
    modes mix the (equally shaped) inputs: ``differentiable`` returns
    ``sum_i softmax(alpha)_i * x_i``, ``all_on`` the path-dropout masked sum.

    Args:
        num_inputs (int): n, the number of incoming feature maps.
        num_chosen (int): k. Defaults to 1.
        init_cfg (dict, optional): Initialisation. Defaults to None.

    Example:
        >>> choice = InputChoice(4)
        >>> choice.current_choice = 2
    """

    def __init__(self,
                 num_inputs: int,
                 num_chosen: int = 1,
                 init_cfg=None) -> None:
        if not 1 <= num_chosen <= num_inputs:
            raise ValueError(f'num_chosen={num_chosen} must be in '
                             f'[1, num_inputs={num_inputs}]')
        if num_chosen == 1:
            choices = list(range(num_inputs))
        else:
            choices = list(
                itertools.combinations(range(num_inputs), num_chosen))
        super().__init__(choices, init_cfg)
        self.num_inputs = num_inputs
        self.num_chosen = num_chosen

    def _normalise(self, choice):
        if self.num_chosen > 1 and isinstance(choice, (list, tuple)):
            return tuple(sorted(integral(c) for c in choice))
        return integral(choice)

    def export_module(self) -> nn.Module:
        return SelectInputs(self.current_choice)

    def export_cfg(self) -> dict:
        choice = self.current_choice
        return dict(
            type='mmnas_tricks.SelectInputs',
            indices=list(choice) if isinstance(choice, tuple) else choice)

    def forward(
        self, inputs: Sequence[torch.Tensor]
    ) -> Union[torch.Tensor, List[torch.Tensor]]:
        if len(inputs) != self.num_inputs:
            raise ValueError(f'InputChoice expects {self.num_inputs} inputs, '
                             f'got {len(inputs)}')
        mode = self.mode
        if mode in ('fixed', 'sampled'):
            if self.num_chosen == 1:
                return inputs[self.current_choice]
            return [inputs[i] for i in self.current_choice]
        if self.num_chosen != 1:
            raise NotImplementedError(
                f'InputChoice mode {mode!r} needs num_chosen=1 (got '
                f'{self.num_chosen}); use one InputChoice per chosen input')
        if mode == 'differentiable':
            return sum(w * x for w, x in zip(self.arch_weights(), inputs))
        mask = self.path_mask(inputs[0].shape[0], inputs[0].device)
        return sum(mask[:, i].view(-1, 1, 1, 1) * x
                   for i, x in enumerate(inputs))


@MODELS.register_module()
class SelectInputs(nn.Module):
    """The static form of :class:`InputChoice`: ``inputs[indices]`` (one
    tensor for an int, a list for a list of ints).

    Args:
        indices (int | list[int]): What to pick.
    """

    def __init__(self, indices: Union[int, Sequence[int]]) -> None:
        super().__init__()
        self.indices = indices if isinstance(indices, int) else tuple(indices)

    def forward(self, inputs):
        if isinstance(self.indices, int):
            return inputs[self.indices]
        return [inputs[i] for i in self.indices]

    def extra_repr(self) -> str:
        return f'indices={self.indices}'
