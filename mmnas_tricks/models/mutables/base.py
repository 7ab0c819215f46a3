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
        self.average_paths = False
        # (owner id, owner name, weights): see override_weights
        self._weights_override: Optional[tuple] = None
        self.arch_alpha = nn.Parameter(
            1e-3 * torch.randn(len(choices)), requires_grad=False)
        # the mutable whose decision this one follows (tie_to); a list, so
        # that it is not registered as a submodule
        self._leader: List['BaseMutable'] = []

    # -- ties -----------------------------------------------------------------
    def tie_to(self, leader: 'BaseMutable') -> None:
        """Follow ``leader``'s decision: its choice, mode and mixing
        weights, with this mutable's own candidates and weights (NAS-FCOS's
        regression tower repeats the classification tower's op sequence).
        A tied mutable is no decision of its own: the search-space API
        (:func:`~mmnas_tricks.models.mutables.named_mutables`) leaves it
        out, and the static export builds it as its leader's choice.

        Raises:
            ValueError: the two have different choices, or ``leader`` is
                itself tied.
        """
        if leader.choices != self.choices:
            raise ValueError(f'{type(self).__name__} can only follow a '
                             'mutable of the same choices, got '
                             f'{short_repr(leader.choices)} for '
                             f'{short_repr(self.choices)}')
        if leader.tied:
            raise ValueError('tie to the leading mutable, not to one that '
                             'follows another')
        self._leader[:] = [leader]

    @property
    def tied(self) -> bool:
        """Whether this mutable follows another one's decision."""
        return bool(self._leader)

    @property
    def decider(self) -> 'BaseMutable':
        """The mutable whose decision this one takes: its leader where it
        is tied, else itself."""
        return self._leader[0] if self._leader else self

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
        if self._leader:
            return self._leader[0].current_choice
        return self._current

    @current_choice.setter
    def current_choice(self, choice: Any) -> None:
        if self._leader:
            raise RuntimeError(f'{type(self).__name__} follows another '
                               'mutable\'s choice; set that one')
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
        if self._leader:
            return self._leader[0].mode
        return self._mode

    def set_mode(self,
                 mode: str,
                 drop_prob: Optional[float] = None,
                 average: Optional[bool] = None) -> None:
        """Switch the run mode (one of :data:`MODES`).

        Args:
            mode (str): The mode.
            drop_prob (float, optional): Per-candidate drop probability in
                ``all_on`` mode, in [0, 1]. Defaults to None (keep).
            average (bool, optional): ``all_on`` mode averages the kept
                paths instead of summing them (:meth:`path_mask`). Defaults
                to None (keep).
        """
        if mode not in MODES:
            raise ValueError(f'mode {mode!r} is not one of {list(MODES)}')
        if drop_prob is not None:
            if not 0.0 <= drop_prob <= 1.0:
                raise ValueError(f'drop_prob={drop_prob} is not in [0, 1]')
            self.drop_prob = float(drop_prob)
        if average is not None:
            self.average_paths = bool(average)
        self._mode = mode
        # a tied mutable mixes with its leader's alpha, never its own
        self.arch_alpha.requires_grad_(mode == 'differentiable'
                                       and not self._leader)

    # -- extension points of the training tricks ---------------------------
    # A trick that acts on a mutable's output registers a forward hook on it
    # (``register_forward_hook``, removed when the trick ends); a trick that
    # replaces the mixing weights of ``differentiable`` mode overrides them
    # here, one owner at a time. The mutable keeps no trick's state.
    def override_weights(self, weights: torch.Tensor, owner: object) -> None:
        """Mix the candidates with ``weights`` instead of softmax(alpha)
        (:meth:`arch_weights`) until ``owner`` calls
        :meth:`release_weights`: a perturbed (SDARTS), uniform (a weights
        warm-up) or pruned (DARTS-PT) mix.

        Raises:
            RuntimeError: another owner's override is in place.
        """
        held = self._weights_override
        if held is not None and held[0] != id(owner):
            raise RuntimeError(
                f'{type(owner).__name__} cannot override the mixing weights '
                f'of {type(self).__name__}: {held[1]} holds them')
        self._weights_override = (id(owner), type(owner).__name__, weights)

    def release_weights(self, owner: object) -> None:
        """End ``owner``'s override (nothing when it holds none)."""
        held = self._weights_override
        if held is not None and held[0] == id(owner):
            self._weights_override = None

    @property
    def weights_overridden(self) -> bool:
        """Whether an override replaces softmax(alpha) now."""
        return self._weights_override is not None

    def arch_weights(self) -> torch.Tensor:
        """The mixing weights of ``differentiable`` mode: softmax(alpha), or
        the weights of an override in place (:meth:`override_weights`)."""
        if self._leader:
            return self._leader[0].arch_weights()
        if self._weights_override is not None:
            return self._weights_override[2]
        return torch.softmax(self.arch_alpha, dim=0)

    #: Whether this mutable's output is made of other mutables' outputs (a
    #: depth choice over blocks that hold their own choices): tricks that
    #: act on an op's output act on those, not on this one.
    wraps_mutables = False

    def chosen_is_skip(self) -> bool:
        """Whether the current choice runs a parameter-free skip connection
        in ``fixed`` / ``sampled`` mode (output-level tricks such as drop
        path spare it)."""
        return False

    def argmax_choice(self) -> Any:
        """The choice with the largest architecture parameter."""
        return self._choices[int(torch.argmax(self.arch_alpha.detach()))]

    def path_mask(self, batch: int, device=None) -> torch.Tensor:
        """A (batch, num_choices) 0/1 mask for ``all_on`` mode: each entry
        kept with probability ``1 - drop_prob``, at least one per row; all
        ones when not training. With ``average_paths`` every row is divided
        by its sum (the kept paths are averaged). A tied mutable draws with
        its leader's settings."""
        n = self.num_choices
        source = self.decider
        if not self.training or source.drop_prob == 0:
            mask = torch.ones(batch, n, device=device)
        else:
            mask = (torch.rand(batch, n, device=device) >=
                    source.drop_prob).float()
            empty = mask.sum(1) == 0
            if empty.any():
                keep = torch.randint(n, (int(empty.sum()), ), device=device)
                mask[empty.nonzero(as_tuple=True)[0], keep] = 1.0
        if source.average_paths:
            mask = mask / mask.sum(1, keepdim=True)
        return mask

    def forward_candidates(self, x):
        """The forward of a mutable whose ``candidates`` (a ``ModuleDict``
        keyed by the choices, in their order) all take ``x``: the current
        candidate (``fixed`` / ``sampled``), their ``softmax(alpha)`` mix
        (``differentiable``) or their path-dropout masked sum
        (``all_on``)."""
        mode = self.mode
        if mode in ('fixed', 'sampled'):
            return self.candidates[self.current_choice](x)
        if mode == 'differentiable':
            weights = self.arch_weights()
            return sum(w * op(x)
                       for w, op in zip(weights, self.candidates.values()))
        first = x[0] if isinstance(x, (list, tuple)) else x  # aggregations
        mask = self.path_mask(first.shape[0], first.device)
        out = 0
        for i, op in enumerate(self.candidates.values()):
            y = op(x)
            out = out + mask[:, i].view(-1, *([1] * (y.dim() - 1))) * y
        return out

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
