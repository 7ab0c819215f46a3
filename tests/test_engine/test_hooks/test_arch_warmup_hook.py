"""ArchWarmupHook: DartsHook's architecture step off during the warm-up
(mock runner; DartsHook's own test shows that off means no batch drawn and
alpha unchanged)."""
from types import SimpleNamespace

import pytest
import torch
from mmengine.logging import MessageHub

from mmnas_tricks.engine.hooks import ArchWarmupHook, DartsHook
from mmnas_tricks.models.mutables import set_mode
from .toy import Toy, mock_runner


def runner_with(darts, max_epochs=4, iters_per_epoch=5):
    return SimpleNamespace(
        hooks=[darts],
        epoch=0,
        iter=0,
        max_epochs=max_epochs,
        max_iters=max_epochs * iters_per_epoch,
        message_hub=MessageHub.get_instance('arch_warmup_test'))


def schedule(hook, runner, epochs=4, iters_per_epoch=5):
    """arch_update_enabled at every iteration."""
    hook.before_train(runner)
    seen = []
    for e in range(epochs):
        for i in range(iters_per_epoch):
            runner.epoch, runner.iter = e, e * iters_per_epoch + i
            hook.before_train_iter(runner, i)
            seen.append(hook._darts.arch_update_enabled)
    return seen


@pytest.mark.parametrize(
    'kwargs,first_on',
    [
        (dict(), 10),  # half of 4 epochs
        (dict(warmup_ratio=0.3), 10),  # ceil(1.2) = 2 epochs
        (dict(warmup_ratio=0.3, by_epoch=False), 6),  # ceil(0.3 * 20) iters
        (dict(warmup_epochs=1), 5),
        (dict(warmup_iters=3), 3),
        (dict(warmup_iters=0), 0),
    ])
def test_architecture_step_switches_on_after_the_warmup(kwargs, first_on):
    darts = DartsHook(arch_dataloader={})
    runner = runner_with(darts)
    seen = schedule(ArchWarmupHook(**kwargs), runner)
    assert seen == [False] * first_on + [True] * (20 - first_on)
    assert runner.message_hub.get_scalar(
        'train/arch_update_enabled').current() == 1.0


def test_needs_a_darts_hook_and_valid_arguments():
    hook = ArchWarmupHook()
    with pytest.raises(ValueError, match='needs a DartsHook'):
        hook.before_train(SimpleNamespace(hooks=[]))
    with pytest.raises(ValueError, match='not both'):
        ArchWarmupHook(warmup_epochs=1, warmup_iters=2)
    with pytest.raises(ValueError, match='warmup_ratio=1.5'):
        ArchWarmupHook(warmup_ratio=1.5)
    with pytest.raises(ValueError, match='warmup_iters=-1'):
        ArchWarmupHook(warmup_iters=-1)


def test_warmup_can_mix_uniformly_until_alpha_trains():
    model = Toy()
    set_mode(model, 'differentiable')
    with torch.no_grad():
        model.a.arch_alpha.copy_(torch.tensor([3.0, 0.0, 0.0]))
    darts = DartsHook(arch_dataloader={})
    hook = ArchWarmupHook(warmup_iters=2, uniform_mix=True)
    runner = mock_runner(model, [darts, hook], name='uniform')
    hook.before_train(runner)
    for it, uniform in ((0, True), (1, True), (2, False)):
        runner.iter = it
        hook.before_train_iter(runner, it)
        w = model.a.arch_weights()
        if uniform:
            assert torch.equal(w, torch.full((3, ), 1 / 3))
        else:
            assert torch.equal(w, torch.softmax(model.a.arch_alpha, 0))
