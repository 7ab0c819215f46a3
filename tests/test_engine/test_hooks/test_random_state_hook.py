"""RandomStateHook: a supernet training killed mid-epoch and resumed ends
with the weights of the uninterrupted run, also where it draws from the
global random streams (drop path masks, a random flip in the main
process)."""
import os.path as osp
import random

import numpy as np
import pytest
import torch
from mmengine.runner import EpochBasedTrainLoop, Runner

from mmnas_tricks.engine.hooks.random_state_hook import (KEY, RandomStateHook,
                                                         add_random_state_hook,
                                                         get_random_state,
                                                         set_random_state)
from mmnas_tricks.testing import KillAt, Killed, config_dir, tiny_supernet_cfg
from ...conftest import TINY_SPEC

ELASTIC = osp.join(config_dir(), 'supernets',
                   'fcos_r18w16_fpn-elastic_gn-head-elastic_12e_digits.py')


def _cfg(tiny_digits, work, name):
    cfg = tiny_supernet_cfg(ELASTIC, tiny_digits, TINY_SPEC, work, name, 2)
    cfg.randomness = dict(seed=0)
    # two draws from the global streams a resume must continue: drop path
    # masks (torch) and a random flip in the main process (numpy)
    cfg.custom_hooks.append(dict(type='mmnas_tricks.DropPathHook', p_max=0.2))
    pipeline = cfg.train_dataloader.dataset.pipeline
    pipeline.insert(len(pipeline) - 1, dict(type='RandomFlip', prob=0.5))
    cfg.train_cfg.val_interval = 1  # validation between the epochs draws
    return cfg


def _runner(cfg, kill_at=None):
    runner = Runner.from_cfg(cfg)
    assert add_random_state_hook(runner, cfg)  # as tools/train.py does
    assert not add_random_state_hook(runner, cfg)  # once
    if kill_at is not None:
        runner.register_hook(KillAt(kill_at))
    return runner


@pytest.mark.heavy
def test_killed_mid_epoch_and_resumed_ends_with_the_same_weights(
        tiny_digits, tmp_path):
    full = _runner(_cfg(tiny_digits, str(tmp_path / 'full'), 'rng_full'))
    full.train()
    per_epoch = full.iter // 2
    assert per_epoch >= 2
    work = str(tmp_path / 'killed')
    killed = _runner(
        _cfg(tiny_digits, work, 'rng_killed'),
        kill_at=per_epoch + per_epoch // 2)  # in the second epoch
    with pytest.raises(Killed):
        killed.train()
    ckpt = osp.join(work, 'epoch_1.pth')
    saved = torch.load(ckpt, map_location='cpu')  # weights_only: plain types
    assert saved[KEY]['epoch'] == 1 and len(saved[KEY]['states']) == 1

    def resume(path, name):
        cfg = _cfg(tiny_digits, work, name)
        cfg.resume, cfg.load_from = True, path
        runner = _runner(cfg)
        runner.train()
        return runner.model.state_dict()

    want = full.model.state_dict()
    got = resume(ckpt, 'rng_resumed')
    assert all(torch.equal(want[k], got[k]) for k in want)

    # the same resume from the checkpoint without the random states (what
    # mmengine's checkpoints hold) ends elsewhere: the test can fail
    bare = str(tmp_path / 'bare.pth')
    saved.pop(KEY)
    torch.save(saved, bare)
    other = resume(bare, 'rng_bare')
    assert not all(torch.equal(want[k], other[k]) for k in want)


def test_random_state_round_trip_and_only_epoch_based_loops():
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    state = get_random_state()
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    set_random_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first

    class Hooks:
        hooks = []

        def register_hook(self, hook):
            self.hooks.append(hook)

    for train_cfg, added in [(dict(type='EpochBasedTrainLoop'), True),
                             (dict(by_epoch=True, max_epochs=1), True),
                             (dict(type='IterBasedTrainLoop'), False),
                             (dict(type='mmnas_tricks.NSGA2SearchLoop'), False)
                             ]:
        runner = Hooks()
        runner.hooks = []
        assert add_random_state_hook(runner, dict(train_cfg=train_cfg)) \
            is added
        assert len(runner.hooks) == int(added)


def test_a_dataloader_iterator_no_longer_draws_from_the_global_stream():
    """A persistent-worker iterator is created at a resumed epoch but not
    in the uninterrupted run; its base seed must not come from the global
    torch stream."""
    from types import SimpleNamespace
    loader = torch.utils.data.DataLoader(list(range(8)), batch_size=2)
    runner = SimpleNamespace(seed=0, visualizer=SimpleNamespace())
    runner.train_loop = EpochBasedTrainLoop(runner, loader, max_epochs=1)
    torch.manual_seed(0)
    before = torch.get_rng_state()
    iter(loader)
    assert not torch.equal(torch.get_rng_state(), before)  # it drew
    RandomStateHook().before_train(runner)
    before = torch.get_rng_state()
    iter(loader)
    assert torch.equal(torch.get_rng_state(), before)
