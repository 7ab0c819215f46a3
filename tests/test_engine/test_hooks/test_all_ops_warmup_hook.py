"""AllOpsWarmupHook (TuNAS, docs/tricks.md, T1.3) on a toy supernet with a mock
runner."""
import pytest
import torch

from mmnas_tricks.engine.hooks import AllOpsWarmupHook, SampleSubnetHook
from mmnas_tricks.models.mutables import ChannelChoice
from .toy import Toy, mock_runner, scalar


# -- T1.3 TuNAS warm-up -------------------------------------------------------
def test_all_ops_probability_decays_to_zero_over_the_warmup():
    model = Toy()
    model.width = ChannelChoice([2, 4, 8])
    sampler = SampleSubnetHook()
    hook = AllOpsWarmupHook(warmup_ratio=0.5, seed=1)
    runner = mock_runner(
        model, [sampler, hook], epochs=10, iters_per_epoch=10, name='tunas')
    hook.before_train(runner)
    probs, fractions = [], []
    for it in range(100):
        runner.iter, runner.epoch = it, it // 10
        hook.before_train_iter(runner, it)
        probs.append(scalar(runner, 'train/all_ops_prob'))
        fractions.append(scalar(runner, 'train/all_ops_fraction'))
        if it == 0:  # p_all = 1: everything on, outputs averaged
            assert all(m.mode == 'all_on' and m.average_paths
                       for m in (model.a, model.b, model.down))
            assert model.width.mode == 'sampled'
            assert model.width.current_choice == 8  # largest width
            model.train()
            assert torch.equal(model.a.path_mask(2), torch.full((2, 3), 1 / 3))
    assert probs == pytest.approx([1 - min(t / 50, 1) for t in range(100)])
    assert fractions[0] == 1.0 and all(f == 0 for f in fractions[50:])
    # the realised fraction tracks p_all over the warm-up
    assert sum(fractions[:50]) / 50 == pytest.approx(
        sum(probs[:50]) / 50, abs=0.12)
    assert all(m.mode == 'sampled' and not m.average_paths
               for m in (model.a, model.b, model.down))
    # same draws for the same seed and iteration (every rank agrees)
    other = Toy()
    h2 = AllOpsWarmupHook(warmup_ratio=0.5, seed=1)
    r2 = mock_runner(
        other, [SampleSubnetHook(), h2],
        epochs=10,
        iters_per_epoch=10,
        name='tunas2')
    h2.before_train(r2)
    for it in (3, 17, 31):
        runner.iter = r2.iter = it
        hook.before_train_iter(runner, it)
        h2.before_train_iter(r2, it)
        assert [m.mode for m in (model.a, model.b, model.down)
                ] == [m.mode for m in (other.a, other.b, other.down)]
