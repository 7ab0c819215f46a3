"""The activation function as a choice, shared by the layers of a part."""
from typing import Dict, List, Sequence, Union

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule, build_activation_layer

from mmnas_tricks.registry import MODELS
from .base import BaseMutable

#: A default set: ReLU (the plain models'), SiLU, GELU and mmcv's HSwish.
ACTIVATIONS = ('ReLU', 'SiLU', 'GELU', 'HSwish')
#: The types mmcv's ConvModule builds without ``inplace`` (its own rule).
_NOT_INPLACE = ('Tanh', 'PReLU', 'Sigmoid', 'HSigmoid', 'Swish', 'GELU')


def _build(name: str, inplace: bool) -> nn.Module:
    cfg = dict(type=name)
    if name not in _NOT_INPLACE:
        cfg['inplace'] = inplace
    try:
        return build_activation_layer(cfg)
    except TypeError:  # an activation without an inplace argument
        return build_activation_layer(dict(type=name))


@MODELS.register_module()
class ActivationChoice(BaseMutable):
    """The activation function as a choice (mmcv activation type names,
    e.g. ``'ReLU'``, ``'SiLU'``, ``'GELU'``, ``'HSwish'``). It has no
    weights, so one instance can sit in several layers (one choice for a
    stage or a part: :func:`activation_choices`); it is named by its first
    place in the model.

    Modes: ``fixed`` / ``sampled`` apply the current activation;
    ``differentiable`` mixes them with ``softmax(alpha)``; ``all_on`` sums
    the kept ones (path dropout). The export is mmcv's plain activation
    layer, built as ``ConvModule`` builds it; the ``ConvModule`` layers it
    sits in (:attr:`owners`) get the chosen ``act_cfg``, so the static
    model is the plain model of that ``act_cfg``.

    Args:
        choices (Sequence[str]): Activation types; the first is the
            default (by convention the plain model's).
        init_cfg (dict, optional): Initialisation. Defaults to None.
    """

    def __init__(self, choices: Sequence[str] = ACTIVATIONS, init_cfg=None):
        super().__init__([str(c) for c in choices], init_cfg)
        # a mix feeds one input to every candidate: none may work in place
        self.candidates = nn.ModuleDict(
            {c: _build(c, inplace=False)
             for c in self.choices})
        #: the ConvModules whose act_cfg follows the choice on export (a
        #: plain list: they are the parents, not submodules)
        self.owners: List[ConvModule] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_candidates(x)

    def export_cfg(self) -> dict:
        return dict(type=self.current_choice)

    def export_module(self) -> nn.Module:
        for owner in self.owners:
            owner.act_cfg = self.export_cfg()
        return _build(self.current_choice, inplace=True)


def activation_choices(
        module: nn.Module,
        groups: Union[Sequence[str], Dict[str, Sequence[str]]],
        choices: Sequence[str] = ACTIVATIONS) -> Dict[str, ActivationChoice]:
    """Replace the activation of ``ConvModule`` layers of ``module`` by
    :class:`ActivationChoice` mutables, in place: a list of layer paths
    gives each its own choice; a dict (group name -> layer paths) gives
    each group one choice shared by its layers (a stage, a tower, a part).
    The layers' own activation comes first, so the default subnet is the
    plain module; the other ``choices`` follow.

    Returns:
        dict: group name (or layer path) -> its mutable.

    Raises:
        TypeError: a path is not a ``ConvModule`` with an activation.
        ValueError: the layers of a group have different activations.
    """
    if not isinstance(groups, dict):
        groups = {path: [path] for path in groups}
    made = {}
    for group, paths in groups.items():
        convs = []
        for path in paths:
            conv = module.get_submodule(path)
            if not isinstance(conv, ConvModule) or not conv.with_activation:
                raise TypeError(
                    f'{path!r} is a {type(conv).__name__}'
                    f'{"" if isinstance(conv, ConvModule) else ","} '
                    'not a ConvModule with an activation, which '
                    'activation_choices replaces')
            convs.append(conv)
        own = {conv.act_cfg['type'] for conv in convs}
        if len(own) != 1:
            raise ValueError(f'the layers of group {group!r} have different '
                             f'activations {sorted(own)}: one choice cannot '
                             'start as all of them')
        first = own.pop()
        mutable = ActivationChoice([first] +
                                   [c for c in choices if c != first])
        for conv in convs:
            conv.activate = mutable
            mutable.owners.append(conv)
        made[group] = mutable
    return made
