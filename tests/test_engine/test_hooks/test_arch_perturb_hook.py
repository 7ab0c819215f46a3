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
