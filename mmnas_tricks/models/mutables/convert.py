"""Turn the convs of an existing mmdet / mmseg module into op choices."""
import copy
import inspect
from typing import Dict, Optional, Sequence, Union

import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.registry import DefaultScope

from mmnas_tricks.registry import MODELS
from .conv_shape_choice import ConvShapeChoice
from .op_choice import OpChoice


def with_norm_act(candidates: Dict[str, dict], norm_cfg: Optional[dict],
                  act_cfg: Optional[dict], **optional) -> Dict[str, dict]:
    """A copy of ``candidates`` in which every candidate that does not set
    its own ``norm_cfg`` / ``act_cfg`` gets these (``None`` included: a
    candidate of a norm-free FPN conv is norm-free too), and the
    ``optional`` arguments (e.g. ``bias``) where the candidate's class takes
    them."""
    out = {}
    for name, cfg in candidates.items():
        cfg = copy.deepcopy(dict(cfg))
        cfg.setdefault('norm_cfg', copy.deepcopy(norm_cfg))
        cfg.setdefault('act_cfg', copy.deepcopy(act_cfg))
        if optional:
            with DefaultScope.overwrite_default_scope('mmnas_tricks'):
                cls = MODELS.get(cfg['type'])
            if cls is None:
                raise KeyError(f'candidate {name!r}: type {cfg["type"]!r} is '
                               'not registered')
            accepted = inspect.signature(cls).parameters
            for key, value in optional.items():
                if key in accepted:
                    cfg.setdefault(key, value)
        out[name] = cfg
    return out


def conv_choices(module: nn.Module, names: Sequence[str],
                 candidates: Union[Dict[str, dict], Sequence]) -> None:
    """Replace each ``ConvModule`` named in ``names`` (paths inside
    ``module``) by an :class:`OpChoice` of ``candidates`` (a dict name ->
    op config) or, when ``candidates`` is a list of ``(kernel_size,
    dilation)`` pairs, by a weight-sharing :class:`ConvShapeChoice`, with
    the same input and output channels, stride, norm, activation and conv
    bias (unless a candidate sets its own), in place.

    With a candidate equal to the replaced conv first (e.g. ``conv3x3`` for
    a 3x3 ConvModule), the default subnet is the original module, with the
    same parameter names once exported.

    Args:
        module (nn.Module): The module holding the convs (an mmdet FPN, an
            mmseg decode head, ...).
        names (Sequence[str]): Dotted paths of the ConvModules.
        candidates (dict | list): Candidate name -> op config, or
            ``(kernel_size, dilation)`` pairs.
    """
    for name in names:
        conv = module.get_submodule(name)
        if not isinstance(conv, ConvModule):
            raise TypeError(f'{name!r} is a {type(conv).__name__}, not the '
                            'ConvModule conv_choices replaces')
        stride = conv.conv.stride
        stride = stride[0] if isinstance(stride, tuple) else stride
        if isinstance(candidates, (list, tuple)):
            choice = ConvShapeChoice(
                conv.conv.in_channels,
                conv.conv.out_channels,
                candidates,
                stride=stride,
                norm_cfg=conv.norm_cfg,
                act_cfg=conv.act_cfg if conv.with_activation else None,
                bias=conv.conv.bias is not None)
            parent_name, _, attr = name.rpartition('.')
            setattr(module.get_submodule(parent_name), attr, choice)
            continue
        choice = OpChoice(
            with_norm_act(
                candidates,
                conv.norm_cfg,
                conv.act_cfg if conv.with_activation else None,
                bias=conv.conv.bias is not None),
            conv.conv.in_channels,
            conv.conv.out_channels,
            stride=stride)
        parent_name, _, attr = name.rpartition('.')
        setattr(module.get_submodule(parent_name), attr, choice)
