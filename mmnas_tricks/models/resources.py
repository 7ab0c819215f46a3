"""FLOPs and parameters of a subnet of a whole model (backbone + neck +
head), counted by mmengine's analysis tools at a given input size."""
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.model import is_model_wrapper

from .mutables import (Subnet, get_subnet, named_mutables, set_subnet,
                       subnet_param_count)


def subnet_resources(model: nn.Module,
                     subnet: Optional[Subnet] = None,
                     input_shape: Sequence[int] = (3, 128, 128),
                     inputs: Optional[Union[torch.Tensor, Tuple]] = None
                     ) -> Dict[str, int]:
    """FLOPs (multiply-adds, as mmengine's ``FlopAnalyzer`` counts them) and
    parameters of ``subnet`` (default: the current choices).

    The supernet is not copied: the subnet is set, every mutable that is not
    fixed runs in ``sampled`` mode (only the chosen candidates are traced),
    and choices, modes and train/eval state are restored afterwards.

    Args:
        model (nn.Module): The supernet, e.g. an mmdet detector (its
            ``forward(inputs)`` runs backbone, neck and head in ``tensor``
            mode).
        subnet (dict, optional): The subnet. Defaults to None.
        input_shape (Sequence[int]): (C, H, W) of one input image when
            ``inputs`` is None. Defaults to (3, 128, 128).
        inputs (Tensor | tuple, optional): Explicit forward arguments.
            Defaults to None.

    Returns:
        dict: ``flops`` and ``params`` (ints).
    """
    from mmengine.analysis import FlopAnalyzer
    if is_model_wrapper(model):
        model = model.module
    if inputs is None:
        param = next(model.parameters(), None)
        device = param.device if param is not None else 'cpu'
        inputs = (torch.zeros(1, *input_shape, device=device), )
    elif isinstance(inputs, torch.Tensor):
        inputs = (inputs, )
    mutables = named_mutables(model)
    previous = get_subnet(model)
    modes = {n: m.mode for n, m in mutables.items()}
    was_training = model.training
    try:
        if subnet is not None:
            set_subnet(model, subnet)
        for m in mutables.values():
            if m.mode != 'fixed':
                m.set_mode('sampled')
        model.eval()
        traced = model
        if hasattr(model, 'rpn_head') and len(inputs) == 1:
            traced = _WithImageShape(model)
        with torch.no_grad():
            analyzer = FlopAnalyzer(traced, inputs)
            analyzer.unsupported_ops_warnings(False)
            analyzer.uncalled_modules_warnings(False)
            flops = int(analyzer.total())
        params = subnet_param_count(model)
    finally:
        set_subnet(model, previous)
        for n, m in mutables.items():
            m.set_mode(modes[n])
        model.train(was_training)
    return dict(flops=flops, params=params)


class _WithImageShape(nn.Module):
    """A two-stage detector's tensor mode predicts proposals, which needs
    each image's shape: traced with the data samples bound (as mmdet's
    get_flops does), since the tracer takes tensors only."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, inputs: torch.Tensor):
        from mmdet.structures import DetDataSample
        h, w = inputs.shape[-2:]
        samples = [DetDataSample(metainfo=dict(
            img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
            batch_input_shape=(h, w), scale_factor=(1.0, 1.0)))
            for _ in range(inputs.shape[0])]
        return self.detector(inputs, samples, mode='tensor')

