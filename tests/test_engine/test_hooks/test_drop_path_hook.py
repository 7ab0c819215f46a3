"""DropPathHook (docs/tricks.md, T2.1): its schedule, its effect through the
forward hooks it registers, and the mutables it spares."""
import pytest
import torch

from mmnas_tricks.engine.hooks import DropPathHook
from mmnas_tricks.models.mutables import drop_path, set_mode
from .toy import Toy, mock_runner, scalar, walk


# -- T2.1 drop path -----------------------------------------------------------
def test_drop_path_schedule_and_effect():
    model = Toy()
    runner = mock_runner(model, [DropPathHook(p_max=0.4)], name='dp')
    hook = runner.hooks[0]
    hook.before_train(runner)
    probs = walk(hook, runner, lambda r: scalar(r, 'train/drop_path_prob'))
    assert probs == pytest.approx([0.4 * (t // 5) / 4 for t in range(20)])
    end1 = DropPathHook(p_max=0.4, end_offset=1)
    assert walk(end1, runner, lambda r: end1.prob(r))[-1] == pytest.approx(0.4)

    # per-example drop, inverted scaling: the mean is kept
    torch.manual_seed(0)
    x = torch.ones(20000, 3)
    y = drop_path(x, 0.3)
    dropped = float((y[:, 0] == 0).float().mean())
    assert dropped == pytest.approx(0.3, abs=0.02)
    assert float(y.mean()) == pytest.approx(1.0, rel=0.03)
    assert torch.equal(y[:, 0], y[:, 1])  # whole examples

    set_mode(model, 'sampled')
    model.train()
    hook.drop_path_prob = 0.5
    x = torch.randn(64, 4, 3, 3)
    model.a.current_choice = 'conv3x3'
    out = model.a(x)
    zero = (out.flatten(1).abs().sum(1) == 0).float().mean()
    assert 0.3 < float(zero) < 0.7
    model.a.current_choice = 'skip'  # a chosen skip is never dropped
    assert torch.equal(model.a(x), x)
    model.eval()  # never in eval mode
    model.a.current_choice = 'conv3x3'
    hook.drop_path_prob = 0.99
    assert (model.a(x).flatten(1).abs().sum(1) > 0).all()
    hook.after_train(runner)
    assert hook.drop_path_prob == 0.0
    hook.drop_path_prob = 0.99  # its forward hooks are gone with training
    model.train()
    assert (model.a(x).flatten(1).abs().sum(1) > 0).all()
    assert not model.a._forward_hooks


def test_drop_path_spares_depth_choices():
    """A depth choice holds mutables of its own: dropping the whole stage
    output would zero a tower; its blocks take drop path instead."""
    from mmnas_tricks.models.mutables import DepthChoice
    stage = DepthChoice(
        [dict(type='mmnas_tricks.ConvOp', in_channels=4, out_channels=4)] * 2,
        depths=(1, 2))
    stage.train()
    hook = DropPathHook()
    hook.attach([stage])
    hook.drop_path_prob = 0.99
    x = torch.randn(32, 4, 5, 5)
    assert (stage(x).flatten(1).abs().sum(1) > 0).all()
