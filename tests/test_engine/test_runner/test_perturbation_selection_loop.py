"""PerturbationSelectionLoop (DARTS-PT, docs/tricks.md, T5.2) on a toy supernet
built so that one op clearly matters while alpha prefers another: the loop
keeps the op that matters, argmax alpha does not; results, resume, and the
loop with a DartsHook fine-tuning between decisions."""
import csv
import json
import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

from mmnas_tricks.models.mutables import InputChoice, OpChoice, named_mutables
from mmnas_tricks.registry import MODELS
from mmnas_tricks.structures import read_subnet_file


@MODELS.register_module(force=True)
class ToyPTKeep(nn.Module):
    """Passes the signal (a learnable scale)."""

    def __init__(self, in_channels, out_channels, stride=1, **kwargs):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x):
        return x * self.scale


@MODELS.register_module(force=True)
class ToyPTZero(nn.Module):
    """Loses the signal."""

    def __init__(self, in_channels, out_channels, stride=1, **kwargs):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return x * 0 + self.bias * 0


@MODELS.register_module(force=True)
class ToyPTNegate(nn.Module):
    """Flips the signal."""

    def __init__(self, in_channels, out_channels, stride=1, **kwargs):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x):
        return -x * self.scale


class ToySupernet(BaseModel):
    """``edge2(edge1(x))``; the label is the sign of x.

    edge1: ``keep`` carries the signal, ``zero`` loses it, and alpha
    prefers ``zero`` (softmax 0.98): argmax alpha picks ``zero``, which
    makes the network guess, while removing ``keep`` destroys it.
    edge2: ``keep`` or ``negate``, alpha prefers ``keep`` (both methods
    should keep it).
    """

    def __init__(self):
        super().__init__()
        self.edge1 = OpChoice(
            dict(keep=dict(type='ToyPTKeep'), zero=dict(type='ToyPTZero')), 1,
            1)
        self.edge2 = OpChoice(
            dict(keep=dict(type='ToyPTKeep'), negate=dict(type='ToyPTNegate')),
            1, 1)
        with torch.no_grad():
            self.edge1.arch_alpha.copy_(torch.tensor([-2.0, 2.0]))
            self.edge2.arch_alpha.copy_(torch.tensor([1.0, 0.0]))

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.edge2(self.edge1(inputs)).flatten()
        if mode == 'loss':
            target = (data_samples > 0).float()
            return dict(
                loss=nn.functional.binary_cross_entropy_with_logits(
                    out * 10, target))
        if mode == 'predict':
            return [
                dict(pred=float(o > 0), label=float(t > 0))
                for o, t in zip(out, data_samples)
            ]
        return out


class SignData(Dataset):

    def __init__(self, n=32, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, 1, generator=g)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return dict(inputs=self.x[i], data_samples=self.x[i, 0])


class Accuracy(BaseMetric):

    def process(self, data_batch, data_samples):
        self.results.extend(
            float(d['pred'] == d['label']) for d in data_samples)

    def compute_metrics(self, results):
        return dict(accuracy=sum(results) / len(results))


def loader(seed=0):
    return dict(
        dataset=SignData(seed=seed),
        batch_size=8,
        num_workers=0,
        sampler=dict(type='DefaultSampler', shuffle=True, seed=0),
        collate_fn=dict(type='default_collate'))


def make_runner(work_dir, name, darts=False, model=None, metric=None, **loop):
    hooks = []
    if darts:
        hooks.append(
            dict(
                type='mmnas_tricks.DartsHook', arch_dataloader=loader(seed=1)))
    train_cfg = dict(
        type='mmnas_tricks.PerturbationSelectionLoop',
        score_key='accuracy',
        edge_order='sequential',
        tune_iters=2)
    train_cfg.update(loop)
    return Runner(
        model=model or ToySupernet(),
        work_dir=str(work_dir),
        experiment_name=name,
        train_dataloader=loader(),
        val_dataloader=loader(seed=2),
        val_evaluator=[metric or Accuracy()],
        val_cfg=dict(),
        train_cfg=train_cfg,
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        custom_hooks=hooks,
        default_hooks=dict(checkpoint=None),
        default_scope='mmnas_tricks')


def test_selection_keeps_the_op_that_matters_where_argmax_does_not(tmp_path):
    runner = make_runner(tmp_path, 'pt_toy')
    runner.train()
    loop = runner.train_loop
    out = osp.join(str(tmp_path), 'perturbation_selection')
    subnet, meta = read_subnet_file(osp.join(out, 'subnet.yaml'))
    argmax, _ = read_subnet_file(osp.join(out, 'argmax_subnet.yaml'))
    assert argmax == {'edge1': 'zero', 'edge2': 'keep'}
    assert subnet == {'edge1': 'keep', 'edge2': 'keep'}
    assert meta['order'] == ['edge1', 'edge2']
    first = loop.decisions[0]
    # without keep the network guesses (the sign of 0: all negative); without
    # zero it is exact
    assert first['scores']['"zero"'] == 1.0
    assert first['scores']['"keep"'] < 0.8
    with open(osp.join(out, 'decisions.csv')) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    kept = [r for r in rows if r['kept'] == 'True']
    assert [(r['mutable'], r['candidate'])
            for r in kept] == [('edge1', '"keep"'), ('edge2', '"keep"')]
    # fine-tuned between the decisions only (2 decisions, 1 gap)
    assert loop.iter == 2
    mutables = named_mutables(runner.model)
    assert all(m.mode == 'fixed' for m in mutables.values())


def test_selection_with_darts_hook_resumes(tmp_path):
    runner = make_runner(tmp_path, 'pt_darts', darts=True, tune_iters=3)
    alpha2 = runner.model.edge2.arch_alpha.detach().clone()
    runner.train()
    loop = runner.train_loop
    out = osp.join(str(tmp_path), 'perturbation_selection')
    subnet, _ = read_subnet_file(osp.join(out, 'subnet.yaml'))
    assert subnet == {'edge1': 'keep', 'edge2': 'keep'}
    # the DARTS hook took architecture steps on the undecided edge only
    assert not torch.equal(runner.model.edge2.arch_alpha.detach(), alpha2)
    state = json.load(open(osp.join(out, 'state.json')))
    assert [d['mutable'] for d in state['decisions']] == ['edge1', 'edge2']

    # resumed after both decisions: nothing is scored again
    again = make_runner(tmp_path, 'pt_darts_resume', darts=True, tune_iters=3)
    again._resume = True
    scored = []
    real = type(loop).score
    type(loop).score = lambda self: scored.append(1) or real(self)
    try:
        again.train()
    finally:
        type(loop).score = real
    assert scored == []
    assert again.train_loop.decisions == loop.decisions
    resumed, _ = read_subnet_file(osp.join(out, 'subnet.yaml'))
    assert resumed == subnet


def test_bad_arguments_name_the_valid_values(tmp_path):
    with pytest.raises(ValueError, match="'random', 'sequential'"):
        make_runner(tmp_path, 'pt_bad', edge_order='greedy').train()
    with pytest.raises(ValueError, match="'train', 'eval'"):
        make_runner(tmp_path, 'pt_bad2', bn_mode='batch').train()


class Killed(Exception):
    pass


def test_selection_killed_after_a_decision_resumes_the_rest(tmp_path):
    from mmnas_tricks.engine.runner import PerturbationSelectionLoop
    real = PerturbationSelectionLoop.decide
    calls = []

    def dying(self, name, mutable):
        calls.append(name)
        if len(calls) == 2:
            raise Killed()
        return real(self, name, mutable)

    PerturbationSelectionLoop.decide = dying
    try:
        with pytest.raises(Killed):
            make_runner(tmp_path, 'pt_kill', darts=True).train()
    finally:
        PerturbationSelectionLoop.decide = real
    out = osp.join(str(tmp_path), 'perturbation_selection')
    state = json.load(open(osp.join(out, 'state.json')))
    assert [d['mutable'] for d in state['decisions']] == ['edge1']
    assert not osp.isfile(osp.join(out, 'subnet.yaml'))

    calls.clear()
    PerturbationSelectionLoop.decide = dying
    try:
        again = make_runner(tmp_path, 'pt_kill_resume', darts=True)
        again._resume = True
        again.train()
    finally:
        PerturbationSelectionLoop.decide = real
    assert calls == ['edge2']  # edge1 was not decided again
    assert again.train_loop.iter == 2  # the fine-tuning is not redone
    subnet, _ = read_subnet_file(osp.join(out, 'subnet.yaml'))
    assert subnet == {'edge1': 'keep', 'edge2': 'keep'}


class ToyNode(BaseModel):
    """A DARTS node after an op edge: the node keeps 2 of its 3 input
    edges and sums them (``x``, ``x / 2`` and ``-0.9 x``, a useless edge
    that hurts). Alpha prefers the subsets that keep the useless edge. The
    score is the mean margin ``out * sign(x)``."""

    def __init__(self):
        super().__init__()
        self.edge = OpChoice(
            dict(keep=dict(type='ToyPTKeep'), zero=dict(type='ToyPTZero')), 1,
            1)
        self.node = InputChoice(3, 2, aggregate='sum')
        with torch.no_grad():
            self.edge.arch_alpha.copy_(torch.tensor([1.0, 0.0]))
            # subsets (0, 1), (0, 2), (1, 2): argmax keeps edge 2
            self.node.arch_alpha.copy_(torch.tensor([-1.0, 1.0, 0.5]))

    def forward(self, inputs, data_samples=None, mode='tensor'):
        x = self.edge(inputs)
        out = self.node([x, 0.5 * x, -0.9 * x]).flatten()
        if mode == 'predict':
            return [
                dict(margin=float(o * torch.sign(t)))
                for o, t in zip(out, data_samples)
            ]
        return dict(loss=((out - data_samples)**2).mean())


class Margin(BaseMetric):

    def process(self, data_batch, data_samples):
        self.results.extend(d['margin'] for d in data_samples)

    def compute_metrics(self, results):
        return dict(margin=sum(results) / len(results))


def test_topology_projection_drops_the_useless_edge(tmp_path):
    runner = make_runner(
        tmp_path,
        'pt_topology',
        model=ToyNode(),
        metric=Margin(),
        score_key='margin')
    runner.train()
    loop = runner.train_loop
    subnet = loop.selected_subnet()
    assert subnet == {'edge': 'keep', 'node': (0, 1)}
    assert loop.argmax['node'] == (0, 2)  # argmax alpha keeps the bad one
    topo = loop.decisions[-1]
    assert [d['mutable'] for d in loop.decisions] == ['edge', 'node']
    assert topo['kind'] == 'topology' and len(topo['rounds']) == 1
    scores = topo['rounds'][0]['scores']
    # the edges mixed with their current weights (each input's share of
    # softmax(alpha) over the subsets: 0.72, 0.47, 1.01): only without the
    # useless edge is the margin positive
    assert scores[2] > 0 > max(scores[0], scores[1])
    assert topo['rounds'][0]['dropped'] == 2
    out = osp.join(str(tmp_path), 'perturbation_selection')
    with open(osp.join(out, 'decisions.csv')) as f:
        rows = [r for r in csv.DictReader(f) if r['mutable'] == 'node']
    assert [(r['candidate'], r['kept'], r['argmax alpha'])
            for r in rows] == [('input 0', 'True', 'True'),
                               ('input 1', 'True', 'False'),
                               ('input 2', 'False', 'True')]
    # the export sums the kept inputs
    from mmnas_tricks.models.mutables import export_static
    static = export_static(runner.model)
    assert type(static.node).__name__ == 'SelectInputs'
    x = torch.tensor([[1.0], [-2.0]])
    assert torch.allclose(static.node([x, 0.5 * x, -0.9 * x]), 1.5 * x)
