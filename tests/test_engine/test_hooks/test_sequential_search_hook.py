"""SequentialSearchHook (docs/tricks.md, T4.3): the neck is searched and fixed
before the head, with sampling (BN-calibrated search at the stage end) and
with DARTS (argmax), the choice files, resume, and bad stage schedules."""
import json
import os.path as osp

import pytest
import torch
from mmengine.runner import Runner

from mmnas_tricks.engine.hooks import SequentialSearchHook
from mmnas_tricks.models.mutables import named_mutables
from mmnas_tricks.structures import read_subnet_file
from mmnas_tricks.testing import config_dir, tiny_supernet_cfg
from ...conftest import TINY_SPEC

SUPERNETS = osp.join(config_dir(), 'supernets')
ELASTIC = osp.join(SUPERNETS,
                   'fcos_r18w16_fpn-elastic_gn-head-elastic_12e_digits.py')
DARTS = osp.join(SUPERNETS,
                 'darts_fcos_r18w16_fpn-search_gn-head-search_6e_digits.py')
STAGES = [
    dict(
        name='neck',
        begin_epoch=0,
        include='neck.*',
        select='search',
        num_candidates=2,
        calibrate_bn=1),
    dict(
        name='head',
        begin_epoch=1,
        include='bbox_head.*',
        select='search',
        num_candidates=2,
        calibrate_bn=1)
]


def tiny(path, tiny_digits, work, name, epochs=2):
    cfg = tiny_supernet_cfg(path, tiny_digits, TINY_SPEC, work, name, epochs)
    cfg.model.test_cfg.score_thr = 0.0  # some boxes to score
    cfg.randomness = dict(seed=3)
    return cfg


def spos_cfg(tiny_digits, work, name, epochs=2):
    cfg = tiny(ELASTIC, tiny_digits, work, name, epochs)
    cfg.custom_hooks = [
        dict(type='mmnas_tricks.SampleSubnetHook', seed=2, trace=True),
        dict(type='mmnas_tricks.SequentialSearchHook', stages=STAGES)
    ]
    return cfg


def test_sampling_search_fixes_the_neck_before_the_head(tiny_digits, tmp_path):
    work = str(tmp_path / 'seq')
    runner = Runner.from_cfg(spos_cfg(tiny_digits, work, 'seq_spos'))
    runner.train()
    with open(osp.join(work, 'subnet_trace', 'rank0.jsonl')) as f:
        trace = [json.loads(json.loads(line)['subnet']) for line in f]
    per_epoch = len(trace) // 2
    neck = [n for n in trace[0] if n.startswith('neck')]
    head = [n for n in trace[0] if n.startswith('bbox_head')]

    def values(rows, names):
        return {tuple(json.dumps(r[n]) for n in names) for r in rows}

    first = named_mutables(runner.model)
    # stage 1: the neck varies, the head is held at its first choices
    assert len(values(trace[:per_epoch], neck)) > 1
    assert values(trace[:per_epoch], head) == {
        tuple(
            json.dumps(
                list(first[n].choices[0]) if isinstance(
                    first[n].choices[0], tuple) else first[n].choices[0])
            for n in head)
    }
    # stage 2: the neck is what stage 1 selected, the head varies
    neck_file, meta = read_subnet_file(
        osp.join(work, 'sequential', 'neck.yaml'))
    assert meta['stage'] == 'neck' and len(meta['scores']) >= 2
    assert len(values(trace[per_epoch:], neck)) == 1
    assert values(trace[per_epoch:],
                  neck) == values([json.loads(json.dumps(neck_file))], neck)
    assert len(values(trace[per_epoch:], head)) > 1
    # the end: everything fixed, the final subnet written
    final, _ = read_subnet_file(
        osp.join(work, 'sequential', 'final_subnet.yaml'))
    assert all(m.mode == 'fixed'
               for m in named_mutables(runner.model).values())
    assert {n: final[n] for n in neck} == {n: neck_file[n] for n in neck}
    stages, _ = runner.message_hub.get_scalar('train/sequential_stage').data
    assert list(stages) == [0.0] * per_epoch + [1.0] * per_epoch

    # resumed from the checkpoint saved before the neck was selected: the
    # neck is selected again, the same
    cfg = spos_cfg(tiny_digits, str(tmp_path / 'seq2'), 'seq_spos_resumed')
    cfg.resume = True
    cfg.load_from = osp.join(work, 'epoch_1.pth')
    resumed = Runner.from_cfg(cfg)
    resumed.train()
    again, _ = read_subnet_file(
        osp.join(str(tmp_path / 'seq2'), 'sequential', 'neck.yaml'))
    assert {n: again[n] for n in neck} == {n: neck_file[n] for n in neck}


def test_darts_stages_train_one_alpha_group_at_a_time(tiny_digits, tmp_path):
    work = str(tmp_path / 'seq_darts')
    cfg = tiny(DARTS, tiny_digits, work, 'seq_darts')
    cfg.custom_hooks.append(
        dict(
            type='mmnas_tricks.SequentialSearchHook',
            stages=[
                dict(name='neck', begin_epoch=0, include='neck.*'),
                dict(name='head', begin_epoch=1, include='bbox_head.*')
            ]))
    runner = Runner.from_cfg(cfg)
    alphas = {}

    def snapshot(r):
        alphas[r.epoch] = {
            n: m.arch_alpha.detach().clone()
            for n, m in named_mutables(r.model).items()
        }

    hook = next(h for h in runner.hooks if isinstance(h, SequentialSearchHook))
    original = hook.before_train_epoch

    def wrapped(r):
        original(r)
        snapshot(r)

    hook.before_train_epoch = wrapped
    runner.train()
    snapshot(runner)
    mutables = named_mutables(runner.model)
    neck = [n for n in mutables if n.startswith('neck')]
    head = [n for n in mutables if n.startswith('bbox_head')]
    # epoch 0 trains the neck's alpha only, epoch 1 the head's only
    assert all(not torch.equal(alphas[0][n], alphas[1][n]) for n in neck)
    assert all(torch.equal(alphas[0][n], alphas[1][n]) for n in head)
    assert all(torch.equal(alphas[1][n], alphas[2][n]) for n in neck)
    assert any(not torch.equal(alphas[1][n], alphas[2][n]) for n in head)
    neck_file, meta = read_subnet_file(
        osp.join(work, 'sequential', 'neck.yaml'))
    assert meta['select'] == 'argmax'
    assert all(neck_file[n] == mutables[n].argmax_choice() for n in neck)
    assert all(mutables[n].mode == 'fixed' for n in mutables)


@pytest.mark.parametrize('stages,message', [
    ([], 'at least one stage'),
    ([dict(begin_epoch=1, include='neck.*')], r'\[1\] must start at 0'),
    ([dict(begin_epoch=0)], 'names no mutables'),
    ([dict(begin_epoch=0, include='n', select='best')], "select='best'"),
    ([dict(begin_epoch=0, include='n', hold='mean')], "hold='mean'"),
    ([dict(begin_epoch=0, include='n', epochs=3)
      ], r"unknown keys \['epochs'\]"),
])
def test_bad_stage_schedules_are_named(stages, message):
    with pytest.raises(ValueError, match=message):
        SequentialSearchHook(stages)


def test_open_stages_stay_searched_and_are_selected_with_the_next(tmp_path):
    """The Once-for-All order: stages with select=None keep their mutables
    searched in the later stages (mock runner, DARTS)."""
    from types import SimpleNamespace

    from mmengine.logging import MessageHub

    from mmnas_tricks.engine.hooks import DartsHook
    from mmnas_tricks.models.mutables import set_mode
    from .toy import Toy
    model = Toy()
    set_mode(model, 'differentiable')
    with torch.no_grad():
        for m, best in ((model.a, 1), (model.b, 2), (model.down, 0)):
            m.arch_alpha.zero_()
            m.arch_alpha[best] = 1.0
    darts = DartsHook(arch_dataloader={})
    hook = SequentialSearchHook([
        dict(name='k', begin_epoch=0, include='a', select=None, hold='max'),
        dict(name='d', begin_epoch=1, include='b', select=None),
        dict(name='w', begin_epoch=2, include='down')
    ])
    runner = SimpleNamespace(
        model=model,
        hooks=[darts, hook],
        epoch=0,
        iter=0,
        max_epochs=3,
        work_dir=str(tmp_path),
        message_hub=MessageHub.get_instance('seq_open'))
    hook.before_train(runner)
    assert darts.include == ['a']
    assert model.b.mode == 'sampled' and model.down.mode == 'sampled'
    for epoch, want in ((1, ['a', 'b']), (2, ['a', 'b', 'down'])):
        runner.epoch = epoch
        hook.before_train_epoch(runner)
        assert darts.include == want
        assert all(
            model.get_submodule(n).mode == 'differentiable' for n in want)
        assert not hook.selected
    hook.after_train(runner)
    assert hook.selected == {'a': 'conv1x1', 'b': 'skip', 'down': 'conv3x3'}
    assert all(m.mode == 'fixed' for m in (model.a, model.b, model.down))
    final, _ = read_subnet_file(
        osp.join(str(tmp_path), 'sequential', 'final_subnet.yaml'))
    assert final == hook.selected


def test_progressive_shrinking_grows_the_sandwich_one_group_at_a_time(
        tmp_path):
    """Once-for-All's progressive order with the sandwich rule, nothing
    selected (select=None everywhere, as
    configs/nas/ablation_nsga2_fcos_whole-elastic_progressive_digits.py):
    a group not yet elastic holds its first choice in every sampled subnet
    (the sandwich's largest and smallest included), and after training
    nothing is fixed (mock runner)."""
    from mmnas_tricks.engine.hooks import SampleSubnetHook
    from mmnas_tricks.models.mutables import get_subnet
    from .toy import Toy, mock_runner
    model = Toy()
    sampler = SampleSubnetHook(seed=0, strategy='sandwich')
    hook = SequentialSearchHook([
        dict(name=n, begin_epoch=e, include=n, select=None)
        for n, e in (('a', 0), ('b', 1), ('down', 2))
    ])
    runner = mock_runner(model, [sampler, hook], epochs=3, name='ps')
    runner.work_dir = str(tmp_path)
    first = {n: m.choices[0] for n, m in named_mutables(model).items()}
    hook.before_train(runner)
    sampler.before_train(runner)
    seen = {}
    for epoch in range(3):
        runner.epoch = epoch
        hook.before_train_epoch(runner)
        for i in range(6):
            runner.iter = epoch * 6 + i
            sampler.before_train_iter(runner, i)
            seen.setdefault(epoch, []).append(get_subnet(model))
    for epoch, elastic in ((0, {'a'}), (1, {'a', 'b'}), (2, {'a', 'b',
                                                             'down'})):
        for name in first:
            values = {s[name] for s in seen[epoch]}
            if name in elastic:
                assert len(values) > 1, (epoch, name)
            else:
                assert values == {first[name]}, (epoch, name)
    hook.after_train(runner)
    assert hook.selected == {}
    assert all(m.mode != 'fixed' for m in named_mutables(model).values())
