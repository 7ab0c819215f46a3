"""The dominant Hessian eigenvalue of the validation loss w.r.t. alpha: a
logged diagnostic of DARTS collapse."""
import logging
from typing import List, Optional, Sequence

import torch
from mmengine.dist import all_reduce
from mmengine.hooks import Hook
from mmengine.logging import print_log

from mmnas_tricks.registry import HOOKS
from .utils import batch_loss, check_companions, hooks_named, unwrap_model


def hessian_vector_product(model, batches: Sequence[dict],
                           params: List[torch.Tensor],
                           vector: List[torch.Tensor]) -> List[torch.Tensor]:
    """``H v``, ``H`` the Hessian of the mean loss of ``batches`` w.r.t.
    ``params`` (double back-propagation, one batch at a time; averaged over
    ranks)."""
    out = [torch.zeros_like(p) for p in params]
    for data in batches:
        with torch.enable_grad():
            loss = batch_loss(model, data)
            grads = torch.autograd.grad(
                loss, params, create_graph=True, allow_unused=True)
            dot = sum(
                (g * v).sum() for g, v in zip(grads, vector) if g is not None)
            if not torch.is_tensor(dot) or not dot.requires_grad:
                continue  # the loss does not depend on these params
            hv = torch.autograd.grad(dot, params, allow_unused=True)
        for o, h in zip(out, hv):
            if h is not None:
                o += h.detach() / len(batches)
    for o in out:
        all_reduce(o, op='mean')
    return out


def dominant_eigenvalue(model,
                        batches: Sequence[dict],
                        params: List[torch.Tensor],
                        iterations: int = 20,
                        seed: int = 0) -> float:
    """The eigenvalue of largest magnitude of the Hessian of the mean loss
    of ``batches`` w.r.t. ``params``, by power iteration on Hessian-vector
    products from a seeded random start (the Rayleigh quotient of the last
    iterate)."""
    gen = torch.Generator().manual_seed(seed)
    vector = [torch.randn(p.shape, generator=gen).to(p) for p in params]
    value = 0.0
    for _ in range(iterations):
        norm = torch.sqrt(sum((v * v).sum() for v in vector))
        if float(norm) == 0.0:
            return 0.0
        vector = [v / norm for v in vector]
        hv = hessian_vector_product(model, batches, params, vector)
        value = float(sum((h * v).sum() for h, v in zip(hv, vector)))
        vector = hv
    return value


@HOOKS.register_module()
class HessianEigenvalueHook(Hook):
    """Log the dominant eigenvalue of the Hessian of the validation loss
    with respect to alpha every ``interval`` epochs, and warn when it grows
    (Zela et al., "Understanding and Robustifying Differentiable
    Architecture Search", ICLR 2020; docs/tricks.md, T2.6). A sharp
    validation loss in alpha is what comes before DARTS collapses onto
    parameter-free ops.

    The eigenvalue is computed by power iteration (``iterations`` steps) on
    Hessian-vector products of the mean loss over ``num_batches`` batches
    of the architecture's held-out split (the :class:`DartsHook`'s
    ``arch_dataloader`` unless ``dataloader`` is given), drawn once and kept
    so that every measurement uses the same ones, with the model in eval
    mode (BatchNorm statistics untouched); alpha of every mutable the
    DartsHook searches is the variable. Logged as
    ``train/alpha_hessian_lambda_max``; the values stay on the hook
    (:attr:`history`) and go into checkpoints. Like RobustDARTS's early
    stopping, it keeps the local average of the last ``window`` values and
    warns (:attr:`alarms`) when it exceeds ``ratio`` times the local
    average ``delta`` measurements earlier. It only warns: stopping or
    regularising more is the user's decision.

    Args:
        interval (int): Epochs between measurements. Defaults to 2.
        num_batches (int): Held-out batches of the loss. Defaults to 1.
        iterations (int): Power-iteration steps. Defaults to 20.
        dataloader (dict, optional): The held-out data. Defaults to None
            (the DartsHook's ``arch_dataloader``).
        window (int): Values in the local average. Defaults to 5.
        delta (int): Measurements back to compare with. Defaults to 4.
        ratio (float): Growth that warns. Defaults to 1.3.
        seed (int): Seed of the power iteration's start. Defaults to 0.

    Example:
        >>> custom_hooks = [
        ...     dict(type='mmnas_tricks.DartsHook', arch_dataloader=...),
        ...     dict(type='mmnas_tricks.HessianEigenvalueHook', interval=2)]
    """

    priority = 'LOW'
    search_only = True

    def __init__(self,
                 interval: int = 2,
                 num_batches: int = 1,
                 iterations: int = 20,
                 dataloader: Optional[dict] = None,
                 window: int = 5,
                 delta: int = 4,
                 ratio: float = 1.3,
                 seed: int = 0) -> None:
        for name, value in (('interval', interval), ('num_batches',
                                                     num_batches),
                            ('iterations', iterations), ('window', window),
                            ('delta', delta)):
            if int(value) < 1:
                raise ValueError(f'{name}={value} must be >= 1')
        if ratio <= 1.0:
            raise ValueError(f'ratio={ratio} must be > 1')
        self.interval = int(interval)
        self.num_batches = int(num_batches)
        self.iterations = int(iterations)
        self.dataloader_cfg = dataloader
        self.window = int(window)
        self.delta = int(delta)
        self.ratio = float(ratio)
        self.seed = int(seed)
        #: ``dict(epoch, value)`` of every measurement
        self.history: List[dict] = []
        #: ``dict(epoch, local_average, earlier)`` of every warning
        self.alarms: List[dict] = []
        self._batches: Optional[List[dict]] = None

    def before_train(self, runner) -> None:
        check_companions(self, runner, requires=('DartsHook', ))

    def _darts(self, runner):
        return hooks_named(runner, 'DartsHook')[0]

    def batches(self, runner) -> List[dict]:
        """The held-out batches every measurement uses (drawn once)."""
        if self._batches is None:
            from mmengine.runner import Runner
            cfg = self.dataloader_cfg or self._darts(
                runner).arch_dataloader_cfg
            loader = Runner.build_dataloader(cfg, seed=self.seed)
            self._batches = []
            for data in loader:
                self._batches.append(data)
                if len(self._batches) == self.num_batches:
                    break
        return self._batches

    def measure(self, runner) -> float:
        """The dominant eigenvalue now."""
        model = unwrap_model(runner)
        alphas = [
            m.arch_alpha for m in self._darts(runner).mutables(model).values()
        ]
        was_training = model.training
        flags = [a.requires_grad for a in alphas]
        model.eval()
        for a in alphas:
            a.requires_grad_(True)
        try:
            return dominant_eigenvalue(model, self.batches(runner), alphas,
                                       self.iterations, self.seed)
        finally:
            for a, flag in zip(alphas, flags):
                a.requires_grad_(flag)
            model.train(was_training)

    def local_average(self, end: int) -> float:
        """Mean of the ``window`` values up to measurement ``end``."""
        values = [
            h['value']
            for h in self.history[max(0, end - self.window + 1):end + 1]
        ]
        return sum(values) / len(values)

    def record(self, runner, epoch: int, value: float) -> None:
        """Keep ``value``, log it, warn when the local average grew past
        ``ratio``."""
        self.history.append(dict(epoch=epoch, value=value))
        runner.message_hub.update_scalar('train/alpha_hessian_lambda_max',
                                         value)
        now = len(self.history) - 1
        if now < self.delta:
            return
        current = self.local_average(now)
        earlier = self.local_average(now - self.delta)
        if earlier > 0 and current / earlier > self.ratio:
            self.alarms.append(
                dict(epoch=epoch, local_average=current, earlier=earlier))
            print_log(
                f'HessianEigenvalueHook: the dominant eigenvalue of the '
                f'validation loss in alpha grew {current / earlier:.2f}x '
                f'over {self.delta} measurements (local average '
                f'{earlier:.4g} -> {current:.4g}, epoch {epoch}); DARTS may '
                'be collapsing (RobustDARTS stops or raises the '
                'regularisation here)',
                logger='current',
                level=logging.WARNING)

    def after_train_epoch(self, runner) -> None:
        epoch = runner.epoch + 1  # finished epochs, as the checkpoints
        if epoch % self.interval == 0:
            self.record(runner, epoch, self.measure(runner))

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['hessian_eigenvalues'] = dict(
            history=list(self.history), alarms=list(self.alarms))

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get('hessian_eigenvalues')
        if state is not None:
            self.history = list(state['history'])
            self.alarms = list(state['alarms'])
