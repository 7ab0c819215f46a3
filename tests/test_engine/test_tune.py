"""One-shot tuning of the supernet recipe (engine/tune.py,
tools/tune_supernet.py): the recipe's edits of a pipeline config, the rank
objective against recorded stand-alone scores, and a study that, killed
and run again, continues to the trials an uninterrupted one runs."""
import json
import math
import os.path as osp

import pytest

from mmnas_tricks.engine.tune import (apply_recipe, default_recipe,
                                      rank_objectives, read_truth, run_study,
                                      suggest)
from mmnas_tricks.testing import config_dir
from mmnas_tricks.utils import load_config

MAIN = osp.join(
    osp.dirname(config_dir()), 'configs', 'nas',
    'nsga2_fcos_whole-elastic_r18w16_digits.py')


def _hook(cfg, name):
    return [h for h in cfg.custom_hooks if h['type'].endswith(name)]


def test_recipe_reads_and_edits_the_supernet_stage():
    cfg = load_config(MAIN)
    default = default_recipe(cfg)
    assert default == dict(
        lr=0.001,
        epochs=6,
        warmup_iters=100,
        strategy='sandwich',
        distill_weight=1.0,
        sort_channels=True,
        progressive=False)
    assert apply_recipe(cfg, default).to_dict() == cfg.to_dict()
    new = apply_recipe(
        cfg,
        dict(
            lr=0.003,
            epochs=9,
            warmup_iters=0,
            strategy='uniform',
            distill_weight=0.0,
            sort_channels=False,
            progressive=True))
    assert new.optim_wrapper.optimizer.lr == 0.003
    assert new.train_cfg.max_epochs == 9 and new.train_cfg.val_interval == 9
    assert [s['type'] for s in new.param_scheduler] == ['CosineAnnealingLR']
    assert new.param_scheduler[0]['T_max'] == 9
    assert new.param_scheduler[0]['end'] == 9
    assert _hook(new, 'SampleSubnetHook')[0]['strategy'] == 'uniform'
    assert _hook(new, 'InheritWeightsHook')[0]['sort_channels'] is False
    assert _hook(new, 'InplaceDistillHook') == []
    stages = _hook(new, 'SequentialSearchHook')[0]['stages']
    assert [s['begin_epoch'] for s in stages] == [0, 3, 6]
    assert all(s['select'] is None for s in stages)
    assert default_recipe(new) == dict(
        lr=0.003,
        epochs=9,
        warmup_iters=0,
        strategy='uniform',
        distill_weight=0.0,
        sort_channels=False,
        progressive=True)
    # the original is untouched
    assert default_recipe(cfg) == default


def test_recipe_errors_name_the_key_and_the_config():
    cfg = load_config(MAIN)
    with pytest.raises(KeyError, match=r"\['momentum'\] are not among"):
        apply_recipe(cfg, dict(momentum=0.9))
    with pytest.raises(
            ValueError, match='3 stages, one epoch each at least; '
            'epochs=2'):
        apply_recipe(cfg, dict(epochs=2, progressive=True))
    cfg.custom_hooks = []
    with pytest.raises(
            ValueError,
            match=r"my\.py: recipe key 'strategy' "
            'needs a SampleSubnetHook'):
        apply_recipe(cfg, dict(strategy='sandwich'), 'my.py')


def test_truth_and_rank_objectives(tmp_path):
    records = {
        f'k{i}': dict(
            index=i,
            name=f's{i}',
            subnet={'x': i},
            flops_ratio=0.8 + 0.05 * i,
            standalone=0.5 + 0.1 * i)
        for i in range(5)
    }
    records['k9'] = dict(index=9, subnet={'x': 9}, flops_ratio=1.0)
    path = tmp_path / 'rank_correlation.json'
    path.write_text(json.dumps(dict(records=records)))
    truth = read_truth(str(path))
    assert [r['name'] for r in truth] == ['s0', 's1', 's2', 's3', 's4']
    taus = rank_objectives([0.1, 0.2, 0.3, 0.5, 0.4], truth, (0.84, 1.01))
    assert taus['tau_all'] == pytest.approx(0.8)
    assert taus['flops_tau_all'] == pytest.approx(1.0)
    assert taus['tau_window'] == pytest.approx(2 / 3)  # s1..s4
    path.write_text(json.dumps(dict(records={'k9': records['k9']})))
    with pytest.raises(ValueError, match='0 subnets have a stand-alone'):
        read_truth(str(path))


NAMES = ['lr', 'epochs', 'sort_channels']
FIXED = dict(
    warmup_iters=100,
    strategy='sandwich',
    distill_weight=1.0,
    progressive=False)
FIRST = dict(FIXED, lr=0.001, epochs=6, sort_channels=False)


def fake_evaluate(recipe):
    """A deterministic stand-in for a supernet training + rank study."""
    tau = 0.9 - abs(math.log10(recipe['lr']) + 2.5) / 4 + 0.01 * (
        recipe['epochs'] - 8)**2 * -1 + 0.05 * recipe['sort_channels']
    return dict(tau_all=tau, tau_window=tau / 2)


def _complete(study):
    from optuna.trial import TrialState
    return [(t.params, t.value)
            for t in study.get_trials(states=(TrialState.COMPLETE, ))]


def _study(tmp_path, name, evaluate, n, **kwargs):
    """run_study on the fake space of these tests, in tmp_path's DB."""
    return run_study(
        name,
        f'sqlite:///{tmp_path}/study.db',
        NAMES,
        FIXED,
        evaluate,
        n,
        seed=3,
        first=FIRST,
        log=lambda line: None,
        **kwargs)


def test_killed_study_continues_to_the_uninterrupted_trials(tmp_path):

    def study(name, evaluate, n):
        return _study(tmp_path, name, evaluate, n)

    whole = _complete(study('whole', fake_evaluate, 5))
    assert whole[0][0] == dict(lr=0.001, epochs=6, sort_channels=False)
    assert len({json.dumps(p, sort_keys=True) for p, _ in whole}) == 5

    # Ctrl-C in the third trial, then the same command again
    calls = []

    def interrupted(recipe):
        calls.append(recipe)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return fake_evaluate(recipe)

    with pytest.raises(KeyboardInterrupt):
        study('ctrl_c', interrupted, 5)
    assert _complete(study('ctrl_c', fake_evaluate, 5)) == whole

    # killed (SIGKILL) while the third trial ran: it stays RUNNING
    import optuna
    killed = study('killed', fake_evaluate, 2)
    killed.sampler = optuna.samplers.TPESampler(seed=3 + 2)
    suggest(killed.ask(), NAMES, FIXED)
    again = study('killed', fake_evaluate, 5)
    assert _complete(again) == whole
    assert [t.state.name for t in again.trials].count('FAIL') == 1


def test_pruned_trials_stop_early_and_a_resumed_study_repeats_them(tmp_path):
    """With a pruner, a trial reports its tau per epoch and Optuna's median
    pruner stops the ones behind the earlier trials; pruned trials are
    finished, not complete (the study runs on to the complete trials
    wanted), and a killed study continues to the same trials."""
    import optuna

    def reporting(recipe, report):
        # each trial's tau approaches its final one: worse recipes report
        # lower taus and fall behind the median
        tau = fake_evaluate(recipe)['tau_all']
        for epoch in (1, 2, 3):
            report(dict(tau_all=tau * epoch / 3, tau_window=0.0), epoch)
        return fake_evaluate(recipe)

    def study(name, evaluate, n):
        return _study(
            tmp_path,
            name,
            evaluate,
            n,
            pruner=optuna.pruners.MedianPruner(
                n_startup_trials=2, n_warmup_steps=0))

    whole = study('pruned', reporting, 5)
    states = [t.state.name for t in whole.trials]
    assert states.count('COMPLETE') == 5
    assert 'PRUNED' in states  # some trials were stopped early
    pruned = [t for t in whole.trials if t.state.name == 'PRUNED']
    # stopped before their last epoch
    assert all(max(t.intermediate_values) < 3 for t in pruned)
    # killed in the middle of a trial, then run again: the same trials
    calls = []

    def interrupted(recipe, report):
        calls.append(recipe)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return reporting(recipe, report)

    with pytest.raises(KeyboardInterrupt):
        study('pruned_ctrl_c', interrupted, 5)
    again = study('pruned_ctrl_c', reporting, 5)

    def finished(s):
        return [(t.params, t.state.name) for t in s.trials
                if t.state.name in ('COMPLETE', 'PRUNED')]

    assert finished(again) == finished(whole)


def test_the_report_hook_reports_on_the_epochs_checkpoint(tmp_path):
    """evaluate_recipe's report hook: after the reporting epochs only, on
    that epoch's checkpoint (it runs after mmengine's CheckpointHook)."""
    from types import SimpleNamespace

    from mmnas_tricks.engine.tune import ReportHook
    seen = []
    hook = ReportHook([2, 4], lambda ckpt: dict(tau_all=float(len(ckpt))),
                      lambda taus, epoch: seen.append(epoch))
    assert hook.priority == 'LOWEST'
    (tmp_path / 'epoch_2.pth').write_bytes(b'')
    runner = SimpleNamespace(work_dir=str(tmp_path), epoch=0)
    for epoch in range(4):  # runner.epoch counts the finished ones after
        runner.epoch = epoch
        hook.after_train_epoch(runner)
    assert seen == [2]  # epoch 4 has no checkpoint: nothing to score


def test_supernet_seeds_and_a_grown_space(tmp_path, monkeypatch):
    """evaluate_supernet seeds the training and its subnet sequence alike
    and trains from the baseline it names (refusing a missing one);
    estimate_taus scores the truth's subnets in a space grown by a choice
    with the new mutable at its first choice (the truth's space had it
    so)."""
    import torch.nn as nn
    from mmengine.config import Config

    import mmnas_tricks.engine.pipeline as pipeline
    import mmnas_tricks.engine.rank as rank
    import mmnas_tricks.engine.tune as tune
    from mmnas_tricks.models.mutables import ActivationChoice, OpChoice

    class Space(nn.Module):

        def __init__(self):
            super().__init__()
            self.op = OpChoice(
                dict(a=dict(type='Identity'), b=dict(type='Identity')), 4, 4)
            self.act = ActivationChoice(('ReLU', 'SiLU'))

    scored = []

    class Scorer:

        def __init__(self, *args, **kwargs):
            self.model = Space()

        def score(self, subnet, calibrate):
            scored.append(subnet)
            return 0.1 * len(scored)

    trained = []

    def train(cfg, work, name, hooks):
        trained.append(cfg)
        return 'ckpt.pth', {'coco/bbox_mAP': 0.5}

    monkeypatch.setattr(rank, 'SupernetScorer', Scorer)
    monkeypatch.setattr(rank, 'train_resumable', train)
    monkeypatch.setattr(pipeline, 'search_data', lambda cfg: {})
    truth = [
        dict(
            name=f's{i}',
            subnet={'op': 'ab'[i % 2]},
            flops_ratio=1.0,
            standalone=0.1 * i) for i in range(3)
    ]
    supernet = Config(
        dict(custom_hooks=[
            dict(type='mmnas_tricks.SampleSubnetHook', seed=0),
            dict(type='mmnas_tricks.InplaceDistillHook')
        ]))
    with pytest.raises(FileNotFoundError, match="'missing.pth' does not"):
        tune.evaluate_supernet(
            Config(),
            supernet,
            truth,
            str(tmp_path),
            'missing.pth',
            'coco/bbox_mAP',
            seed=2)
    base = tmp_path / 'base.pth'
    base.write_bytes(b'')
    out = tune.evaluate_supernet(
        Config(),
        supernet,
        truth,
        str(tmp_path),
        str(base),
        'coco/bbox_mAP',
        seed=2)
    cfg = trained[0]
    assert cfg.randomness == dict(seed=2) and cfg.load_from == str(base)
    assert cfg.custom_hooks[0]['seed'] == 2  # the subnet sequence too
    assert 'seed' not in cfg.custom_hooks[1]
    assert supernet.custom_hooks[0]['seed'] == 0  # the input unchanged
    assert scored == [{
        'op': 'a',
        'act': 'ReLU'
    }, {
        'op': 'b',
        'act': 'ReLU'
    }, {
        'op': 'a',
        'act': 'ReLU'
    }]
    assert out['tau_all'] == pytest.approx(1.0)  # both rise
    assert out['first_subnet'] == 0.5
