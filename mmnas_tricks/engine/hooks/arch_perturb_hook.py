"""SDARTS-RS: the weight step sees a randomly perturbed architecture."""
from typing import Optional, Sequence, Union

import torch
from mmengine.hooks import Hook

from mmnas_tricks.registry import HOOKS
from .utils import check_companions, progress, trick_mutables


def project_to_simplex(weights: torch.Tensor,
                       reference: torch.Tensor) -> torch.Tensor:
    """SDARTS's projection: clamp to [0, 1]; a row that became all zero gets
    1 at the argmax of ``reference``; divide by the sum."""
    w = weights.clamp(0.0, 1.0)
    if float(w.sum()) == 0.0:
        w = torch.zeros_like(w)
        w[int(torch.argmax(reference))] = 1.0
    return w / w.sum()


@HOOKS.register_module()
class ArchPerturbHook(Hook):
    """Smooth the DARTS loss landscape by random smoothing of alpha (Chen &
    Hsieh, "Stabilizing Differentiable Architecture Search via
    Perturbation-based Regularization", ICML 2020, SDARTS-RS; docs/tricks.md,
    T2.3).

    For the weight step of every iteration (after the :class:`DartsHook`'s
    architecture step, which stays unperturbed), each differentiable
    mutable mixes its candidates with ``project(softmax(alpha) + U(-eps,
    eps))`` instead of ``softmax(alpha)``; alpha itself is never changed.
    ``eps(e) = eps_min + (eps_max - eps_min) * t / T``, logged as
    ``train/arch_perturb_eps``. The noise depends on ``seed`` and the
    iteration only, so all ranks perturb alike. SDARTS-ADV (a 7-step PGD
    attack on alpha) is not implemented.

    Args:
        eps_max (float): Final radius. Defaults to 0.3 (SDARTS code).
        eps_min (float): Initial radius. Defaults to 0.03.
        by_epoch (bool): Step per epoch (SDARTS). Defaults to True.
        seed (int): Seed of the noise. Defaults to 0.
        include (str | Sequence[str], optional): fnmatch patterns of the
            mutables. Defaults to None (every differentiable one).

    Example:
        >>> custom_hooks = [
        ...     dict(type='mmnas_tricks.DartsHook', arch_dataloader=...),
        ...     dict(type='mmnas_tricks.ArchPerturbHook', eps_max=0.3)]
    """

    priority = 'NORMAL'  # after DartsHook's (ABOVE_NORMAL) arch step
    search_only = True

    def __init__(self,
                 eps_max: float = 0.3,
                 eps_min: float = 0.03,
                 by_epoch: bool = True,
                 seed: int = 0,
                 include: Optional[Union[str, Sequence[str]]] = None) -> None:
        if not 0.0 <= eps_min <= eps_max:
            raise ValueError(f'need 0 <= eps_min <= eps_max, got '
                             f'eps_min={eps_min}, eps_max={eps_max}')
        self.eps_max = float(eps_max)
        self.eps_min = float(eps_min)
        self.by_epoch = by_epoch
        self.seed = int(seed)
        self.include = include
        self._mutables = {}

    def before_train(self, runner) -> None:
        check_companions(self, runner, requires=('DartsHook', ))
        self._mutables = trick_mutables(
            self, runner, self.include, 'differentiable', required=False)

    def eps(self, runner) -> float:
        return self.eps_min + (self.eps_max - self.eps_min) * progress(
            runner, self.by_epoch)

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch=None) -> None:
        eps = self.eps(runner)
        # the differentiable ones now (a sequential search changes them)
        self._mutables = trick_mutables(
            self, runner, self.include, 'differentiable', required=False)
        gen = torch.Generator().manual_seed(self.seed * 1000003 + runner.iter)
        for m in self._mutables.values():
            probs = torch.softmax(m.arch_alpha.detach(), dim=0)
            noise = (torch.rand(probs.shape, generator=gen) * 2 - 1) * eps
            m.override_weights(
                project_to_simplex(probs + noise.to(probs), probs), self)
        runner.message_hub.update_scalar('train/arch_perturb_eps', eps)

    def _clear(self, runner=None, *args, **kwargs) -> None:
        for m in self._mutables.values():
            m.release_weights(self)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        self._clear()

    def before_val_epoch(self, runner) -> None:
        self._clear()

    def after_train(self, runner) -> None:
        self._clear()
