"""Sharpness-aware minimisation as an mmengine optimizer wrapper."""
from contextlib import contextmanager
from typing import Dict, List, Optional

import torch
import torch.nn as nn
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper
from torch.nn.modules.batchnorm import _BatchNorm

from mmnas_tricks.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class SAMOptimWrapper(OptimWrapper):
    """SAM (Foret et al., "Sharpness-Aware Minimization for Efficiently
    Improving Generalization", ICLR 2021; docs/tricks.md, T2.4), ASAM with
    ``adaptive=True`` (Kwon et al., ICML 2021).

    Each update takes two gradients of the same batch: ``g`` at ``w``, then
    ``g_sam`` at ``w + e`` with ``e = rho * g / ||g||`` (the global norm over
    every parameter of the optimizer; ASAM: ``e = rho * w^2 g / ||w g||``);
    the weights go back to ``w`` and the base optimizer steps with
    ``g_sam`` (momentum, weight decay and ``clip_grad`` as configured).
    The second forward replays the model call recorded inside
    :meth:`optim_context` (mmengine's ``train_step`` runs the forward
    there), so the detector stays a plain mmdet model. BatchNorm running
    statistics are updated by the first pass only. Only the optimizer's
    parameters are perturbed: a :class:`DartsHook`'s alpha (not in the
    optimizer) never is. Under DDP both backward passes synchronise
    (SAM of the global batch).

    Args:
        optimizer: The base optimizer (built by mmengine).
        rho (float): Radius of the perturbation. Defaults to 0.05.
        adaptive (bool): ASAM. Defaults to False.
        **kwargs: ``OptimWrapper`` arguments (``clip_grad``);
            ``accumulative_counts`` must stay 1.

    Example:
        >>> optim_wrapper = dict(
        ...     type='mmnas_tricks.SAMOptimWrapper', rho=0.05,
        ...     optimizer=dict(type='SGD', lr=0.01, momentum=0.9))
    """

    def __init__(self,
                 optimizer,
                 rho: float = 0.05,
                 adaptive: bool = False,
                 **kwargs) -> None:
        if kwargs.get('accumulative_counts', 1) != 1:
            raise ValueError('SAMOptimWrapper takes two gradients of one '
                             'batch; accumulative_counts='
                             f'{kwargs["accumulative_counts"]} is not '
                             'supported (use 1)')
        if rho <= 0:
            raise ValueError(f'rho={rho} must be > 0')
        super().__init__(optimizer, **kwargs)
        self.rho = float(rho)
        self.adaptive = adaptive
        self._call = None
        self.forward_passes = 0  # counted per update, for tests and logs

    @contextmanager
    def optim_context(self, model: nn.Module):
        calls = []
        handle = model.register_forward_pre_hook(
            lambda module, args, kwargs: calls.append((args, kwargs)),
            with_kwargs=True)
        try:
            with super().optim_context(model):
                yield
        finally:
            handle.remove()
        self._call = (model, calls[-1]) if calls else None

    def _params(self) -> List[torch.Tensor]:
        return [
            p for g in self.optimizer.param_groups for p in g['params']
            if p.grad is not None
        ]

    @torch.no_grad()
    def _perturbation(self, params) -> List[torch.Tensor]:
        if self.adaptive:
            norm = torch.norm(
                torch.stack([(p.abs() * p.grad).norm(2) for p in params]), 2)
            scale = self.rho / (norm + 1e-12)
            return [p.pow(2) * p.grad * scale for p in params]
        norm = torch.norm(torch.stack([p.grad.norm(2) for p in params]), 2)
        scale = self.rho / (norm + 1e-12)
        return [p.grad * scale for p in params]

    @staticmethod
    def _bn_buffers(model: nn.Module) -> Dict[str, torch.Tensor]:
        return {
            f'{name}.{b}': buf.clone()
            for name, m in model.named_modules() if isinstance(m, _BatchNorm)
            for b, buf in m.named_buffers(recurse=False)
        }

    def update_params(self,
                      loss: torch.Tensor,
                      step_kwargs: Optional[Dict] = None,
                      zero_kwargs: Optional[Dict] = None) -> None:
        if self._call is None:
            raise RuntimeError(
                'SAMOptimWrapper.update_params needs the forward pass run '
                'inside optim_context (as mmengine\'s BaseModel.train_step '
                'does) to replay it at the perturbed weights')
        model, (args, kwargs) = self._call
        self._call = None
        inner = model.module if is_model_wrapper(model) else model
        step_kwargs = step_kwargs or {}
        zero_kwargs = zero_kwargs or {}

        self.backward(self.scale_loss(loss))
        params = self._params()
        eps = self._perturbation(params)
        with torch.no_grad():
            for p, e in zip(params, eps):
                p.add_(e)
        self.optimizer.zero_grad(set_to_none=True)
        saved = self._bn_buffers(inner)
        try:
            with super().optim_context(model):
                losses = model(*args, **kwargs)
            loss2, _ = inner.parse_losses(losses)
            loss2.backward()  # (not counted as another update)
        finally:
            with torch.no_grad():
                for p, e in zip(params, eps):
                    p.sub_(e)
                buffers = dict(inner.named_buffers())
                for name, value in saved.items():
                    buffers[name].copy_(value)
        self.forward_passes = 2
        self.step(**step_kwargs)
        self.zero_grad(**zero_kwargs)
