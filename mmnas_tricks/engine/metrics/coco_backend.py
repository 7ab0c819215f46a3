"""The COCO evaluation library behind mmdet's ``CocoMetric``.

mmdet's metric evaluates with pycocotools, whose per-image matching and
accumulation are Python loops. ``faster-coco-eval`` implements both in C++
with pycocotools' API and results: all 12 statistics, boxes and masks,
equal to the last bit on a trained detector's digits predictions (our
test); on other predictions an entry of the precision table can differ in
its last bit (2e-16), and so an unrounded mAP (by 1e-17 in our search
benchmark). mmdet reads ``COCO`` and ``COCOeval`` from its metric module's
globals; :func:`coco_backend` points them at the chosen library for the
duration of one call, so ``CocoMetric``'s own code runs unchanged on
either.
"""
import contextlib
import functools
from typing import Optional

from mmdet.evaluation.metrics import coco_metric as _coco_module

#: the valid values of a metric's ``backend`` argument
COCO_BACKENDS = ('faster_coco_eval', 'pycocotools')


def check_backend(backend: str, use_mp_eval: bool = False) -> None:
    """Raise a ``ValueError`` naming the bad ``backend`` (or the bad
    combination with ``use_mp_eval``) and the valid ones."""
    if backend not in COCO_BACKENDS:
        raise ValueError(f'backend={backend!r}: not a COCO backend; valid: '
                         f'{", ".join(COCO_BACKENDS)}')
    if backend == 'faster_coco_eval' and use_mp_eval:
        raise ValueError(
            "use_mp_eval=True with backend='faster_coco_eval': mmdet's "
            "multi-process COCOevalMP reads pycocotools' evalImgs, which the "
            'C++ evaluation does not fill; use one of them (faster_coco_eval '
            'is the faster of the two)')


@functools.lru_cache(maxsize=None)
def _faster_classes():
    """``faster_coco_eval``'s ``COCO`` (it has mmdet's snake-case names of
    its own) and ``COCOeval_faster``, printing its summary as pycocotools
    does (to stdout, where mmdet's metric leaves it); made once."""
    import faster_coco_eval

    class COCO(faster_coco_eval.COCO):

        def __init__(self, annotation_file=None, **kwargs):
            kwargs.setdefault('print_function', lambda *a, **k: None)
            super().__init__(annotation_file, **kwargs)

    class COCOeval(faster_coco_eval.COCOeval_faster):

        def __init__(self, cocoGt=None, cocoDt=None, iouType='segm', **kwargs):
            kwargs.setdefault('print_function', print)
            super().__init__(cocoGt, cocoDt, iouType, **kwargs)

    return COCO, COCOeval


@contextlib.contextmanager
def coco_backend(backend: Optional[str]):
    """Within the block, mmdet's ``CocoMetric`` builds its ground truth,
    loads its detections and evaluates with ``backend``
    (``'faster_coco_eval'`` or ``'pycocotools'``; ``None``: as it is)."""
    if backend is None:
        yield
        return
    check_backend(backend)
    original = _coco_module.COCO, _coco_module.COCOeval
    if backend == 'faster_coco_eval':
        _coco_module.COCO, _coco_module.COCOeval = _faster_classes()
    else:
        from mmdet.datasets.api_wrappers import COCO, COCOeval
        _coco_module.COCO, _coco_module.COCOeval = COCO, COCOeval
    try:
        yield
    finally:
        _coco_module.COCO, _coco_module.COCOeval = original
