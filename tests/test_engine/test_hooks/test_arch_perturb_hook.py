"""ArchPerturbHook (SDARTS-RS, docs/tricks.md, T2.3) on a toy supernet."""
import pytest
import torch

from mmnas_tricks.engine.hooks import (ArchPerturbHook, DartsHook,
                                       project_to_simplex)
from mmnas_tricks.models.mutables import set_mode
from .toy import Toy, mock_runner, scalar


# -- T2.3 SDARTS-RS -----------------------------------------------------------
def test_sdarts_perturbation_stays_on_the_simplex_within_eps():
    model = Toy()
    set_mode(model, 'differentiable')
    with torch.no_grad():
        model.a.arch_alpha.copy_(torch.tensor([2.0, 0.0, -1.0]))
    darts = DartsHook(arch_dataloader={})
    hook = ArchPerturbHook(eps_max=0.3, eps_min=0.03, seed=4)
    runner = mock_runner(model, [darts, hook], epochs=5, name='sdarts')
    hook.before_train(runner)
    alpha = {
        n: m.arch_alpha.detach().clone()
        for n, m in (('a', model.a), ('b', model.b), ('down', model.down))
    }
    eps_seen = []
    for e in range(5):
        runner.epoch, runner.iter = e, e * 5
        hook.before_train_iter(runner, 0)
        eps = scalar(runner, 'train/arch_perturb_eps')
        eps_seen.append(eps)
        for m in (model.a, model.b, model.down):
            w = m.arch_weights()
            assert float(w.sum()) == pytest.approx(1.0, abs=1e-6)
            assert float(w.min()) >= 0
            clean = torch.softmax(m.arch_alpha.detach(), 0)
            # clamping and renormalising can move a weight a little further
            # than the noise; SDARTS's bound is eps + the projection's shift
            assert not torch.allclose(w, clean)
            assert float((w - clean).abs().max()) <= 2 * eps + 1e-6
        hook.after_train_iter(runner, 0)
        for m in (model.a, model.b, model.down):
            assert not m.weights_overridden
            assert torch.equal(m.arch_weights(),
                               torch.softmax(m.arch_alpha, 0))
    assert eps_seen == pytest.approx([0.03 + 0.27 * e / 5 for e in range(5)])
    for n, m in (('a', model.a), ('b', model.b), ('down', model.down)):
        assert torch.equal(m.arch_alpha.detach(), alpha[n])  # never touched
    # projection: an all-negative row goes to the reference's argmax
    out = project_to_simplex(
        torch.tensor([-0.1, -0.2, -0.3]), torch.tensor([0.1, 0.5, 0.4]))
    assert torch.equal(out, torch.tensor([0.0, 1.0, 0.0]))


# -- T2.3 SDARTS-ADV ----------------------------------------------------------
def test_sdarts_adv_raises_the_loss_within_eps_and_restores_alpha():
    from mmnas_tricks.engine.hooks.utils import batch_loss
    from .toy import LossToy, toy_batch
    torch.manual_seed(0)
    model = LossToy()
    set_mode(model, 'differentiable')
    mutables = (model.net.a, model.net.b, model.net.down)
    darts = DartsHook(arch_dataloader={})
    hook = ArchPerturbHook(
        eps_max=0.3, eps_min=0.3, mode='adversarial', steps=7, seed=0)
    runner = mock_runner(model, [darts, hook], epochs=2, name='sdarts_adv')
    hook.before_train(runner)
    alpha = [m.arch_alpha.detach().clone() for m in mutables]
    bn = {k: v.clone() for k, v in model.bn.state_dict().items()}
    batch = toy_batch()
    model.train()
    with torch.no_grad():
        model.eval()
        clean_loss = float(batch_loss(model, batch))
        model.train()
    hook.before_train_iter(runner, 0, batch)
    assert model.training  # back in train mode for the weight step
    for m in mutables:
        w = m.arch_weights()
        clean = torch.softmax(m.arch_alpha.detach(), 0)
        assert float(w.sum()) == pytest.approx(1.0, abs=1e-6)
        assert float(w.min()) >= 0
        # each PGD step is clipped to the eps ball, then projected as RS
        assert float((w - clean).abs().max()) <= 2 * 0.3 + 1e-6
        assert not w.requires_grad
    with torch.no_grad():
        model.eval()
        attacked = float(batch_loss(model, batch))
        model.train()
    assert attacked > clean_loss  # an attack only where it raises the loss
    # nothing but the mixing weights changed: alpha, BN statistics, no
    # gradient left on any weight
    for m, a in zip(mutables, alpha):
        assert torch.equal(m.arch_alpha.detach(), a)
    for k, v in model.bn.state_dict().items():
        assert torch.equal(v, bn[k]), k
    assert all(p.grad is None for p in model.parameters())
    hook.after_train_iter(runner, 0)
    for m in mutables:
        assert not m.weights_overridden
    # the same attack twice: the same perturbation (seeded random start)
    hook.before_train_iter(runner, 0, batch)
    again = [m.arch_weights().clone() for m in mutables]
    hook.after_train_iter(runner, 0)
    hook.before_train_iter(runner, 0, batch)
    assert all(
        torch.equal(m.arch_weights(), w) for m, w in zip(mutables, again))
    hook.after_train_iter(runner, 0)
    # SDARTS-ADV never lowers the training loss: an attack that does not
    # raise it falls back to the unperturbed mix (other starts and batches)
    for it in range(1, 6):
        runner.iter = it
        batch = toy_batch(it)
        model.eval()
        with torch.no_grad():
            clean_loss = float(batch_loss(model, batch))
        model.train()
        hook.before_train_iter(runner, 0, batch)
        model.eval()
        with torch.no_grad():
            assert float(batch_loss(model, batch)) >= clean_loss
        model.train()
        hook.after_train_iter(runner, 0)


def test_sdarts_adv_arguments_are_checked():
    with pytest.raises(ValueError, match="mode='pgd' is not one of"):
        ArchPerturbHook(mode='pgd')
    with pytest.raises(ValueError, match='steps=0 must be >= 1'):
        ArchPerturbHook(mode='adversarial', steps=0)
