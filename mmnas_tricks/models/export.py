"""A subnet's static model: its checkpoint, its config, and weight
inheritance from a plain (model-zoo) checkpoint into the supernet."""
import copy
from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.config import Config, ConfigDict

from mmnas_tricks.registry import MODELS
from mmnas_tricks.structures.subnet_file import plain_choice
from mmnas_tricks.utils.io import atomic_write
from .contract import is_searchable
from .mutables import (Subnet, SubnetError, export_static, get_subnet,
                       input_channels, set_subnet, static_copy)


def save_static_checkpoint(model: nn.Module,
                           path: str,
                           subnet: Optional[Subnet] = None,
                           meta: Optional[Dict[str, Any]] = None) -> nn.Module:
    """Export ``subnet`` (default: the current choices) of ``model`` and save
    the static model's weights, and nothing else, to ``path``.

    The file is an mmengine-style checkpoint ``{'state_dict', 'meta'}``
    (``meta['subnet']`` records the subnet) that loads with
    ``torch.load``'s default ``weights_only=True``; it is written to a
    temporary file and renamed into place.

    Returns:
        nn.Module: The static model that was saved.
    """
    static = export_static(model, subnet)
    subnet = dict(subnet) if subnet is not None else get_subnet(model)
    checkpoint = dict(
        state_dict={
            k: v.detach().cpu()
            for k, v in static.state_dict().items()
        },
        meta=dict(
            meta or {}, subnet={k: plain_choice(v)
                                for k, v in subnet.items()}))
    atomic_write(path, lambda f: torch.save(checkpoint, f))
    return static


def inherit_weights(model: nn.Module,
                    state_dict: Dict[str, torch.Tensor],
                    subnet: Optional[Subnet] = None,
                    strict: bool = True):
    """Load the weights of a static model into the supernet ``model``: the
    chosen candidates of ``subnet`` (default: the current choices) receive
    them, kernels and channels into their slices. With the subnet that
    reproduces a plain architecture (e.g. ``conv3x3`` at full depth in a
    searchable FCOS head), a model-zoo checkpoint of that architecture seeds
    the supernet (weight inheritance). The supernet's current
    choices are not changed.

    Args:
        model (nn.Module): The supernet (DDP wrappers are unwrapped).
        state_dict (dict): Parameter name of the static model -> tensor.
        subnet (dict, optional): The subnet the weights belong to.
            Defaults to None (the current choices).
        strict (bool): As ``nn.Module.load_state_dict``. Defaults to True.

    Returns:
        The ``missing_keys`` / ``unexpected_keys`` of the load.
    """
    static, pairs = static_copy(model, subnet, share_weights=True)
    result = static.load_state_dict(state_dict, strict=strict)
    for mutable, exported in reversed(pairs):
        mutable.import_module(exported)  # sliced copies back into the slices
    return result


def _registered(type_: Any) -> Any:
    """The class (or builder) of one of our config ``type`` names."""
    if not isinstance(type_, str):
        return None
    name = type_.split('.', 1)[1] if type_.startswith('mmnas_tricks.') \
        else type_
    return MODELS.module_dict.get(name)


def _searchable(type_: Any) -> bool:
    """Whether a config ``type`` is one of our searchable components (see
    :mod:`mmnas_tricks.models.contract`)."""
    return is_searchable(_registered(type_))


def _searchable_paths(cfg: Any, path: str = '') -> List[Tuple[str, dict]]:
    """(module path, config dict) of every searchable component of a model
    config, found where the config key is the attribute name (``backbone``,
    ``neck``, ``bbox_head``, ``decode_head``, list entries ``.{i}``)."""
    found = []
    if isinstance(cfg, dict):
        if _searchable(cfg.get('type')):
            return [(path, cfg)]
        for key, value in cfg.items():
            if isinstance(value, (dict, list, tuple)):
                found += _searchable_paths(value,
                                           f'{path}.{key}' if path else key)
    elif isinstance(cfg, (list, tuple)):
        for i, value in enumerate(cfg):
            found += _searchable_paths(value,
                                       f'{path}.{i}' if path else str(i))
    return found


def export_config(cfg: Config,
                  subnet: Subnet,
                  model: Optional[nn.Module] = None) -> Config:
    """The config of the static model of ``subnet``: every searchable
    component of ``cfg.model`` gets ``fixed_subnet`` (its share of the
    subnet, names relative to it), so it builds plain modules of the chosen
    candidates only; a component fed by elastic widths gets the chosen
    ``in_channels``; a searchable data preprocessor becomes mmdet's, with
    the chosen input size written into the pipelines
    (``to_plain_config``); nothing else changes (data, schedule, hooks).

    Args:
        cfg (Config): The supernet's config.
        subnet (dict): The subnet (every mutable).
        model (nn.Module, optional): The supernet built from ``cfg``, to
            read the input channels that elastic widths give; built from
            ``cfg`` when None and the model has widths (a ``widths`` or
            ``width_ratios`` argument). Defaults to None.

    Raises:
        SubnetError: a subnet name lies outside every searchable component,
            or the model config has no searchable component.
    """
    cfg = copy.deepcopy(cfg)
    parts = _searchable_paths(cfg.model)
    if not parts:
        raise SubnetError('the model config has no searchable component '
                          '(a type decorated with @searchable)')
    channels = _input_channels(cfg, parts, subnet, model)
    claimed = set()
    for path, part in parts:
        prefix = path + '.'
        own = {
            name[len(prefix):]: plain_choice(choice)
            for name, choice in subnet.items() if name.startswith(prefix)
        }
        claimed.update(prefix + name for name in own)
        part['fixed_subnet'] = ConfigDict(own) if own else None
        to_plain = getattr(
            _registered(part.get('type')), 'to_plain_config', None)
        if to_plain is not None:
            to_plain(cfg, part, own)
    for name, value in channels.items():
        part = cfg.model[name]
        old = part.get('in_channels')
        if isinstance(old, (list, tuple)):
            part['in_channels'] = [
                o if v is None else v for o, v in zip(old, value, strict=True)
            ]
        else:
            part['in_channels'] = _one(
                name, [old if v is None else v for v in value])
    stray = sorted(set(subnet) - claimed)
    if stray:
        raise SubnetError(f'subnet names outside every searchable component '
                          f'{[p for p, _ in parts]}: {stray[:5]}')
    return cfg


def _one(name: str, widths: List[int]) -> int:
    if len(set(widths)) != 1:
        raise SubnetError(f'{name} takes one in_channels, its inputs have '
                          f'{widths}')
    return widths[0]


def _input_channels(cfg: Config, parts, subnet: Subnet,
                    model: Optional[nn.Module]) -> Dict[str, List[int]]:
    """The input channels of the components fed by elastic widths, for
    ``subnet``."""
    if model is None:
        if not any('widths' in part or 'width_ratios' in part
                   for _, part in parts):
            return {}
        from mmnas_tricks.utils.launch import build_model
        model = build_model(cfg)
    previous = get_subnet(model)
    set_subnet(model, subnet, strict=False)
    try:
        return input_channels(model)
    finally:
        set_subnet(model, previous)
