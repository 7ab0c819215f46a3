"""The bag of tricks in real tiny Runners: every differentiable trick at
once, every sampling trick at once, path dropout, and a GroupNorm-converted
supernet that saves, resumes and tests (docs/tricks.md)."""
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.runner import Runner

from mmnas_tricks.engine.hooks import DartsHook
from mmnas_tricks.engine.optim import SAMOptimWrapper
from mmnas_tricks.models.mutables import named_mutables
from mmnas_tricks.models.ops import GhostBatchNorm2d
from mmnas_tricks.testing import config_dir, tiny_supernet_cfg
from ..conftest import TINY_SPEC

SUPERNETS = osp.join(config_dir(), 'supernets')
DARTS = osp.join(SUPERNETS,
                 'darts_fcos_r18w16_fpn-search_gn-head-search_6e_digits.py')
ELASTIC = osp.join(SUPERNETS,
                   'fcos_r18w16_fpn-elastic_gn-head-elastic_12e_digits.py')
OPS = osp.join(SUPERNETS,
               'fcos_r18w16_fpn-search_gn-head-search_12e_digits.py')


def tiny(path, tiny_digits, work_dir, name, epochs=2):
    return tiny_supernet_cfg(path, tiny_digits, TINY_SPEC, work_dir, name,
                             epochs)


def history(runner, key):
    values, _ = runner.message_hub.get_scalar(key).data
    return [float(v) for v in values]


@pytest.mark.heavy
def test_every_differentiable_trick_at_once(tiny_digits, tmp_path):
    """DARTS + weights warm-up + SDARTS-RS + DARTS- + drop path + SAM +
    GroupNorm backbone + BN without affine in the neck + BN calibration
    before validation: trains and validates, each trick's schedule as
    logged is its formula."""
    work = str(tmp_path / 'darts_all')
    cfg = tiny(DARTS, tiny_digits, work, 'tricks_darts_all', epochs=2)
    cfg.custom_hooks += [
        dict(type='mmnas_tricks.ArchWarmupHook', warmup_iters=2),
        dict(type='mmnas_tricks.ArchPerturbHook', eps_max=0.3),
        dict(type='mmnas_tricks.AuxSkipHook', beta0=1.0),
        dict(type='mmnas_tricks.DropPathHook', p_max=0.2, by_epoch=False),
        dict(
            type='mmnas_tricks.ConvertNormHook',
            to='GN',
            include=['backbone'],
            num_groups=8),
        dict(type='mmnas_tricks.BNCalibrationHook', num_batches=2),
    ]
    cfg.optim_wrapper.type = 'mmnas_tricks.SAMOptimWrapper'
    cfg.optim_wrapper.rho = 0.05
    cfg.model.neck.norm_cfg = dict(type='BN', affine=False)  # T3.1
    runner = Runner.from_cfg(cfg)
    runner.train()
    iters = runner.iter
    per_epoch = iters // 2
    assert iters >= 4 and per_epoch * 2 == iters

    assert history(runner, 'train/arch_update_enabled') == \
        [0.0, 0.0] + [1.0] * (iters - 2)
    darts = next(h for h in runner.hooks if isinstance(h, DartsHook))
    steps = {int(s['step']) for s in darts.arch_optimizer.state.values()}
    assert steps == {iters - 2}  # no arch step in the warm-up
    assert history(runner,
                   'train/aux_skip_beta') == pytest.approx([1.0] * per_epoch +
                                                           [0.0] * per_epoch)
    assert history(
        runner, 'train/arch_perturb_eps') == pytest.approx([0.03] * per_epoch +
                                                           [0.03 + 0.27 / 2] *
                                                           per_epoch)
    assert history(runner, 'train/drop_path_prob') == pytest.approx(
        [0.2 * t / iters for t in range(iters)])
    assert isinstance(runner.optim_wrapper, SAMOptimWrapper)
    assert runner.optim_wrapper.forward_passes == 2
    model = runner.model
    assert not any(
        isinstance(m, nn.BatchNorm2d)
        for m in model.backbone.modules())  # GroupNorm now
    neck_bns = [
        m for m in model.neck.modules() if isinstance(m, nn.BatchNorm2d)
    ]
    assert neck_bns and not any(m.affine for m in neck_bns)
    assert history(runner, 'val/bn_calib_batches') == [2.0, 2.0]
    # after training: the tricks are off, alpha untouched by SDARTS
    tricks = {type(h).__name__: h for h in runner.hooks}
    assert tricks['AuxSkipHook'].aux_skip_beta == 0
    assert tricks['DropPathHook'].drop_path_prob == 0
    for m in named_mutables(model, searchable_only=True).values():
        assert not m.weights_overridden and not m._forward_hooks
    assert osp.isfile(osp.join(work, 'darts', 'argmax_subnet.yaml'))
    assert np.isfinite(history(runner, 'train/loss')).all()


@pytest.mark.heavy
def test_every_sampling_trick_at_once(tiny_digits, tmp_path):
    """SPOS + TuNAS warm-up + drop path + SAM + sequential search (neck,
    then head) + frozen-backbone feature caching + Ghost BN neck + BN
    calibration before validation."""
    work = str(tmp_path / 'spos_all')
    cfg = tiny(ELASTIC, tiny_digits, work, 'tricks_spos_all', epochs=2)
    cfg.model.backbone.frozen_stages = 4
    cfg.model.backbone.norm_eval = True
    cfg.model.neck.norm_cfg = dict(type='BN')
    cfg.model.test_cfg.score_thr = 0.0
    cfg.custom_hooks = [
        dict(type='mmnas_tricks.SampleSubnetHook', seed=1),
        dict(type='mmnas_tricks.AllOpsWarmupHook', warmup_ratio=0.5),
        dict(type='mmnas_tricks.DropPathHook', p_max=0.2),
        dict(
            type='mmnas_tricks.SequentialSearchHook',
            stages=[
                dict(
                    name='neck',
                    begin_epoch=0,
                    include='neck.*',
                    select='search',
                    num_candidates=1,
                    calibrate_bn=1),
                dict(
                    name='head',
                    begin_epoch=1,
                    include='bbox_head.*',
                    select='search',
                    num_candidates=1,
                    calibrate_bn=1)
            ]),
        dict(type='mmnas_tricks.FeatureCacheHook', module='backbone'),
        dict(
            type='mmnas_tricks.ConvertNormHook',
            to='GhostBN',
            include=['neck'],
            virtual_batch_size=4),
        dict(type='mmnas_tricks.BNCalibrationHook', num_batches=2),
    ]
    cfg.optim_wrapper.type = 'mmnas_tricks.SAMOptimWrapper'
    runner = Runner.from_cfg(cfg)
    runner.train()
    iters = runner.iter
    probs = history(runner, 'train/all_ops_prob')
    assert probs == pytest.approx(
        [1 - min(t / (0.5 * iters), 1) for t in range(iters)])
    fractions = history(runner, 'train/all_ops_fraction')
    assert fractions[0] == 1.0 and fractions[-1] == 0.0
    ghost = [
        m for m in runner.model.neck.modules()
        if isinstance(m, GhostBatchNorm2d)
    ]
    assert ghost and all(g.virtual_batch_size == 4 for g in ghost)
    assert history(runner, 'val/bn_calib_batches') == [2.0, 2.0]
    ratios = history(runner, 'train/cache_hit_ratio')
    assert ratios[-1] == 1.0  # the second epoch reads the cache
    mutables = named_mutables(runner.model)
    assert all(m.mode == 'fixed' for m in mutables.values())
    assert osp.isfile(osp.join(work, 'sequential', 'final_subnet.yaml'))


@pytest.mark.heavy
def test_path_dropout_in_a_runner(tiny_digits, tmp_path):
    work = str(tmp_path / 'pd')
    cfg = tiny(OPS, tiny_digits, work, 'tricks_path_dropout', epochs=1)
    cfg.custom_hooks = [
        dict(type='mmnas_tricks.PathDropoutHook', r_max=0.5),
        # one process: SyncBN computes plain BN
        dict(
            type='mmnas_tricks.ConvertNormHook',
            to='SyncBN',
            include=['backbone'])
    ]
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert isinstance(runner.model.backbone.bn1, nn.SyncBatchNorm)
    rates = history(runner, 'train/path_dropout_rate')
    assert rates == pytest.approx(
        [0.5 * t / runner.iter for t in range(runner.iter)])
    assert all(m.mode == 'sampled'
               for m in named_mutables(runner.model).values())


def test_conflicting_hooks_stop_the_run_before_training(tiny_digits, tmp_path):
    cfg = tiny(
        OPS, tiny_digits, str(tmp_path / 'bad'), 'tricks_conflict', epochs=1)
    cfg.custom_hooks.append(dict(type='mmnas_tricks.PathDropoutHook'))
    runner = Runner.from_cfg(cfg)
    with pytest.raises(
            ValueError,
            match='PathDropoutHook cannot be '
            'combined with SampleSubnetHook'):
        runner.train()
    assert runner.iter == 0


@pytest.mark.heavy
def test_group_norm_model_saves_resumes_and_tests(tiny_digits, tmp_path):
    work = str(tmp_path / 'gn')
    hook = dict(type='mmnas_tricks.ConvertNormHook', to='GN', num_groups=8)

    def cfg_for(name, epochs):
        cfg = tiny(ELASTIC, tiny_digits, work, name, epochs=epochs)
        cfg.custom_hooks.append(hook)
        return cfg

    runner = Runner.from_cfg(cfg_for('tricks_gn_a', 1))
    runner.train()
    ckpt = torch.load(
        osp.join(work, 'epoch_1.pth'), map_location='cpu', weights_only=False)
    assert not any('running_mean' in k for k in ckpt['state_dict'])
    assert 'backbone.bn1.weight' in ckpt['state_dict']

    cfg = cfg_for('tricks_gn_b', 2)
    cfg.resume = True
    cfg.load_from = osp.join(work, 'epoch_1.pth')
    resumed = Runner.from_cfg(cfg)
    resumed.train()
    assert resumed.iter == 2 * runner.iter  # continued, not restarted
    held = {
        id(p)
        for g in resumed.optim_wrapper.optimizer.param_groups
        for p in g['params']
    }
    gn = [
        m for m in resumed.model.modules()
        if isinstance(m, nn.GroupNorm) and m.affine
    ]
    assert gn and all(id(m.weight) in held for m in gn)

    cfg = cfg_for('tricks_gn_c', 2)
    cfg.load_from = osp.join(work, 'epoch_2.pth')
    tester = Runner.from_cfg(cfg)
    metrics = tester.test()  # ({} while the tiny model finds nothing)
    assert isinstance(metrics, dict)
    state = torch.load(
        osp.join(work, 'epoch_2.pth'), map_location='cpu',
        weights_only=False)['state_dict']
    assert torch.equal(tester.model.state_dict()['backbone.bn1.weight'],
                       state['backbone.bn1.weight'])
    batch = next(iter(tester.test_dataloader))
    with torch.no_grad():
        out = tester.model.test_step(batch)
    assert len(out) == len(batch['inputs'])
    assert all('pred_instances' in o for o in out)
