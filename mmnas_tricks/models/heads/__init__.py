from .searchable_aspp_head import searchable_aspp_head
from .searchable_fcos_head import searchable_fcos_head
from .searchable_retina_head import searchable_retina_head
from .searchable_sem_fpn_head import SEG_HEAD_OPS, searchable_sem_fpn_head
from .towers import (NASFCOS_HEAD_OPS, TOWER_OPS, make_towers_searchable,
                     searchable_tower)

__all__ = [
    'searchable_aspp_head', 'searchable_fcos_head', 'searchable_retina_head',
    'searchable_sem_fpn_head', 'TOWER_OPS', 'NASFCOS_HEAD_OPS', 'SEG_HEAD_OPS',
    'searchable_tower', 'make_towers_searchable'
]
