"""BN calibration: recompute BatchNorm statistics for the current subnet."""
from typing import Callable, Iterable, List

import torch
import torch.nn as nn
from mmengine.dist import all_reduce, get_world_size
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from torch.nn.modules.batchnorm import _BatchNorm


def _batch_size(data: dict) -> int:
    inputs = data['inputs']
    return inputs.shape[0] if torch.is_tensor(inputs) else len(inputs)


def bn_forward(model: nn.Module,
               bns: List[nn.Module],
               shortest: bool = True) -> Callable:
    """The shortest forward of an mmdet / mmseg model that reaches every
    BatchNorm of ``bns``: ``model.backbone`` alone when they all lie in it,
    ``model.extract_feat`` (backbone and neck) when they lie there, else
    (or with ``shortest=False``) the whole model (``mode='tensor'``). A
    BatchNorm's statistics depend only on the layers before it, so what
    comes after the last one (an FCOS head with GroupNorm, say) need not run
    to calibrate them. Returns ``forward(inputs, data_samples)``."""

    def whole(inputs, data_samples):
        return model(inputs, data_samples, mode='tensor')

    if not shortest:
        return whole
    wanted = {id(m) for m in bns}

    def covered(*parts) -> bool:
        inside = {id(m) for part in parts for m in part.modules()}
        return wanted <= inside

    backbone = getattr(model, 'backbone', None)
    if isinstance(backbone, nn.Module) and covered(backbone):
        return lambda inputs, data_samples: backbone(inputs)
    neck = getattr(model, 'neck', None)
    if isinstance(backbone, nn.Module) and isinstance(neck, nn.Module) and \
            hasattr(model, 'extract_feat') and covered(backbone, neck):
        return lambda inputs, data_samples: model.extract_feat(inputs)
    return whole


@torch.no_grad()
def calibrate_bn(model: nn.Module,
                 batches: Iterable[dict],
                 num_batches: int = 50,
                 min_batch_size: int = 2,
                 whole_model: bool = False) -> int:
    """Reset every BatchNorm's running statistics and recompute them for the
    current subnet: forward ``num_batches`` training batches without
    gradients, with the BatchNorms in train mode and everything else in eval
    mode (no dropout or drop path; BNs that ``model.train()`` leaves in eval
    mode, as a frozen backbone's with ``norm_eval``, keep their statistics),
    with ``momentum=None`` so that the running statistics are the
    cumulative average of the batch statistics (docs/tricks.md, T3.2;
    DetNAS, SPOS). In a distributed run the statistics are then averaged
    over the ranks. Momentum and train / eval mode are restored.

    Only the part of the model that reaches the last BatchNorm runs
    (:func:`bn_forward`: e.g. the backbone alone when the neck and head have
    none), which gives the same statistics.

    A batch of fewer than ``min_batch_size`` images (a dataloader's
    remainder) is skipped: BatchNorm in train mode cannot take one image
    whose feature maps are 1 x 1, and a 1-2 image batch gives poor
    statistics anyway.

    Args:
        model (nn.Module): An mmdet / mmseg model (DDP wrappers are
            unwrapped) whose ``data_preprocessor`` prepares the batches.
        batches (Iterable[dict]): Data batches as a dataloader yields them.
        num_batches (int): Batches to use. Defaults to 50.
        min_batch_size (int): Smaller batches are skipped. Defaults to 2.
        whole_model (bool): Forward the whole model even where a prefix
            reaches every BatchNorm (for comparisons). Defaults to False.

    Returns:
        int: The number of batches used.

    Example:
        >>> used = calibrate_bn(model, runner.train_dataloader, 20)
    """
    if num_batches < 1:
        raise ValueError(f'num_batches={num_batches} must be >= 1')
    if is_model_wrapper(model):
        model = model.module
    was_training = model.training
    # the BNs that train: a frozen backbone's (mmdet's norm_eval, which
    # model.train() leaves in eval mode) keep their statistics
    model.train()
    bns = [
        m for m in model.modules()
        if isinstance(m, _BatchNorm) and m.track_running_stats and m.training
    ]
    if not bns:
        model.train(was_training)
        return 0
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    forward = bn_forward(model, bns, shortest=not whole_model)
    used = 0
    # only the BNs in train mode: dropout and drop path stay off
    model.eval()
    for m in bns:
        m.train()
    try:
        for data in batches:
            if used >= num_batches:
                break
            data = model.data_preprocessor(data, True)
            if _batch_size(data) < min_batch_size:
                print_log(
                    f'BN calibration skipped a batch of '
                    f'{_batch_size(data)} image(s) (< {min_batch_size})',
                    logger='current')
                continue
            forward(data['inputs'], data['data_samples'])
            used += 1
    finally:
        for m, momentum in zip(bns, momenta):
            m.momentum = momentum
        model.train(was_training)
    if used == 0:
        raise RuntimeError('BN calibration saw no batch of at least '
                           f'{min_batch_size} images')
    if get_world_size() > 1:
        for m in bns:
            all_reduce(m.running_mean, op='mean')
            all_reduce(m.running_var, op='mean')
    return used
