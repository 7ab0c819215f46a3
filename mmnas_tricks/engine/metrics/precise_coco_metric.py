"""mmdet's COCO metric without rounding, for ranking search candidates."""
import contextlib
from typing import Dict, List

from mmdet.evaluation.metrics import coco_metric as _coco_module

from mmnas_tricks.registry import METRICS
from .fast_coco_metric import FastCocoMetric

#: mmdet's names of ``COCOeval.stats`` entries.
COCO_STATS = dict(mAP=0, mAP_50=1, mAP_75=2, mAP_s=3, mAP_m=4, mAP_l=5)


@contextlib.contextmanager
def _recording_cocoeval(records: List):
    """Let mmdet's metric build a ``COCOeval`` that remembers itself."""
    original = _coco_module.COCOeval

    class Recording(original):

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            records.append(self)

    _coco_module.COCOeval = Recording
    try:
        yield
    finally:
        _coco_module.COCOeval = original


@contextlib.contextmanager
def _results_in_memory():
    """Keep the detections that mmdet's metric dumps to a temporary JSON
    file (and loads back at once) in memory instead: the same objects
    without the JSON round trip (exact for Python floats), which costs a
    search time per candidate (docs/benchmarks.md). Ground truth files
    (``*.gt.json``, read back by pycocotools) are still written."""
    dump, load = _coco_module.dump, _coco_module.load
    kept = {}

    def dump_results(obj, file=None, *args, **kwargs):
        if isinstance(file, str) and not file.endswith('.gt.json'):
            kept[file] = obj
            return None
        return dump(obj, file, *args, **kwargs)

    def load_results(file, *args, **kwargs):
        if isinstance(file, str) and file in kept:
            return kept.pop(file)
        return load(file, *args, **kwargs)

    _coco_module.dump, _coco_module.load = dump_results, load_results
    try:
        yield
    finally:
        _coco_module.dump, _coco_module.load = dump, load


@METRICS.register_module()
class PreciseCocoMetric(FastCocoMetric):
    """``mmdet.CocoMetric`` whose ``{bbox,segm}_mAP*`` values are the
    unrounded ``COCOeval`` statistics. mmdet rounds them to 3 decimals,
    which makes many search candidates tie (MMRazor's search, rounding to
    2, tied most of them); ranking needs every digit. Same arguments and
    keys as ``CocoMetric``, and ``backend`` as ``FastCocoMetric`` (C++
    evaluation by default).

    Without an ``outfile_prefix`` (results not kept), the detections are
    handed to pycocotools in memory instead of through a temporary JSON
    file.

    Example:
        >>> val_evaluator = dict(type='mmnas_tricks.PreciseCocoMetric',
        ...                      metric='bbox', ann_file=None)
    """

    @contextlib.contextmanager
    def _evaluating(self):
        self._evals: List = []
        in_memory = _results_in_memory() if self.outfile_prefix is None \
            else contextlib.nullcontext()
        with _recording_cocoeval(self._evals), in_memory:
            yield

    def compute_metrics(self, results: list) -> Dict[str, float]:
        metrics = super().compute_metrics(results)
        evals, self._evals = self._evals, []
        for coco_eval in evals:
            iou_type = coco_eval.params.iouType
            stats = getattr(coco_eval, 'stats', None)
            if stats is None or len(stats) < 6 or (not getattr(
                    coco_eval.params, 'useCats', 1)):
                continue  # proposal recall: keys of another kind
            for item, index in COCO_STATS.items():
                key = f'{iou_type}_{item}'
                if key in metrics:
                    metrics[key] = float(stats[index])
        return metrics
