from .precise_coco_metric import PreciseCocoMetric

__all__ = ['PreciseCocoMetric']
