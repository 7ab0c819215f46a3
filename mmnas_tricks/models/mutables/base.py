"""The base of every mutable: a finite list of choices and four run modes."""
from typing import Any, List, Optional, Sequence

import torch
import torch.nn as nn
from mmengine.model import BaseModule

from mmnas_tricks.structures.subnet_file import short_repr, short_str

#: fixed: one choice, pinned (searches leave it alone); sampled: the choice
#: set for this iteration; differentiable: softmax(alpha)-weighted mix of all
#: candidates (DARTS); all_on: every candidate runs, each dropped with
#: ``drop_prob`` per example, at least one kept (path dropout, Bender 2018).
MODES = ('fixed', 'sampled', 'differentiable', 'all_on')


def drop_path(x: torch.Tensor, prob: float) -> torch.Tensor:
    """Zero whole examples of ``x`` with probability ``prob`` and scale the
    kept ones by ``1 / (1 - prob)`` (inverted dropout; one decision per
    example, as DARTS's ``drop_path``)."""
    if prob <= 0:
        return x
    keep = 1.0 - prob
    shape = (x.shape[0], ) + (1, ) * (x.dim() - 1)
    mask = torch.empty(shape, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x * mask / keep


def _regularise_output(module: 'BaseMutable', args: tuple, output):
    """Forward hook of every mutable: the training-time tricks that act on a
    mutable's output, set as attributes by the trick hooks.

    - ``drop_path_prob`` (docs/tricks.md, T2.1): the output (the mixed edge in
      ``differentiable`` / ``all_on`` mode, the chosen op otherwise) is
      dropped per example, except when the chosen op is a skip connection
      or the mutable contains others (``drops_path = False``: a depth);
    - ``aux_skip_beta`` (T2.5, DARTS-): in ``differentiable`` mode
      ``beta * input`` is added where the output has the input's shape.

    Nothing happens in eval mode or when both are 0.
    """
    if not module.training or not torch.is_tensor(output):
        return None
    if module.drop_path_prob > 0 and module.drops_path and \
            not module.chosen_is_skip():
        output = drop_path(output, module.drop_path_prob)
    if module.aux_skip_beta > 0 and module.mode == 'differentiable':
        x = args[0] if args else None
        if torch.is_tensor(x) and x.shape == output.shape:
            output = output + module.aux_skip_beta * x
    return output


def integral(value: Any) -> Any:
    """``3.0 -> 3``: a number read from YAML/JSON as a float that is a whole
    number, as the int choice it stands for; anything else unchanged (so
    ``3.7``, ``inf`` or ``nan`` then match no int choice and are refused,
    never truncated). The one rule for numbers of every mutable."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def same_choice(candidate: Any, value: Any) -> bool:
    """Whether ``value`` (normalised) is the choice ``candidate``: equal, and
    a bool only where the candidate is one (``True == 1`` in Python), element
    by element in tuples."""
    if isinstance(candidate, tuple):
        return (isinstance(value, tuple) and len(value) == len(candidate)
                and all(map(same_choice, candidate, value)))
    if isinstance(candidate, bool) != isinstance(value, bool):
        return False
    try:
        return bool(candidate == value)
    except Exception:  # e.g. an array's ambiguous truth value
        return False


class BaseMutable(BaseModule):
    """A searchable decision with a finite list of choices.

    The mutable's name is its module path in the model (see
    :func:`mmnas_tricks.models.mutables.named_mutables`). Its architecture
    parameters ``arch_alpha`` (one logit per choice, DARTS initialisation
    ``1e-3 * randn``) only require gradients in ``differentiable`` mode, so
    they never count as unused parameters of DDP in the other modes.

    Args:
        choices (Sequence): The candidates, hashable and JSON/YAML friendly
            (str, int, float, or tuples of ints). The first is the default.
        init_cfg (dict, optional): Initialisation. Defaults to None.
    """

    def __init__(self, choices: Sequence, init_cfg: Optional[dict] = None):
        super().__init__(init_cfg)
        choices = list(choices)
        if not choices:
            raise ValueError(f'{type(self).__name__} needs at least one '
                             'choice, got none')
        if len(set(choices)) != len(choices):
            raise ValueError(f'{type(self).__name__} choices must be unique, '
                             f'got {choices}')
        self._choices = choices
        self._current = choices[0]
        self._mode = 'sampled'
        self.drop_prob = 0.0
        # set by the trick hooks (engine/hooks); see _regularise_output
        self.drop_path_prob = 0.0  # T2.1 drop path
        self.aux_skip_beta = 0.0  # T2.5 DARTS- auxiliary skip
        self.path_average = False  # T1.3 TuNAS: all_on averages the paths
        self.perturbed_weights: Optional[torch.Tensor] = None  # T2.3 SDARTS
        self.register_forward_hook(_regularise_output)
        self.arch_alpha = nn.Parameter(
            1e-3 * torch.randn(len(choices)), requires_grad=False)

    # -- choices ----------------------------------------------------------
    @property
    def choices(self) -> List[Any]:
        """The candidates (a copy)."""
        return list(self._choices)

    @property
    def num_choices(self) -> int:
        return len(self._choices)

    @property
    def current_choice(self) -> Any:
        return self._current

    @current_choice.setter
    def current_choice(self, choice: Any) -> None:
        self._current = self.canonical_choice(choice)

    def canonical_choice(self, choice: Any) -> Any:
        """The element of :attr:`choices` that ``choice`` (e.g. read from a
        file: lists for tuples, ``3.0`` for ``3``) stands for.

        Raises:
            ValueError: ``choice`` is none of the choices (the message quotes
                at most a few hundred characters of it and lists the valid
                ones).
        """
        reason = ''
        try:
            value = self._normalise(choice)
        except (TypeError, ValueError, OverflowError) as e:
            value, reason = None, f' ({short_str(str(e))})'
        if not reason:
            for candidate in self._choices:
                if same_choice(candidate, value):
                    return candidate
        raise ValueError(f'{short_repr(choice)} is not a choice{reason}; '
                         f'valid: {short_repr(self._choices, 400)}')

    def _normalise(self, choice: Any) -> Any:
        """Map a choice read from a file (e.g. a list) to its canonical
        form; subclasses override."""
        return choice

    def choice_index(self, choice: Any = None) -> int:
        """Index of ``choice`` (default: current one) in :attr:`choices`."""
        choice = self._current if choice is None else self.canonical_choice(
            choice)
        return self._choices.index(choice)

    # -- modes --------------------------------------------------------------
    @property
    def mode(self) -> str:
        return self._mode

    def set_mode(self, mode: str, drop_prob: Optional[float] = None) -> None:
        """Switch the run mode (one of :data:`MODES`).

        Args:
            mode (str): The mode.
            drop_prob (float, optional): Per-candidate drop probability in
                ``all_on`` mode, in [0, 1]. Defaults to None (keep).
        """
        if mode not in MODES:
            raise ValueError(f'mode {mode!r} is not one of {list(MODES)}')
        if drop_prob is not None:
            if not 0.0 <= drop_prob <= 1.0:
                raise ValueError(f'drop_prob={drop_prob} is not in [0, 1]')
            self.drop_prob = float(drop_prob)
        self._mode = mode
        self.arch_alpha.requires_grad_(mode == 'differentiable')

    def arch_weights(self) -> torch.Tensor:
        """The mixing weights of ``differentiable`` mode: softmax(alpha), or
        ``perturbed_weights`` while an SDARTS hook has set them
        (docs/tricks.md, T2.3: the weight step sees a perturbed
        architecture)."""
        if self.perturbed_weights is not None:
            return self.perturbed_weights
        return torch.softmax(self.arch_alpha, dim=0)

    #: Whether drop path (T2.1) acts on this mutable's output: an op on one
    #: edge. Containers of other mutables (a depth choice) say False.
    drops_path = True

    def chosen_is_skip(self) -> bool:
        """Whether the current choice runs a parameter-free skip connection
        in ``fixed`` / ``sampled`` mode (drop path spares it)."""
        return False

    def argmax_choice(self) -> Any:
        """The choice with the largest architecture parameter."""
        return self._choices[int(torch.argmax(self.arch_alpha.detach()))]

    def path_mask(self, batch: int, device=None) -> torch.Tensor:
        """A (batch, num_choices) 0/1 mask for ``all_on`` mode: each entry
        kept with probability ``1 - drop_prob``, at least one per row; all
        ones when not training. With ``path_average`` every row is divided
        by its sum (the kept paths are averaged, TuNAS)."""
        n = self.num_choices
        if not self.training or self.drop_prob == 0:
            mask = torch.ones(batch, n, device=device)
        else:
            mask = (torch.rand(batch, n, device=device) >=
                    self.drop_prob).float()
            empty = mask.sum(1) == 0
            if empty.any():
                keep = torch.randint(n, (int(empty.sum()), ), device=device)
                mask[empty.nonzero(as_tuple=True)[0], keep] = 1.0
        if self.path_average:
            mask = mask / mask.sum(1, keepdim=True)
        return mask

    # -- export -------------------------------------------------------------
    def export_module(self) -> nn.Module:
        """The plain module that computes the current choice, sharing this
        mutable's weights (no other candidate, no ``arch_alpha``)."""
        raise NotImplementedError

    def import_module(self, module: nn.Module) -> None:
        """Take the weights of ``module``, a static module of the current
        choice (as :meth:`export_module` builds), into this mutable. Nothing
        to do where the exported module shares this mutable's weights (the
        default); mutables that export copies (sliced kernels) override."""

    def export_cfg(self) -> dict:
        """The config that builds :meth:`export_module` (same parameter
        names, so its state dict loads with ``strict=True``)."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        return (f'choices={self._choices}, current={self._current!r}, '
                f'mode={self._mode}')
