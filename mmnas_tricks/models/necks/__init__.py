from .nasfcos_search_fpn import (NASFCOS_AGGREGATIONS, NASFCOS_FPN_OPS,
                                 NASFCOSSearchFPN)
from .searchable_fpn import FPN_LATERAL_OPS, FPN_OUTPUT_OPS, searchable_fpn

__all__ = [
    'searchable_fpn', 'FPN_OUTPUT_OPS', 'FPN_LATERAL_OPS', 'NASFCOSSearchFPN',
    'NASFCOS_FPN_OPS', 'NASFCOS_AGGREGATIONS'
]
