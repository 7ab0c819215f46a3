"""The model-level search-space API: plain functions over any ``nn.Module``.

A *subnet* is a dict ``{mutable name: choice}``; a mutable's name is its
module path in the model given (``model.module`` of a DDP wrapper is
unwrapped first).
"""
import difflib
import fnmatch
import math
import random
from collections import OrderedDict
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch.nn as nn
from mmengine.model import is_model_wrapper

from mmnas_tricks.structures import SubnetFileError, read_subnet_file
from mmnas_tricks.structures.subnet_file import short_repr
from .base import BaseMutable
from .elastic import ElasticModule, link_widths
from .input_choice import InputChoice

Subnet = Dict[str, Any]
Patterns = Optional[Union[str, Sequence[str]]]


class SubnetError(ValueError):
    """A subnet does not fit the model: unknown or missing mutables, or a
    choice that is not a candidate."""


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if is_model_wrapper(model) else model


def _match(name: str, patterns: Patterns) -> bool:
    if patterns is None:
        return True
    if isinstance(patterns, str):
        patterns = [patterns]
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def named_mutables(
        model: nn.Module,
        include: Patterns = None,
        searchable_only: bool = False) -> 'OrderedDict[str, BaseMutable]':
    """The mutables of ``model`` by module path, in module order.

    Args:
        model (nn.Module): Any module (DDP wrappers are unwrapped).
        include (str | Sequence[str], optional): fnmatch patterns on the
            names (e.g. ``'neck.*'``); None for all. Defaults to None.
        searchable_only (bool): Leave out mutables in ``fixed`` mode.
            Defaults to False.

    A mutable tied to another one (:meth:`BaseMutable.tie_to`) is no
    decision of its own and is left out.
    """
    found = OrderedDict()
    for name, module in _unwrap(model).named_modules():
        if isinstance(module, BaseMutable) and not module.tied and _match(
                name, include):
            if searchable_only and module.mode == 'fixed':
                continue
            found[name] = module
    return found


def search_space(model: nn.Module,
                 include: Patterns = None) -> Dict[str, list]:
    """``{name: choices}`` of the mutables (fixed ones included)."""
    return {n: m.choices for n, m in named_mutables(model, include).items()}


def space_size(model: nn.Module, include: Patterns = None) -> int:
    """Number of subnets: the product of the choice counts of the mutables
    that are not fixed."""
    return math.prod(
        m.num_choices
        for m in named_mutables(model, include, searchable_only=True).values())


def get_subnet(model: nn.Module, include: Patterns = None) -> Subnet:
    """The current choice of every mutable."""
    return {
        n: m.current_choice
        for n, m in named_mutables(model, include).items()
    }


def validate_subnet(model: nn.Module,
                    subnet: Subnet,
                    strict: bool = True) -> Subnet:
    """Check ``subnet`` against ``model`` and return it with canonical choices.

    Raises:
        SubnetError: naming an unknown mutable (with close matches), a choice
            that is not a candidate (with the valid ones), or, when
            ``strict``, the mutables the subnet leaves out.
    """
    if not isinstance(subnet, dict):
        raise SubnetError(f'a subnet must be a dict name -> choice, got '
                          f'{type(subnet).__name__}')
    mutables = named_mutables(model)
    problems: List[str] = []
    canonical = {}
    for name, choice in subnet.items():
        if name not in mutables:
            close = difflib.get_close_matches(
                str(name), list(mutables),
                n=3) if len(str(name)) <= 200 else []
            hint = f' (did you mean {close}?)' if close else ''
            problems.append(f'unknown mutable {short_repr(name)}{hint}')
            if len(problems) > 10:
                problems.append('...')
                break
            continue
        try:
            canonical[name] = mutables[name].canonical_choice(choice)
        except ValueError as e:
            problems.append(f'{name}: {e}')
    if strict:
        missing = [n for n in mutables if n not in subnet]
        if missing:
            problems.append(f'missing mutables {short_repr(missing, 600)}')
    if problems:
        raise SubnetError('subnet does not fit the model: ' +
                          '; '.join(problems))
    return canonical


def set_subnet(model: nn.Module, subnet: Subnet, strict: bool = True) -> None:
    """Set the current choice of the mutables named in ``subnet``
    (all of them when ``strict``); validated first, so nothing is set on
    error."""
    canonical = validate_subnet(model, subnet, strict=strict)
    mutables = named_mutables(model)
    for name, choice in canonical.items():
        mutables[name].current_choice = choice


def _pick(rng, n: int, probs: Optional[Sequence[float]]) -> int:
    if probs is not None:
        probs = np.asarray(probs, dtype=np.float64)
        probs = probs / probs.sum()  # weights need not sum to 1
    if isinstance(rng, np.random.Generator):
        return int(rng.choice(n, p=probs))
    if probs is None:
        return rng.randrange(n)
    return rng.choices(range(n), weights=probs.tolist(), k=1)[0]


def sample_subnet(model: nn.Module,
                  rng: Union[random.Random, np.random.Generator],
                  probs: Optional[Dict[str, Sequence[float]]] = None,
                  include: Patterns = None,
                  apply: bool = True) -> Subnet:
    """Sample a subnet from ``rng`` and (by default) set it.

    Only mutables that are not fixed and match ``include`` are sampled; the
    others keep their current choice and are returned too, so the result is
    always a full subnet.

    Args:
        model (nn.Module): The supernet.
        rng (random.Random | numpy.random.Generator): The source of
            randomness (a shared seed gives every rank the same subnet).
        probs (dict, optional): name -> probabilities (or non-negative
            weights) over that mutable's choices; uniform for names not
            given. Defaults to None.
        include (str | Sequence[str], optional): fnmatch patterns of the
            mutables to sample (sequential search). Defaults to None (all).
        apply (bool): Set the sampled subnet on the model. Defaults to True.
    """
    if not isinstance(rng, (random.Random, np.random.Generator)):
        raise TypeError('rng must be a random.Random or a numpy Generator, '
                        f'got {type(rng).__name__}')
    probs = probs or {}
    subnet = get_subnet(model)
    searchable = named_mutables(model, include, searchable_only=True)
    unknown = sorted(set(probs) - set(searchable))
    if unknown:
        raise SubnetError(f'probs name mutables that are not sampled: '
                          f'{unknown}; sampled: {list(searchable)}')
    for name, mutable in searchable.items():
        p = probs.get(name)
        if p is not None:
            if len(p) != mutable.num_choices:
                raise SubnetError(f'{name}: {len(p)} probabilities for '
                                  f'{mutable.num_choices} choices')
            if min(p) < 0 or sum(p) <= 0:
                raise SubnetError(f'{name}: probabilities {list(p)} must be '
                                  '>= 0 with a positive sum')
        subnet[name] = mutable.choices[_pick(rng, mutable.num_choices, p)]
    if apply:
        set_subnet(model, subnet)
    return subnet


def extreme_subnet(model: nn.Module, which: str) -> Subnet:
    """The ``'min'`` or ``'max'`` subnet: every mutable with numeric choices
    (depths, widths, kernel sizes, ``(kernel, expand)`` pairs, compared in
    order) at its smallest / largest, every other one (op names, inputs) at
    its first / last choice. Not set on the model.

    Example:
        >>> set_subnet(model, extreme_subnet(model, 'max'))
    """
    if which not in ('min', 'max'):
        raise ValueError(f'which={which!r} is not one of [\'min\', \'max\']')
    pick = min if which == 'min' else max
    subnet = {}
    for name, m in named_mutables(model).items():
        choices = m.choices
        numeric = all(
            isinstance(c, (int, float)) and not isinstance(c, bool)
            or isinstance(c, tuple) and all(
                isinstance(v, (int, float)) for v in c) for c in choices)
        if numeric and not isinstance(m, InputChoice):
            subnet[name] = pick(choices)
        else:
            subnet[name] = choices[0 if which == 'min' else -1]
    return subnet


def set_mode(model: nn.Module,
             mode: str,
             include: Patterns = None,
             drop_prob: Optional[float] = None) -> None:
    """Switch the mutables (matching ``include``) to ``mode``."""
    for mutable in named_mutables(model, include).values():
        mutable.set_mode(mode, drop_prob=drop_prob)


def fix_subnet(model: nn.Module, subnet: Subnet) -> None:
    """Set ``subnet`` (all mutables) and pin every mutable in fixed mode."""
    set_subnet(model, subnet, strict=True)
    set_mode(model, 'fixed')


def arch_parameters(model: nn.Module,
                    include: Patterns = None) -> List[nn.Parameter]:
    """The architecture parameters (alpha) of the mutables, for an
    architecture optimizer."""
    return [m.arch_alpha for m in named_mutables(model, include).values()]


def argmax_subnet(model: nn.Module, include: Patterns = None) -> Subnet:
    """The subnet of the largest alpha of every mutable."""
    return {
        n: m.argmax_choice()
        for n, m in named_mutables(model, include).items()
    }


def iter_subnets(model: nn.Module) -> Iterable[Subnet]:
    """Every subnet of a (small) space, in a fixed order; for tests and
    exhaustive search of tiny spaces."""
    import itertools
    mutables = named_mutables(model)
    names = list(mutables)
    for combo in itertools.product(*(m.choices for m in mutables.values())):
        yield dict(zip(names, combo))


def load_subnet(path: str,
                model: nn.Module,
                strict: bool = True) -> Tuple[Subnet, Dict[str, Any]]:
    """Read a subnet file and validate it against ``model`` (nothing is set).

    Returns:
        tuple: ``(subnet with canonical choices, meta)``.

    Raises:
        FileNotFoundError: the file does not exist.
        SubnetFileError: the file is malformed, or names an unknown mutable, a
            choice that is not a candidate, or (``strict``) leaves mutables
            out; the message names the file.
    """
    subnet, meta = read_subnet_file(path)
    try:
        return validate_subnet(model, subnet, strict=strict), meta
    except SubnetError as e:
        raise SubnetFileError(f'{path}: {e}') from e


def fix_in_place(
        module: nn.Module,
        subnet: Optional[Subnet] = None
) -> List[Tuple[BaseMutable, nn.Module]]:
    """Replace every mutable inside ``module`` by the plain module of its
    (current or given) choice, and every elastic-width layer by the plain
    layer of its current widths, in place: no unused candidates, channels
    or architecture parameters are left. Searchable backbones, necks and heads
    call it with their ``fixed_subnet`` argument, so an exported config
    builds the static model directly.

    Args:
        module (nn.Module): A module that is not itself a mutable.
        subnet (dict, optional): Names relative to ``module`` -> choice; all
            mutables must be named. Defaults to None (the current choices).

    Returns:
        list: ``(mutable, its replacement)``, deepest first.
    """
    if isinstance(module, BaseMutable):
        raise TypeError(f'fix_in_place needs a module that holds mutables, '
                        f'got the mutable {type(module).__name__} itself; '
                        'use its export_module()')
    if subnet is not None:
        set_subnet(module, subnet, strict=True)
    # deepest first, so that a mutable inside a chosen candidate is replaced
    # before its parent hands the candidate over; every place of a mutable
    # that sits in several (an activation choice shared by a part's layers)
    replaced = []
    names = [
        n for n, m in module.named_modules(remove_duplicate=False)
        if n and isinstance(m, (BaseMutable, ElasticModule))
    ]
    for name in sorted(names, key=lambda n: -n.count('.')):
        mutable = module.get_submodule(name)
        parent_name, _, attr = name.rpartition('.')
        replaced.append((mutable, mutable.export_module()))
        setattr(module.get_submodule(parent_name), attr, replaced[-1][1])
    return replaced


def static_copy(
    model: nn.Module,
    subnet: Optional[Subnet] = None,
    share_weights: bool = False
) -> Tuple[nn.Module, List[Tuple[BaseMutable, nn.Module]]]:
    """A copy of ``model`` with every mutable replaced by the plain module of
    its (current or given) choice, and the ``(mutable, replacement)`` pairs
    of :func:`fix_in_place` (the mutables being the copy's). The supernet
    itself is left unchanged.

    Args:
        model (nn.Module): The supernet (DDP wrappers are unwrapped).
        subnet (dict, optional): Set on the copy first (all mutables).
            Defaults to None (the current choices).
        share_weights (bool): The copy shares every parameter and buffer
            with ``model`` (a structural view: loading a state dict into it
            writes into the supernet where the replacements share weights).
            Defaults to False (an independent copy).
    """
    import copy
    model = _unwrap(model)
    memo = {
        id(t): t
        for t in list(model.parameters()) + list(model.buffers())
    } if share_weights else {}
    static = copy.deepcopy(model, memo)
    if subnet is not None:
        set_subnet(static, subnet, strict=True)
    link_widths(static)
    # a root mutable is replaced inside a holder
    holder = nn.Sequential(static) if isinstance(static,
                                                 BaseMutable) else static
    pairs = fix_in_place(holder)
    return (holder[0] if holder is not static else static), pairs


def export_static(model: nn.Module,
                  subnet: Optional[Subnet] = None) -> nn.Module:
    """A copy of ``model`` in which every mutable is replaced by the plain
    module of its (current or given) choice: no unused candidates, no
    architecture parameters. The supernet itself is left unchanged.

    Args:
        model (nn.Module): The supernet (DDP wrappers are unwrapped).
        subnet (dict, optional): Set on the copy first (all mutables).
            Defaults to None (the current choices).
    """
    return static_copy(model, subnet)[0]


def _static_param_count(module: nn.Module) -> int:
    if isinstance(module, (BaseMutable, ElasticModule)):
        return _static_param_count(module.export_module())
    return sum(p.numel() for p in module.parameters(recurse=False)) + sum(
        _static_param_count(child) for child in module.children())


def subnet_param_count(model: nn.Module,
                       subnet: Optional[Subnet] = None) -> int:
    """Parameters of the static model of ``subnet`` (default: the current
    choices), counted without copying the model: each mutable counts what its
    exported module holds, recursively (nested mutables included)."""
    model = _unwrap(model)
    link_widths(model)
    if subnet is None:
        return _static_param_count(model)
    previous = get_subnet(model)
    set_subnet(model, subnet)
    try:
        return _static_param_count(model)
    finally:
        set_subnet(model, previous)
