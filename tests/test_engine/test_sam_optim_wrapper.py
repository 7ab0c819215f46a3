"""SAMOptimWrapper (docs/tricks.md, T2.4): two gradients of one batch, the base
step with the second, weights back before it, BN statistics from one pass."""
import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel

from mmnas_tricks.engine.optim import SAMOptimWrapper


class Toy(BaseModel):

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.bn = nn.BatchNorm1d(4)
        self.out = nn.Linear(4, 1)
        self.calls = 0

    def forward(self, inputs, targets=None, mode='loss'):
        self.calls += 1
        y = self.out(torch.tanh(self.bn(self.fc(inputs)))).squeeze(1)
        return dict(loss=((y - targets)**2).mean())


def batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    return dict(
        inputs=torch.randn(8, 3, generator=g),
        targets=torch.randn(8, generator=g))


@pytest.mark.parametrize('adaptive', [False, True])
def test_sam_update_equals_the_manual_two_step_computation(adaptive):
    torch.manual_seed(0)
    model = Toy()
    ref = Toy()
    ref.load_state_dict(model.state_dict())
    rho, lr = 0.05, 0.1
    wrapper = SAMOptimWrapper(
        torch.optim.SGD(model.parameters(), lr=lr), rho=rho, adaptive=adaptive)
    data = batch()
    model.train_step(data, wrapper)
    assert model.calls == 2 and wrapper.forward_passes == 2

    # by hand on the copy
    ref.train()
    params = list(ref.parameters())
    w0 = [p.detach().clone() for p in params]
    bn_after_first = None
    loss = ref(**data)['loss']
    grads = torch.autograd.grad(loss, params)
    bn_after_first = ref.bn.running_mean.clone()
    if adaptive:
        norm = torch.norm(
            torch.stack([(w.abs() * g).norm() for w, g in zip(w0, grads)]))
        eps = [w.pow(2) * g * rho / (norm + 1e-12) for w, g in zip(w0, grads)]
    else:
        norm = torch.norm(torch.stack([g.norm() for g in grads]))
        eps = [g * rho / (norm + 1e-12) for g in grads]
        # the perturbation has length rho
        assert float(torch.norm(torch.stack([e.norm() for e in eps]))) == \
            pytest.approx(rho, rel=1e-5)
    with torch.no_grad():
        for p, e in zip(params, eps):
            p.add_(e)
    grads2 = torch.autograd.grad(ref(**data)['loss'], params)
    for p, w, g in zip(model.parameters(), w0, grads2):
        assert torch.allclose(p.detach(), w - lr * g, atol=1e-6)
    # BN statistics: those of the first pass only
    assert torch.equal(model.bn.running_mean, bn_after_first)
    assert int(model.bn.num_batches_tracked) == 1


def test_sam_needs_the_forward_inside_optim_context_and_valid_arguments():
    model = Toy()
    wrapper = SAMOptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    loss = model(**batch())['loss']
    with pytest.raises(RuntimeError, match='inside optim_context'):
        wrapper.update_params(loss)
    with pytest.raises(ValueError, match='rho=0'):
        SAMOptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1), rho=0)
    with pytest.raises(ValueError, match='accumulative_counts=2'):
        SAMOptimWrapper(
            torch.optim.SGD(model.parameters(), lr=0.1), accumulative_counts=2)
