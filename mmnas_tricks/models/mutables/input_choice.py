"""Choose k of n incoming feature maps."""
import itertools
from typing import List, Optional, Sequence, Union

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

    With ``aggregate='sum'`` the chosen inputs are summed (a DARTS node: the
    sum of its k input edges), and ``differentiable`` mode with ``k > 1``
    sums every input weighted by :meth:`edge_weights` (each input's share of
    ``softmax(alpha)`` over the k-subsets, or per-input weights that a
    trick sets with :meth:`override_edge_weights`, e.g. DARTS-PT's topology
    projection pruning the node's edges).

    Args:
        num_inputs (int): n, the number of incoming feature maps.
        num_chosen (int): k. Defaults to 1.
        aggregate (str, optional): ``'sum'``: return the sum of the chosen
            inputs. Defaults to None (the chosen input, or their list).
        init_cfg (dict, optional): Initialisation. Defaults to None.

    Example:
        >>> choice = InputChoice(4)
        >>> choice.current_choice = 2
    """

    def __init__(self,
                 num_inputs: int,
                 num_chosen: int = 1,
                 aggregate: Optional[str] = None,
                 init_cfg=None) -> None:
        if not 1 <= num_chosen <= num_inputs:
            raise ValueError(f'num_chosen={num_chosen} must be in '
                             f'[1, num_inputs={num_inputs}]')
        if aggregate not in (None, 'sum'):
            raise ValueError(f'aggregate={aggregate!r} is not one of '
                             "[None, 'sum']")
        self.aggregate = aggregate
        # who holds per-input weights (override_edge_weights), if anyone
        self._edge_owner = None
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
        return SelectInputs(self.current_choice, self.aggregate)

    def export_cfg(self) -> dict:
        choice = self.current_choice
        cfg = dict(
            type='mmnas_tricks.SelectInputs',
            indices=list(choice) if isinstance(choice, tuple) else choice)
        if self.aggregate is not None:
            cfg['aggregate'] = self.aggregate
        return cfg

    def override_edge_weights(self, weights: torch.Tensor,
                              owner: object) -> None:
        """Weigh each input with ``weights`` (one per input, ``k > 1``) in
        ``differentiable`` mode until ``owner`` calls
        :meth:`release_weights`; the single-owner rule of
        :meth:`override_weights` holds.

        Raises:
            ValueError: not one weight per input.
        """
        if weights.numel() != self.num_inputs:
            raise ValueError(f'override_edge_weights needs {self.num_inputs} '
                             f'weights (one per input), got '
                             f'{weights.numel()}')
        self.override_weights(weights, owner)
        self._edge_owner = id(owner)

    def release_weights(self, owner: object) -> None:
        super().release_weights(owner)
        if not self.weights_overridden:
            self._edge_owner = None

    def edge_weights(self) -> torch.Tensor:
        """One weight per input (k > 1): those of
        :meth:`override_edge_weights` when set, else each input's share of
        the mixing weights over the k-subsets (the sum over the subsets
        that hold it)."""
        weights = self.arch_weights()
        if self._edge_owner is not None:
            return weights
        share = [0] * self.num_inputs
        for w, subset in zip(weights, self.choices):
            for i in subset:
                share[i] = share[i] + w
        return torch.stack(share)

    def forward(
        self, inputs: Sequence[torch.Tensor]
    ) -> Union[torch.Tensor, List[torch.Tensor]]:
        if len(inputs) != self.num_inputs:
            raise ValueError(f'InputChoice expects {self.num_inputs} inputs, '
                             f'got {len(inputs)}')
        mode = self.mode
        if mode in ('fixed', 'sampled'):
            return select(inputs, self.current_choice, self.aggregate)
        if self.num_chosen != 1 and self.aggregate == 'sum' and \
                mode == 'differentiable':
            return sum(w * x for w, x in zip(self.edge_weights(), inputs))
        if self.num_chosen != 1:
            raise NotImplementedError(
                f'InputChoice mode {mode!r} needs num_chosen=1 (got '
                f'{self.num_chosen}); use one InputChoice per chosen input')
        if mode == 'differentiable':
            return sum(w * x for w, x in zip(self.arch_weights(), inputs))
        mask = self.path_mask(inputs[0].shape[0], inputs[0].device)
        return sum(mask[:, i].view(-1, 1, 1, 1) * x
                   for i, x in enumerate(inputs))


def select(inputs: Sequence[torch.Tensor],
           indices: Union[int, Sequence[int]],
           aggregate: Optional[str] = None):
    """``inputs[indices]``: one tensor for an int; for several, their list
    or, with ``aggregate='sum'``, their sum."""
    if isinstance(indices, int):
        return inputs[indices]
    chosen = [inputs[i] for i in indices]
    return sum(chosen) if aggregate == 'sum' else chosen


@MODELS.register_module()
class SelectInputs(nn.Module):
    """The static form of :class:`InputChoice`: ``inputs[indices]`` (one
    tensor for an int, a list for a list of ints).

    Args:
        indices (int | list[int]): What to pick.
        aggregate (str, optional): ``'sum'``: their sum. Defaults to None.
    """

    def __init__(self,
                 indices: Union[int, Sequence[int]],
                 aggregate: Optional[str] = None) -> None:
        super().__init__()
        self.indices = indices if isinstance(indices, int) else tuple(indices)
        self.aggregate = aggregate

    def forward(self, inputs):
        return select(inputs, self.indices, self.aggregate)

    def extra_repr(self) -> str:
        return f'indices={self.indices}, aggregate={self.aggregate}'
