"""mmdet's RetinaNet head with searchable towers."""
from typing import Dict, Optional, Sequence

from mmdet.models.dense_heads import RetinaHead
from mmengine.registry import DefaultScope

from mmnas_tricks.registry import MODELS
from ..contract import searchable
from ..mutables import Subnet
from .towers import make_towers_searchable


@MODELS.register_module(name='SearchableRetinaHead')
@searchable
def searchable_retina_head(tower_ops: Optional[Dict[str, dict]] = None,
                           tower_depths: Optional[Sequence[int]] = None,
                           fixed_subnet: Optional[Subnet] = None,
                           **kwargs) -> RetinaHead:
    """An ``mmdet.RetinaHead`` whose classification and regression towers
    are searchable, exactly as
    :func:`~mmnas_tricks.models.heads.searchable_fcos_head` does for FCOS
    (op choice per tower layer, optional depth choice, ``conv3x3`` at full
    depth = the plain RetinaNet tower with the same settings). GroupNorm by
    default, as NAS-FCOS (T3.5): without a ``norm_cfg`` the head gets
    ``dict(type='GN', num_groups=32, requires_grad=True)`` (mmdet's
    RetinaHead has none; pass ``norm_cfg=None`` for that).

    Args:
        tower_ops (dict, optional): Candidate name -> op config. Defaults to
            None (:data:`~mmnas_tricks.models.heads.towers.TOWER_OPS`).
        tower_depths (Sequence[int], optional): Depth choices. Defaults to
            None (fixed depth).
        fixed_subnet (dict, optional): Build the static head of this subnet.
            Defaults to None.
        **kwargs: ``RetinaHead`` arguments.
    """
    kwargs.setdefault('norm_cfg',
                      dict(type='GN', num_groups=32, requires_grad=True))
    with DefaultScope.overwrite_default_scope('mmdet'):  # its losses, coders
        head = RetinaHead(**kwargs)
    return make_towers_searchable(head, tower_ops, tower_depths, fixed_subnet)
