"""PathDropoutHook (docs/tricks.md, T1.2) on a toy supernet with a mock
runner."""
import pytest
import torch

from mmnas_tricks.engine.hooks import PathDropoutHook
from .toy import Toy, mock_runner, scalar, walk


# -- T1.2 path dropout -------------------------------------------------------
def test_path_dropout_rate_follows_the_schedule_and_never_drops_all():
    model = Toy()
    runner = mock_runner(model, [PathDropoutHook(r_max=0.5)], name='pd')
    hook = runner.hooks[0]
    hook.before_train(runner)
    assert all(m.mode == 'all_on' for m in (model.a, model.b, model.down))
    rates = walk(hook, runner, lambda r: scalar(r, 'train/path_dropout_rate'))
    assert rates == pytest.approx([0.5 * t / 20 for t in range(20)])
    # per-path probability r ** (1 / k): all k dropped (before the guard)
    # with probability r, whatever k
    assert model.a.drop_prob == pytest.approx((0.5 * 19 / 20)**(1 / 3))
    assert model.b.drop_prob == pytest.approx((0.5 * 19 / 20)**(1 / 4))
    model.train()
    torch.manual_seed(0)
    mask = model.b.path_mask(20000)
    assert mask.sum(1).min() >= 1  # never all dropped
    p, k = model.b.drop_prob, 4
    kept = float(mask.mean())  # (1 - p) + p^k / k with the guard
    assert kept == pytest.approx((1 - p) + p**k / k, abs=0.01)
    # validation runs single candidates, training all again
    hook.before_val_epoch(runner)
    assert model.a.mode == 'sampled'
    hook.after_val_epoch(runner)
    assert model.a.mode == 'all_on'
    hook.after_train(runner)
    assert model.a.mode == 'sampled'
