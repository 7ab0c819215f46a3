"""mmdet's FCOS head with searchable towers."""
from typing import Dict, Optional, Sequence

from mmdet.models.dense_heads import FCOSHead
from mmengine.registry import DefaultScope

from mmnas_tricks.registry import MODELS
from ..contract import searchable
from ..mutables import Subnet
from .level_sharing import LevelFCOSHead
from .towers import make_towers_searchable


@MODELS.register_module(name='SearchableFCOSHead')
@searchable
def searchable_fcos_head(tower_ops: Optional[Dict[str, dict]] = None,
                         tower_depths: Optional[Sequence[int]] = None,
                         widths: Optional[Sequence[int]] = None,
                         act_choices: Optional[Sequence[str]] = None,
                         share_tower_ops: bool = False,
                         share_level: bool = False,
                         fixed_subnet: Optional[Subnet] = None,
                         **kwargs) -> FCOSHead:
    """An ``mmdet.FCOSHead`` whose classification and regression towers are
    searchable (NAS-FCOS head search, Wang et al., CVPR 2020): layer i of
    each tower is an op choice of ``tower_ops`` (each op -> the head's norm,
    GroupNorm as FCOS and NAS-FCOS use -> ReLU) and, with
    ``tower_depths``, the tower depth is a choice too.

    Built by composition: the returned object *is* an ``mmdet.FCOSHead``
    (targets, losses, post-processing untouched) whose ``cls_convs`` /
    ``reg_convs`` were replaced, so a config only changes the type:
    ``bbox_head=dict(type='mmnas_tricks.SearchableFCOSHead', ...)`` keeps
    every ``FCOSHead`` argument of the base config. Mutable names:
    ``cls_convs.{i}`` / ``reg_convs.{i}`` (ops) and ``cls_convs`` /
    ``reg_convs`` (depth). The subnet ``conv3x3`` everywhere at full depth
    is mmdet's plain tower: same parameter count and names, so a zoo FCOS
    head loads into it.

    Args:
        tower_ops (dict, optional): Candidate name -> op config. Defaults to
            None (:data:`~mmnas_tricks.models.heads.towers.TOWER_OPS`).
        tower_depths (Sequence[int], optional): Depth choices (each <=
            ``stacked_convs``). Defaults to None (fixed depth).
        widths (Sequence[int], optional): Tower width choices (``width``,
            both towers; ``feat_channels`` must be the largest, GroupNorm's
            group size stays and its groups follow the width); the towers'
            input follows the neck's width. Needs ``tower_ops`` as conv
            shapes. Defaults to None (``feat_channels``).
        act_choices (Sequence[str], optional): Activation types (mmcv's,
            e.g. ``('ReLU', 'SiLU', 'GELU', 'HSwish')``) each tower chooses
            from, one choice per tower shared by its layers
            (``cls_convs.0.layer.activate``, ``reg_convs.0.layer.activate``;
            the head's ReLU first). Needs ``tower_ops`` as conv shapes.
            Defaults to None (ReLU, as FCOS).
        share_tower_ops (bool): The regression tower repeats the
            classification tower's op (and depth) choices with its own
            weights, as NAS-FCOS searches one op sequence for both. Its
            mutables are then no decisions of their own. Defaults to False.
        share_level (bool): NAS-FCOS's weight-sharing level as a choice too
            (``level_sharing``, ``0 .. stacked_convs``): tower layers below
            it hold one copy per FPN level, the rest are shared by the
            levels (0: FCOS's head). The tower ops are then named
            ``cls_convs.{i}.shared``; the head is a ``LevelFCOSHead`` (an
            ``FCOSHead`` that tells its per-level layers the level). Needs
            the op-dict ``tower_ops`` and a fixed depth. Defaults to False.
        fixed_subnet (dict, optional): Build the static head of this subnet
            (names relative to the head). Defaults to None.
        **kwargs: ``FCOSHead`` arguments.

    Example:
        >>> head = searchable_fcos_head(num_classes=10, in_channels=32,
        ...     feat_channels=32, norm_cfg=dict(type='GN', num_groups=8))
    """
    with DefaultScope.overwrite_default_scope('mmdet'):  # its losses, coders
        head = (LevelFCOSHead if share_level else FCOSHead)(**kwargs)
    return make_towers_searchable(head, tower_ops, tower_depths, fixed_subnet,
                                  widths, act_choices, share_tower_ops,
                                  share_level)
