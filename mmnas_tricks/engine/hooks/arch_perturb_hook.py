"""SDARTS (RS and ADV): the weight step sees a perturbed architecture."""
from typing import Dict, Optional, Sequence, Union

import torch
from mmengine.dist import all_reduce
from mmengine.hooks import Hook

from mmnas_tricks.registry import HOOKS
from .utils import (batch_loss, check_companions, progress, trick_mutables,
                    unwrap_model)

#: ``mode``: random smoothing (SDARTS-RS) or a PGD attack (SDARTS-ADV)
MODES = ('random', 'adversarial')


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
    """Smooth the DARTS loss landscape by perturbing alpha for the weight
    step (Chen & Hsieh, "Stabilizing Differentiable Architecture Search via
    Perturbation-based Regularization", ICML 2020; docs/tricks.md, T2.3).

    For the weight step of every iteration (after the :class:`DartsHook`'s
    architecture step, which stays unperturbed), each differentiable
    mutable mixes its candidates with perturbed probabilities instead of
    ``softmax(alpha)``; alpha itself is never changed. The perturbation
    lies in the L-inf ball of radius ``eps`` around ``softmax(alpha)``,
    projected back onto the simplex (:func:`project_to_simplex`):

    - ``mode='random'`` (SDARTS-RS): ``U(-eps, eps)`` noise;
    - ``mode='adversarial'`` (SDARTS-ADV): a PGD attack on the iteration's
      training batch, with the model in eval mode (BatchNorm statistics
      untouched) and the weights getting no gradient: a random start, then
      ``steps`` sign-gradient ascent steps of ``2 * eps / steps`` on the
      loss, each clipped to the ball and projected; kept only when it
      raises the loss above the unperturbed one (else the unperturbed
      probabilities are used). Costs ``steps + 2`` extra forward passes and
      ``steps`` backward passes per iteration. The loss gradients are
      averaged over ranks, so all ranks attack alike.

    ``eps(e) = eps_min + (eps_max - eps_min) * t / T``, logged as
    ``train/arch_perturb_eps``. The random draws depend on ``seed`` and the
    iteration only.

    Args:
        eps_max (float): Final radius. Defaults to 0.3 (SDARTS code).
        eps_min (float): Initial radius. Defaults to 0.03.
        by_epoch (bool): Step per epoch (SDARTS). Defaults to True.
        seed (int): Seed of the noise. Defaults to 0.
        include (str | Sequence[str], optional): fnmatch patterns of the
            mutables. Defaults to None (every differentiable one).
        mode (str): ``'random'`` (SDARTS-RS) or ``'adversarial'``
            (SDARTS-ADV). Defaults to ``'random'``.
        steps (int): PGD steps of the adversarial mode. Defaults to 7
            (SDARTS code).

    Example:
        >>> custom_hooks = [
        ...     dict(type='mmnas_tricks.DartsHook', arch_dataloader=...),
        ...     dict(type='mmnas_tricks.ArchPerturbHook', eps_max=0.3,
        ...          mode='adversarial')]
    """

    priority = 'NORMAL'  # after DartsHook's (ABOVE_NORMAL) arch step
    search_only = True

    def __init__(self,
                 eps_max: float = 0.3,
                 eps_min: float = 0.03,
                 by_epoch: bool = True,
                 seed: int = 0,
                 include: Optional[Union[str, Sequence[str]]] = None,
                 mode: str = 'random',
                 steps: int = 7) -> None:
        if not 0.0 <= eps_min <= eps_max:
            raise ValueError(f'need 0 <= eps_min <= eps_max, got '
                             f'eps_min={eps_min}, eps_max={eps_max}')
        if mode not in MODES:
            raise ValueError(f'mode={mode!r} is not one of {list(MODES)}')
        if int(steps) < 1:
            raise ValueError(f'steps={steps} must be >= 1')
        self.mode = mode
        self.steps = int(steps)
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
        clean = {
            n: torch.softmax(m.arch_alpha.detach(), dim=0)
            for n, m in self._mutables.items()
        }
        perturbed = self._random(clean, eps, gen)
        if self.mode == 'adversarial' and self._mutables:
            if data_batch is None:
                raise ValueError('ArchPerturbHook(mode=\'adversarial\') '
                                 'attacks the training batch; got none')
            perturbed = self.attack(
                unwrap_model(runner), data_batch, clean, perturbed, eps)
        for n, m in self._mutables.items():
            m.override_weights(perturbed[n], self)
        runner.message_hub.update_scalar('train/arch_perturb_eps', eps)

    @staticmethod
    def _random(clean: Dict[str, torch.Tensor], eps: float,
                gen: torch.Generator) -> Dict[str, torch.Tensor]:
        out = {}
        for n, probs in clean.items():
            noise = (torch.rand(probs.shape, generator=gen) * 2 - 1) * eps
            out[n] = project_to_simplex(probs + noise.to(probs), probs)
        return out

    def _loss_at(self, model, data_batch,
                 weights: Dict[str, torch.Tensor]) -> torch.Tensor:
        for n, m in self._mutables.items():
            m.override_weights(weights[n], self)
        return batch_loss(model, data_batch)

    @staticmethod
    def _mean(value: torch.Tensor) -> float:
        value = value.detach().clone().reshape(1)
        all_reduce(value, op='mean')
        return float(value)

    def attack(self, model, data_batch, clean: Dict[str, torch.Tensor],
               start: Dict[str, torch.Tensor],
               eps: float) -> Dict[str, torch.Tensor]:
        """SDARTS-ADV's PGD attack on the probabilities, from ``start``
        (the random start) within ``eps`` of ``clean``; returns the
        perturbed probabilities, or ``clean`` where the attack did not
        raise the loss."""
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                before = self._mean(self._loss_at(model, data_batch, clean))
            current = dict(start)
            names = list(current)
            for _ in range(self.steps):
                leaves = {
                    n: current[n].detach().requires_grad_(True)
                    for n in names
                }
                with torch.enable_grad():
                    loss = self._loss_at(model, data_batch, leaves)
                    grads = torch.autograd.grad(
                        loss, [leaves[n] for n in names], allow_unused=True)
                for n, g in zip(names, grads):
                    g = torch.zeros_like(leaves[n]) if g is None else g
                    all_reduce(g, op='mean')
                    step = leaves[n].detach() + (2 * eps /
                                                 self.steps) * g.sign()
                    step = clean[n] + (step - clean[n]).clamp(-eps, eps)
                    current[n] = project_to_simplex(step, clean[n])
            with torch.no_grad():
                after = self._mean(self._loss_at(model, data_batch, current))
        finally:
            for m in self._mutables.values():
                m.release_weights(self)
            model.train(was_training)
        return current if after > before else dict(clean)

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
