"""AuxSkipHook (DARTS-, docs/tricks.md, T2.5): the decay of beta and the
auxiliary skip it adds."""
import math

import pytest
import torch

from mmnas_tricks.engine.hooks import AuxSkipHook, DartsHook
from mmnas_tricks.models.mutables import set_mode
from .toy import Toy, mock_runner, scalar, walk


# -- T2.5 DARTS- --------------------------------------------------------------
@pytest.mark.parametrize('decay,f', [
    ('linear', lambda s: 1 - s),
    ('cosine', lambda s: (1 + math.cos(math.pi * s)) / 2),
    ('slow_cosine', lambda s: math.cos(math.pi * s / 2)),
])
def test_aux_skip_beta_decays_to_zero(decay, f):
    model = Toy()
    set_mode(model, 'differentiable')
    hook = AuxSkipHook(beta0=1.0, decay=decay)
    runner = mock_runner(
        model, [DartsHook(arch_dataloader={}), hook],
        epochs=5,
        name=f'dm_{decay}')
    hook.before_train(runner)
    betas = walk(
        hook, runner, lambda r: scalar(r, 'train/aux_skip_beta'), epochs=5)
    want = [f(min(e / 4, 1)) for e in range(5) for _ in range(5)]
    assert betas == pytest.approx(want, abs=1e-12)
    assert betas[-1] == 0.0  # the last epoch runs without the skip
    assert hook.aux_skip_beta == 0.0 and not hook.acts_on(model.a)


def test_aux_skip_adds_beta_times_the_input_where_shapes_match():
    model = Toy()
    set_mode(model, 'differentiable')
    model.train()
    x = torch.randn(2, 4, 6, 6)
    torch.manual_seed(0)
    base_a = model.a(x)
    hook = AuxSkipHook()
    hook.attach([model.a, model.down])
    hook.aux_skip_beta = 0.7
    torch.manual_seed(0)
    assert torch.allclose(model.a(x), base_a + 0.7 * x, atol=1e-6)
    y = model.down(x)  # stride 2: no skip possible, no error
    assert y.shape == (2, 8, 3, 3)
    # no alpha entry for the skip, argmax unchanged by beta
    assert model.a.arch_alpha.numel() == 3
    model.eval()
    with torch.no_grad():
        ev = model.a(x)
    hook.aux_skip_beta = 0.0
    with torch.no_grad():
        assert torch.equal(ev, model.a(x))  # off in eval mode
