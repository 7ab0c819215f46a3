"""Ghost BatchNorm and the conversion of a model's BatchNorms to another
normalisation (GroupNorm, Ghost BN, SyncBN)."""
import fnmatch
from typing import List, Optional, Sequence, Union

import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmnas_tricks.registry import MODELS

NORM_TARGETS = ('GN', 'GhostBN', 'SyncBN')


@MODELS.register_module('GhostBN')
class GhostBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm over virtual batches (Hoffer, Hubara & Soudry, "Train
    longer, generalize better", NeurIPS 2017; docs/tricks.md, T3.3): in
    training a batch of ``B`` examples is split into chunks of
    ``virtual_batch_size``, each normalised with its own statistics, the
    running statistics updated once per chunk; eval mode is plain
    BatchNorm. With
    ``virtual_batch_size >= B`` it is ``nn.BatchNorm2d`` exactly.

    Args:
        num_features (int): Channels.
        virtual_batch_size (int): Examples per virtual batch. Defaults to
            32 (docs/tricks.md; 128 in the paper).
        **kwargs: ``eps``, ``momentum``, ``affine``, ``track_running_stats``
            of ``nn.BatchNorm2d``.

    Example:
        >>> norm_cfg = dict(type='mmnas_tricks.GhostBN', virtual_batch_size=4)
    """

    _abbr_ = 'bn'

    def __init__(self,
                 num_features: int,
                 virtual_batch_size: int = 32,
                 **kwargs) -> None:
        super().__init__(num_features, **kwargs)
        if virtual_batch_size < 1:
            raise ValueError(
                f'virtual_batch_size={virtual_batch_size} must be >= 1')
        self.virtual_batch_size = int(virtual_batch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or x.shape[0] <= self.virtual_batch_size:
            return super().forward(x)
        return torch.cat([
            super(GhostBatchNorm2d, self).forward(chunk)
            for chunk in x.split(self.virtual_batch_size)
        ])

    def extra_repr(self) -> str:
        return (super().extra_repr() +
                f', virtual_batch_size={self.virtual_batch_size}')


def _under(name: str, include: Optional[Sequence[str]]) -> bool:
    if include is None:
        return True
    return any(
        name == p or name.startswith(p + '.') or fnmatch.fnmatchcase(name, p)
        for p in include)


def _share_state(new: nn.Module, old: _BatchNorm) -> None:
    """``new`` takes ``old``'s parameters (the same objects: the optimizer
    and DDP keep working) and, if it has them, its running buffers."""
    if old.affine:
        new.weight = old.weight
        new.bias = old.bias
    for buf in ('running_mean', 'running_var', 'num_batches_tracked'):
        if getattr(new, buf, None) is not None and \
                getattr(old, buf, None) is not None:
            setattr(new, buf, getattr(old, buf))
    new.train(old.training)


def _converted(bn: _BatchNorm, name: str, to: str, num_groups: int,
               virtual_batch_size: int) -> nn.Module:
    c = bn.num_features
    if to == 'GN':
        if c % num_groups:
            raise ValueError(
                f'cannot replace {name} ({c} channels) by GroupNorm with '
                f'num_groups={num_groups}: {c} is not a multiple; choose a '
                f'divisor of {c}')
        new = nn.GroupNorm(num_groups, c, eps=bn.eps, affine=bn.affine)
    elif to == 'GhostBN':
        new = GhostBatchNorm2d(
            c,
            virtual_batch_size,
            eps=bn.eps,
            momentum=bn.momentum,
            affine=bn.affine,
            track_running_stats=bn.track_running_stats)
    else:
        new = nn.SyncBatchNorm(
            c,
            eps=bn.eps,
            momentum=bn.momentum,
            affine=bn.affine,
            track_running_stats=bn.track_running_stats)
    new.to(next(iter(bn.buffers()), torch.empty(0)).device)
    _share_state(new, bn)
    return new


def convert_batchnorms(model: nn.Module,
                       to: str,
                       include: Optional[Union[str, Sequence[str]]] = None,
                       num_groups: int = 32,
                       virtual_batch_size: int = 32) -> List[str]:
    """Replace every ``BatchNorm2d`` (and SyncBN) of ``model``, or those under
    the module paths ``include``, by GroupNorm, Ghost BN or SyncBN, in place.

    The new norm takes the old one's weight and bias objects (so an
    optimizer or DDP wrapper built before keeps working and a checkpoint of
    either model maps weight to weight), and Ghost BN / SyncBN also its
    running statistics; GroupNorm has none. Norms already of the target
    type are left alone, so converting twice is harmless.

    Args:
        model (nn.Module): The model (not a DDP wrapper).
        to (str): ``'GN'``, ``'GhostBN'`` or ``'SyncBN'``.
        include (str | Sequence[str], optional): Module paths (``'neck'``
            covers ``neck.*``) or fnmatch patterns. Defaults to None (all).
        num_groups (int): GroupNorm groups; must divide every converted
            norm's channels. Defaults to 32.
        virtual_batch_size (int): Ghost BN virtual batch. Defaults to 32.

    Returns:
        list[str]: The module paths converted.

    Example:
        >>> convert_batchnorms(detector, 'GN', ['neck', 'bbox_head'], 16)
    """
    if to not in NORM_TARGETS:
        raise ValueError(f'to={to!r} is not one of {list(NORM_TARGETS)}')
    if isinstance(include, str):
        include = [include]
    target = dict(
        GN=nn.GroupNorm, GhostBN=GhostBatchNorm2d, SyncBN=nn.SyncBatchNorm)[to]
    todo = [(name, m) for name, m in model.named_modules()
            if isinstance(m, (nn.BatchNorm2d, nn.SyncBatchNorm))
            and not isinstance(m, target) and _under(name, include)]
    if include is not None:
        names = [n for n, _ in model.named_modules()]
        missing = [
            p for p in include if not any(_under(n, [p]) for n in names)
        ]
        if missing:
            raise ValueError(
                f'no module path matches {missing}; top-level '
                f'modules: {[n for n, _ in model.named_children()]}')
    for name, bn in todo:
        parent_name, _, child = name.rpartition('.')
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child,
                _converted(bn, name, to, num_groups, virtual_batch_size))
    return [name for name, _ in todo]
