from .base import BaseSearchableBackbone
from .searchable_bottleneck_resnet import (BOTTLENECK_ARCHS,
                                           SearchableBottleneckResNet)
from .searchable_mobilenet_v2 import MBV2_ARCH, SearchableMobileNetV2
from .searchable_resnet import SearchableResNet
from .searchable_shufflenet_v2 import DETNAS_CANDIDATES, SearchableShuffleNetV2

__all__ = [
    'BaseSearchableBackbone', 'SearchableMobileNetV2', 'MBV2_ARCH',
    'SearchableShuffleNetV2', 'DETNAS_CANDIDATES', 'SearchableResNet',
    'SearchableBottleneckResNet', 'BOTTLENECK_ARCHS'
]
