"""mmdet's ``CocoMetric`` on a chosen COCO library (C++ by default)."""
import contextlib
from typing import Dict

from mmdet.evaluation.metrics import CocoMetric

from mmnas_tricks.registry import METRICS
from .coco_backend import check_backend, coco_backend


@METRICS.register_module()
class FastCocoMetric(CocoMetric):
    """``mmdet.CocoMetric`` evaluated by ``faster-coco-eval`` (C++ matching
    and accumulation, the same statistics as pycocotools) instead of
    pycocotools: same arguments, keys and values, a few times faster.

    Args:
        backend (str): ``'faster_coco_eval'`` (default) or
            ``'pycocotools'`` (mmdet's own path). ``use_mp_eval`` needs
            ``'pycocotools'``.
        *args, **kwargs: ``CocoMetric``'s.

    One difference: when no image has a single detection, pycocotools
    fails to load the empty results and mmdet's metric returns no
    ``{bbox,segm}_*`` keys; faster-coco-eval evaluates them (mAP 0 where
    there is ground truth).

    Example:
        >>> val_evaluator = dict(type='mmnas_tricks.FastCocoMetric',
        ...                      ann_file='annotations/instances_val.json',
        ...                      metric='bbox')
    """

    def __init__(self, *args, backend: str = 'faster_coco_eval', **kwargs):
        check_backend(backend, kwargs.get('use_mp_eval', False))
        self.backend = backend
        with coco_backend(backend):  # the ground truth of ann_file
            super().__init__(*args, **kwargs)

    def _evaluating(self):
        """What surrounds mmdet's ``compute_metrics`` besides the backend
        (entered after it, so it sees the backend's classes)."""
        return contextlib.nullcontext()

    def compute_metrics(self, results: list) -> Dict[str, float]:
        with coco_backend(self.backend), self._evaluating():
            return super().compute_metrics(results)
