"""Score one subnet of a supernet: BN calibration, then evaluation."""
from typing import Optional, Sequence

import torch
import torch.nn as nn

from mmnas_tricks.models.mutables import set_subnet
from .bn_calibration import calibrate_bn


def score_subnet(model: nn.Module,
                 subnet: dict,
                 dataloader,
                 evaluator,
                 calib_batches: Sequence[dict] = (),
                 num_calib: int = 0,
                 score_key: Optional[str] = None) -> dict:
    """Set ``subnet``, recompute the BatchNorm statistics on
    ``num_calib`` of ``calib_batches`` (TRICKS.md T3.2; skipped when 0),
    evaluate on ``dataloader`` with ``evaluator`` (gathered over ranks, so
    every rank gets the same metrics) and return the metrics.

    Raises:
        KeyError: ``score_key`` is given and not among the metrics.
    """
    set_subnet(model, subnet)
    if num_calib > 0:
        calibrate_bn(model, calib_batches, num_calib)
    model.eval()
    with torch.no_grad():
        for data in dataloader:
            outputs = model.val_step(data)
            evaluator.process(data_samples=outputs, data_batch=data)
    metrics = evaluator.evaluate(len(dataloader.dataset))
    if score_key is not None and score_key not in metrics:
        raise KeyError(f'score_key {score_key!r} is not among the '
                       f'metrics {sorted(metrics)}')
    return metrics
