"""Helpers for tests of searchable models: demo batches for detectors and
segmentors, and the check that only the chosen candidates got gradients."""
from typing import Dict, List, Optional

import torch
import torch.nn as nn

from mmnas_tricks.models.mutables import (DepthChoice, MBConvChoice, OpChoice,
                                          named_mutables)


def trained_looking(module: nn.Module,
                    seed: int = 0,
                    spread: float = 0.5) -> nn.Module:
    """Fill every floating-point tensor of ``module``'s state with random
    values, as a trained network has (weights and means around 0 within
    ``spread``, variances above 0.5), in place; returns ``module``."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if t.is_floating_point():
                t.copy_(
                    torch.rand(t.shape, generator=g) * spread +
                    (0.5 if 'running_var' in name else -spread / 2))
    return module


def demo_det_batch(model: nn.Module,
                   training: bool,
                   batch: int = 2,
                   size: int = 64,
                   num_classes: int = 10) -> Dict:
    """A preprocessed batch of random images and boxes for an mmdet model."""
    from mmdet.testing import demo_mm_inputs
    packed = demo_mm_inputs(
        batch, [[3, size, size]] * batch,
        num_classes=num_classes,
        with_mask=False)
    return model.data_preprocessor(packed, training)


def demo_seg_batch(model: nn.Module,
                   training: bool,
                   batch: int = 2,
                   size: Optional[int] = None,
                   num_classes: int = 11) -> Dict:
    """A preprocessed batch of random images and label maps for an mmseg
    model, at the preprocessor's fixed size if it has one (padding would
    fill the labels with 255, which mmseg's class-weighted loss indexes)."""
    if size is None:
        fixed = getattr(model.data_preprocessor, 'size', None)
        size = fixed[0] if fixed else 64
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append(
            torch.randint(0, 256, (3, size, size), dtype=torch.uint8))
        sample = SegDataSample(
            metainfo=dict(
                img_shape=(size, size),
                ori_shape=(size, size),
                pad_shape=(size, size),
                scale_factor=(1.0, 1.0),
                flip=False))
        sample.gt_sem_seg = PixelData(
            data=torch.randint(0, num_classes, (1, size, size)))
        samples.append(sample)
    return model.data_preprocessor(
        dict(inputs=inputs, data_samples=samples), training)


def _nonzero(params) -> bool:
    return any(p.grad is not None and p.grad.abs().sum() > 0 for p in params)


def unchosen_gradients(model: nn.Module) -> List[str]:
    """Where gradients reached what the current subnet does not use: an op
    choice's other candidates, blocks past a depth choice's depth, the
    weights outside an MBConv choice's kernel / channel slices, and any
    architecture parameter. Empty when single-path training is right."""
    found = []
    for name, m in named_mutables(model).items():
        if m.arch_alpha.grad is not None:
            found.append(f'{name}.arch_alpha')
        if isinstance(m, OpChoice):
            found += [
                f'{name}.candidates.{c}' for c, op in m.candidates.items()
                if c != m.current_choice and _nonzero(op.parameters())
            ]
        elif isinstance(m, DepthChoice):
            found += [
                f'{name}.{i}' for i, b in enumerate(
                    m.blocks[m.current_choice:], start=m.current_choice)
                if _nonzero(b.parameters())
            ]
        elif isinstance(m, MBConvChoice) and m.expand_weight.grad is not None:
            k, e = m.current_choice
            c_in, c_out = m.active_channels()
            hid, s = m.hidden_channels(e, c_in), (m.max_kernel - k) // 2
            outside = [
                g.clone() for g in (m.expand_weight.grad, m.dw_weight.grad,
                                    m.project_weight.grad)
            ]
            outside[0][:hid, :c_in] = 0
            outside[1][:hid, :, s:s + k, s:s + k] = 0
            outside[2][:c_out, :hid] = 0
            if sum(g.abs().sum() for g in outside) > 0:
                found.append(f'{name} (outside its slices)')
    return found
