from .coco_backend import COCO_BACKENDS, coco_backend
from .fast_coco_metric import FastCocoMetric
from .precise_coco_metric import PreciseCocoMetric

__all__ = [
    'COCO_BACKENDS', 'coco_backend', 'FastCocoMetric', 'PreciseCocoMetric'
]
