"""HessianEigenvalueHook (docs/tricks.md, T2.6): power iteration on
Hessian-vector products finds the closed-form eigenvalue of a quadratic
toy; the hook logs it, warns when it grows, and keeps its history through
checkpoints."""
import pytest
import torch
from mmengine.model import BaseModel

from mmnas_tricks.engine.hooks import (DartsHook, HessianEigenvalueHook,
                                       dominant_eigenvalue)
from mmnas_tricks.models.mutables import named_mutables, set_mode
from .toy import Toy, mock_runner, scalar

#: the Hessian's eigenvalues (distinct, the largest well apart)
EIGENVALUES = torch.tensor([5.0, 2.0, 1.5, 1.0, 0.5, 0.25, 0.1])


def _spd():
    q, _ = torch.linalg.qr(
        torch.randn(7, 7, generator=torch.Generator().manual_seed(3)))
    return q @ torch.diag(EIGENVALUES) @ q.T


class Quadratic(BaseModel):
    """loss = 1/2 a^T A a + b^T a, ``a`` the alphas of two mutables (3 + 4
    choices) in module order: its Hessian in alpha is ``A``."""

    def __init__(self):
        super().__init__()
        self.net = Toy()
        self.register_buffer('A', _spd())
        self.register_buffer('b', torch.linspace(-1, 1, 7))

    def forward(self, inputs, data_samples=None, mode='tensor'):
        a = torch.cat([
            m.arch_alpha for n, m in named_mutables(self).items()
            if n != 'net.down'
        ])
        loss = 0.5 * a @ self.A @ a + self.b @ a + 0 * inputs.sum()
        return dict(loss=loss) if mode == 'loss' else loss


def test_power_iteration_finds_the_closed_form_eigenvalue():
    model = Quadratic()
    set_mode(model, 'differentiable')
    alphas = [model.net.a.arch_alpha, model.net.b.arch_alpha]
    batch = dict(inputs=torch.zeros(1, 4, 8, 8))
    got = dominant_eigenvalue(model, [batch], alphas, iterations=60)
    assert got == pytest.approx(float(EIGENVALUES.max()), rel=1e-4)
    # the same wherever alpha is: the Hessian of a quadratic is constant
    with torch.no_grad():
        model.net.a.arch_alpha.add_(1.0)
    again = dominant_eigenvalue(model, [batch, batch], alphas, iterations=60)
    assert again == pytest.approx(got, rel=1e-4)


def test_the_hook_logs_warns_on_growth_and_checkpoints(monkeypatch):
    model = Quadratic()
    set_mode(model, 'differentiable')
    darts = DartsHook(arch_dataloader={}, include='net.[ab]')
    hook = HessianEigenvalueHook(
        interval=2, iterations=60, window=2, delta=2, ratio=1.3)
    runner = mock_runner(model, [darts, hook], epochs=12, name='hessian')
    hook.before_train(runner)
    hook._batches = [dict(inputs=torch.zeros(1, 4, 8, 8))]
    flags = [m.arch_alpha.requires_grad for m in (model.net.a, model.net.b)]
    model.train()
    runner.epoch = 0
    hook.after_train_epoch(runner)  # epoch 1: not a measurement epoch
    assert hook.history == []
    runner.epoch = 1
    hook.after_train_epoch(runner)
    assert hook.history[0]['epoch'] == 2
    assert hook.history[0]['value'] == pytest.approx(5.0, rel=1e-4)
    assert scalar(runner, 'train/alpha_hessian_lambda_max') == \
        pytest.approx(5.0, rel=1e-4)
    assert model.training  # restored
    assert [m.arch_alpha.requires_grad
            for m in (model.net.a, model.net.b)] == flags
    # a sharpening loss: the local average grows past 1.3x -> a warning
    for epoch, value in ((4, 5.0), (6, 5.2), (8, 9.0), (10, 12.0)):
        hook.record(runner, epoch, value)
    assert [a['epoch'] for a in hook.alarms] == [8, 10]
    assert hook.alarms[0]['local_average'] == pytest.approx(7.1)
    assert hook.alarms[0]['earlier'] == pytest.approx(5.0)
    checkpoint = {}
    hook.before_save_checkpoint(runner, checkpoint)
    restored = HessianEigenvalueHook()
    restored.after_load_checkpoint(runner, checkpoint)
    assert restored.history == hook.history
    assert restored.alarms == hook.alarms


def test_arguments_are_checked():
    with pytest.raises(ValueError, match='interval=0 must be >= 1'):
        HessianEigenvalueHook(interval=0)
    with pytest.raises(ValueError, match='ratio=1.0 must be > 1'):
        HessianEigenvalueHook(ratio=1.0)


def test_on_the_darts_fcos_supernet(tiny_digits, tmp_path):
    """On mmdet's FCOS (the digits DARTS supernet): the loss has a second
    derivative in alpha, the measurement leaves weights and BN statistics
    alone; SDARTS-ADV's attack runs on the same model."""
    import math

    from mmengine.runner import Runner

    from mmnas_tricks.engine.hooks import ArchPerturbHook
    from .test_darts_hook import darts_cfg, hook_of
    runner = Runner.from_cfg(
        darts_cfg(tiny_digits, str(tmp_path / 'h'), 'darts_hessian'))
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    darts = hook_of(runner)
    darts.before_run(runner)
    darts.before_train(runner)
    hook = HessianEigenvalueHook(iterations=3)
    runner.register_hook(hook)
    state = {k: v.clone() for k, v in runner.model.state_dict().items()}
    value = hook.measure(runner)
    assert math.isfinite(value) and value != 0.0
    for k, v in runner.model.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert all(p.grad is None for p in runner.model.parameters())
    adv = ArchPerturbHook(mode='adversarial', steps=2, eps_min=0.1)
    runner.register_hook(adv)
    adv.before_train(runner)
    adv.before_train_iter(runner, 0, darts._next_batch())
    mutables = darts.mutables(runner.model)
    assert all(m.weights_overridden for m in mutables.values())
    adv.after_train_iter(runner, 0)
    for k, v in runner.model.state_dict().items():
        assert torch.equal(v, state[k]), k
