"""Report the final metrics of a run."""
import numbers
import os.path as osp
from typing import Dict, Optional, Sequence

from mmengine.dist import is_main_process

from .io import dump_json_atomic

_NOT_METRICS = ('time', 'data_time')


def scalar_metrics(metrics: dict) -> Dict[str, float]:
    """The real-number entries of an evaluator's metrics as floats: Python
    and numpy scalars alike (mmseg's ``IoUMetric`` returns numpy float32),
    bools and anything else dropped."""
    return {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, numbers.Real) and not isinstance(v, bool)
    }


def last_val_metrics(runner) -> Dict[str, float]:
    """The scalar metrics of the last validation, from the message hub."""
    scalars = runner.message_hub.log_scalars
    return {
        key[len('val/'):]: float(buf.current())
        for key, buf in scalars.items() if key.startswith('val/')
    }


def print_final_metrics(runner,
                        metrics: Optional[Dict[str, float]] = None,
                        name: str = 'final_metrics.json') -> Dict[str, float]:
    """Print the metrics (default: the last validation's) and write them to
    ``work_dir/name`` as JSON, on the main process only."""
    if metrics is None:
        metrics = last_val_metrics(runner)
    # the message hub also holds the val loop's timings: not metrics
    metrics = {
        k: v
        for k, v in scalar_metrics(metrics).items() if k not in _NOT_METRICS
    }
    if is_main_process() and not metrics:
        runner.logger.warning(
            'no metrics to report: no validation ran, or the evaluator '
            'returned nothing (e.g. no detection passed score_thr)')
    if is_main_process() and metrics:
        line = ', '.join(f'{k}={v:.4f}' for k, v in sorted(metrics.items()))
        runner.logger.info(f'final metrics: {line}')
        print(f'final metrics: {line}', flush=True)
        dump_json_atomic(metrics, osp.join(runner.work_dir, name))
    return metrics


def rank_consistency(a: Sequence[float],
                     b: Sequence[float],
                     top_k: int = 3) -> Dict[str, float]:
    """How well the scores ``a`` rank the items as ``b`` does (docs/tricks.md,
    T5.3): Kendall tau, Spearman rho (``scipy.stats``; NaN when either list
    is constant) and the overlap of the two top-``k`` sets (higher is
    better), with ``n``."""
    from scipy.stats import kendalltau, spearmanr
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f'need two equally long lists of >= 2 scores, got '
                         f'{len(a)} and {len(b)}')
    k = min(top_k, len(a))
    top_a = set(sorted(range(len(a)), key=lambda i: -a[i])[:k])
    top_b = set(sorted(range(len(b)), key=lambda i: -b[i])[:k])
    return dict(
        kendall_tau=float(kendalltau(a, b).statistic),
        spearman_rho=float(spearmanr(a, b).statistic),
        top_k=k,
        top_k_overlap=len(top_a & top_b) / k,
        n=len(a))
