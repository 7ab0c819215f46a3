"""Perturbation-based architecture selection (DARTS-PT), as a Loop."""
import math
import os.path as osp
import random
from typing import List, Optional, Sequence, Union

import torch
from mmengine.dist import is_main_process
from mmengine.logging import print_log
from mmengine.utils import ProgressBar

from mmnas_tricks.models.mutables import (InputChoice, argmax_subnet,
                                          get_subnet, named_mutables)
from mmnas_tricks.registry import LOOPS
from mmnas_tricks.structures import dump_subnet
from mmnas_tricks.utils.io import (atomic_write, dump_csv_atomic,
                                   dump_json_atomic)
from ..few_shot import choice_key
from ..scoring import score_of
from .supernet_loop import SupernetLoop

EDGE_ORDERS = ('random', 'sequential')
BN_MODES = ('train', 'eval')


@LOOPS.register_module()
class PerturbationSelectionLoop(SupernetLoop):
    """Select the architecture of a trained differentiable (DARTS) supernet
    edge by edge by perturbation, not by ``argmax alpha`` (DARTS-PT, Wang et
    al., ICLR 2021; docs/tricks.md, T5.2). Used as ``train_cfg`` with the
    trained supernet in ``supernet_checkpoint`` (or ``load_from``).

    At every decision one undecided mutable ("edge") is taken (at random,
    seeded, or in module order); each of its candidates is removed in turn
    (its weight in the mix set to 0, the others unchanged, as DARTS-PT's
    projection) and the supernet scored on the validation data; the
    candidate whose removal hurts the score most is kept: the mutable is
    fixed to it. After every op edge, DARTS-PT's topology projection decides
    the nodes: an :class:`~mmnas_tricks.models.mutables.InputChoice` that
    keeps ``k > 1`` of its inputs and sums them (``aggregate='sum'``) drops
    input edges one at a time, each time the one whose removal gives the
    best score (the least important), until ``k`` are left. Between
    decisions the supernet is fine-tuned for ``tune_iters`` training
    iterations (the weight optimizer's learning rate times ``lr_ratio``,
    cosine-annealed to ``eta_min_ratio`` times the base
    over the whole selection; a ``DartsHook`` in ``custom_hooks`` keeps
    taking architecture steps for the undecided mutables). The loop owns the
    learning rate: the config's parameter schedulers are not stepped.

    Scoring keeps the model in train mode by default (batch statistics, as
    DARTS-PT) and restores the BatchNorm running statistics afterwards, so
    scoring changes no weight or buffer.

    Results in ``<work_dir>/perturbation_selection/``: ``subnet.yaml`` (the
    selected subnet, the format of ``tools/export_subnet.py``),
    ``argmax_subnet.yaml`` (argmax alpha of the loaded supernet, for
    comparison), ``decisions.json`` / ``.csv`` (every score of every
    removal). After every decision the state and the fine-tuned weights are
    written atomically (``state.json``, ``supernet.pth``); with
    ``--resume`` a killed selection continues from the last decision.

    Args:
        runner: The runner.
        dataloader (DataLoader | dict): Training data of the fine-tuning.
        tune_iters (int): Fine-tuning iterations between decisions (0:
            none). Defaults to 50.
        lr_ratio (float): Fine-tuning learning rate over the optimizer's.
            Defaults to 0.1 (DARTS-PT: base_lr / 10).
        eta_min_ratio (float): Final learning rate over the optimizer's.
            Defaults to 0.04 (DARTS-PT: 0.001 with base 0.025).
        edge_order (str): ``'random'`` (DARTS-PT) or ``'sequential'``.
            Defaults to ``'random'``.
        include (str | Sequence[str], optional): fnmatch patterns of the
            mutables to select; others keep their mode and choice. Defaults
            to None (every searchable mutable).
        score_key (str): The metric. Defaults to ``'coco/bbox_mAP'``.
        rule (str): ``'greater'`` or ``'less'`` is better. Defaults to
            ``'greater'``.
        bn_mode (str): ``'train'`` (batch statistics) or ``'eval'`` for
            scoring. Defaults to ``'train'``.
        seed (int): Seed of the edge order. Defaults to 0.
        val_dataloader (dict, optional): Scoring data. Defaults to None (the
            config's ``val_dataloader``).
        evaluator (dict | list, optional): Defaults to None (the config's
            ``val_evaluator``).
        supernet_checkpoint (str, optional): The trained supernet. Defaults
            to None (the runner's ``load_from``).
    """

    def __init__(self,
                 runner,
                 dataloader,
                 tune_iters: int = 50,
                 lr_ratio: float = 0.1,
                 eta_min_ratio: float = 0.04,
                 edge_order: str = 'random',
                 include: Optional[Union[str, Sequence[str]]] = None,
                 score_key: str = 'coco/bbox_mAP',
                 rule: str = 'greater',
                 bn_mode: str = 'train',
                 seed: int = 0,
                 val_dataloader: Optional[dict] = None,
                 evaluator=None,
                 supernet_checkpoint: Optional[str] = None) -> None:
        super().__init__(
            runner,
            dataloader,
            val_dataloader,
            evaluator,
            supernet_checkpoint,
            score_key=score_key,
            rule=rule,
            seed=seed)
        if tune_iters < 0:
            raise ValueError(f'tune_iters={tune_iters} must be >= 0')
        if lr_ratio <= 0 or eta_min_ratio < 0:
            raise ValueError(f'lr_ratio={lr_ratio} must be > 0 and '
                             f'eta_min_ratio={eta_min_ratio} >= 0')
        for name, value, valid in (('edge_order', edge_order, EDGE_ORDERS),
                                   ('bn_mode', bn_mode, BN_MODES)):
            if value not in valid:
                raise ValueError(f'{name}={value!r} is not one of '
                                 f'{list(valid)}')
        self.tune_iters = int(tune_iters)
        self.lr_ratio = lr_ratio
        self.eta_min_ratio = eta_min_ratio
        self.edge_order = edge_order
        self.include = include
        self.bn_mode = bn_mode
        self.decisions: List[dict] = []
        self.argmax: Optional[dict] = None
        self._iter = 0
        self._planned = 0

    OUT_FOLDER = 'perturbation_selection'

    # -- progress (the skeleton's: a round is a decision; iterations are
    # the fine-tuning's) ----------------------------------------------------
    @property
    def planned_rounds(self) -> int:
        return max(self._planned, 1)

    @property
    def rounds_done(self) -> int:
        return len(self.decisions)

    @property
    def max_iters(self) -> int:
        return max(self._planned - 1, 0) * self.tune_iters

    @property
    def iter(self) -> int:
        return self._iter

    # -- state ------------------------------------------------------------
    def _darts_hook(self):
        hooks = [
            h for h in self.runner.hooks if type(h).__name__ == 'DartsHook'
        ]
        return hooks[0] if hooks else None

    def _save(self) -> None:
        if not is_main_process():
            return
        state = dict(
            model=self.model.state_dict(),
            optimizer=self.runner.optim_wrapper.state_dict())
        hook = self._darts_hook()
        if hook is not None and hook.arch_optimizer is not None:
            state['arch_optimizer'] = hook.arch_optimizer.state_dict()
        atomic_write(
            osp.join(self.out_dir, 'supernet.pth'),
            lambda f: torch.save(state, f))
        self.save_state(
            dict(
                decisions=self.decisions, iter=self._iter, argmax=self.argmax))

    def _resume(self) -> bool:
        state = self.read_state()
        weights = osp.join(self.out_dir, 'supernet.pth')
        if state is None or not osp.isfile(weights):
            return False
        saved = torch.load(weights, map_location='cpu', weights_only=True)
        self.model.load_state_dict(saved['model'], strict=True)
        self.runner.optim_wrapper.load_state_dict(saved['optimizer'])
        hook = self._darts_hook()
        if hook is not None and 'arch_optimizer' in saved:
            hook.arch_optimizer.load_state_dict(saved['arch_optimizer'])
        self.decisions = state['decisions']
        self.argmax = state['argmax']
        self._iter = state['iter']
        mutables = named_mutables(self.model)
        for d in self.decisions:
            mutables[d['mutable']].current_choice = d['choice']
            mutables[d['mutable']].set_mode('fixed')
        print_log(
            f'perturbation selection resumed after '
            f'{len(self.decisions)} decisions',
            logger='current')
        return True

    # -- scoring ----------------------------------------------------------
    def score(self) -> float:
        """The score of the supernet as it is (mixing weights included);
        no weight or buffer changes."""
        model = self.model
        buffers = {k: v.clone() for k, v in model.named_buffers()}
        model.train(self.bn_mode == 'train')
        try:
            with torch.no_grad():
                for data in self.val_dataloader:
                    outputs = model.val_step(data)
                    self.evaluator.process(
                        data_samples=outputs, data_batch=data)
            metrics = self.evaluator.evaluate(len(self.val_dataloader.dataset))
        finally:
            with torch.no_grad():
                for k, v in model.named_buffers():
                    v.copy_(buffers[k])
            model.train()
        return score_of(metrics, self.score_key)

    def decide_topology(self, name: str, mutable) -> dict:
        """DARTS-PT's topology projection of one node: drop, one at a time,
        the input edge whose removal gives the best score, until the node
        keeps ``num_chosen``; fix it to those."""
        if mutable.aggregate != 'sum':
            raise ValueError(
                f'{name}: an InputChoice keeping {mutable.num_chosen} inputs '
                'needs aggregate=\'sum\' (a node summing its edges) for the '
                'topology projection')
        base = mutable.edge_weights().detach().clone()
        active = list(range(mutable.num_inputs))
        rounds = []
        try:
            while len(active) > mutable.num_chosen:
                scores = {}
                for edge in active:
                    w = base.clone()
                    w[[i for i in range(len(w)) if i not in active]] = 0.0
                    w[edge] = 0.0
                    mutable.override_edge_weights(w, self)
                    scores[edge] = self.score()
                    print_log(
                        f'decision {len(self.decisions)}: {name} without '
                        f'input {edge}: {self.score_key}={scores[edge]}',
                        logger='current')
                # the least important: the best score without it; ties:
                # the smaller weight, then order
                drop = max(
                    active,
                    key=lambda e: (self.sign * scores[e], -float(base[e]), -e))
                rounds.append(dict(scores=scores, dropped=drop))
                active.remove(drop)
        finally:
            mutable.release_weights(self)
        mutable.current_choice = tuple(active)
        mutable.set_mode('fixed')
        return dict(
            mutable=name,
            kind='topology',
            choice=mutable.current_choice,
            rounds=rounds,
            weights={str(i): float(w)
                     for i, w in enumerate(base)})

    def decide(self, name: str, mutable) -> dict:
        """Score the supernet without each candidate of ``mutable`` and fix
        it to the one whose removal hurts most."""
        base = mutable.arch_weights().detach().clone()
        scores = []
        bar = ProgressBar(mutable.num_choices) if is_main_process() else None
        try:
            for i, choice in enumerate(mutable.choices):
                w = base.clone()
                w[i] = 0.0
                mutable.override_weights(w, self)
                scores.append(self.score())
                print_log(
                    f'decision {len(self.decisions)}: {name} without '
                    f'{choice}: {self.score_key}={scores[-1]}',
                    logger='current')
                if bar is not None:
                    bar.update()
        finally:
            mutable.release_weights(self)
        # the worst score without it; ties: the larger weight, then order
        best = min(
            range(len(scores)),
            key=lambda i: (self.sign * scores[i], -float(base[i]), i))
        mutable.current_choice = mutable.choices[best]
        mutable.set_mode('fixed')
        return dict(
            mutable=name,
            choice=mutable.choices[best],
            scores={choice_key(c): s
                    for c, s in zip(mutable.choices, scores)},
            weights={
                choice_key(c): float(w)
                for c, w in zip(mutable.choices, base)
            })

    # -- fine-tuning ------------------------------------------------------
    def _set_lr(self) -> None:
        total = max(self.max_iters, 1)
        t = min(self._iter, total) / total
        factor = self.eta_min_ratio + (self.lr_ratio - self.eta_min_ratio) * \
            (1 + math.cos(math.pi * t)) / 2
        for group, base in zip(self.runner.optim_wrapper.param_groups,
                               self._base_lrs):
            group['lr'] = base * factor

    def _next_batch(self):
        try:
            return next(self._data)
        except StopIteration:
            sampler = getattr(self.dataloader, 'sampler', None)
            if hasattr(sampler, 'set_epoch'):
                sampler.set_epoch(self._iter)
            self._data = iter(self.dataloader)
            return next(self._data)

    def tune(self, undecided: List[str]) -> None:
        hook = self._darts_hook()
        if hook is not None:
            hook.set_searched(self.runner, undecided)
        self.model.train()
        if not self.tune_iters:
            return
        # a fine-tuning round is an "epoch" to the hooks (iteration timer,
        # logger, checkpoints by epoch)
        self.runner.call_hook('before_train_epoch')
        for _ in range(self.tune_iters):
            self._set_lr()
            data = self._next_batch()
            self.runner.call_hook(
                'before_train_iter', batch_idx=self._iter, data_batch=data)
            outputs = self.runner.model.train_step(
                data, optim_wrapper=self.runner.optim_wrapper)
            self.runner.call_hook(
                'after_train_iter',
                batch_idx=self._iter,
                data_batch=data,
                outputs=outputs)
            self._iter += 1
        self.runner.call_hook('after_train_epoch')

    # -- the loop ---------------------------------------------------------
    def _order(self, names: List[str]) -> List[str]:
        if self.edge_order == 'sequential':
            return list(names)
        return random.Random(self.seed).sample(names, len(names))

    def run(self):
        runner = self.runner
        # the loop owns the learning rate (DARTS-PT's reset to lr / 10)
        runner.param_schedulers = None
        self._base_lrs = [
            g.get('initial_lr', g['lr'])
            for g in runner.optim_wrapper.param_groups
        ]
        self._load_supernet()
        mutables = named_mutables(
            self.model, self.include, searchable_only=True)
        if not mutables:
            raise ValueError('PerturbationSelectionLoop found no searchable '
                             'mutable' +
                             (f' matching include={self.include!r}' if self.
                              include else ''))
        if self._darts_hook() is None:
            for m in mutables.values():
                m.set_mode('differentiable')
                m.arch_alpha.requires_grad_(False)  # not a weight
        # operations first, then the nodes' topology (DARTS-PT's order)
        nodes = [
            n for n, m in mutables.items()
            if isinstance(m, InputChoice) and m.num_chosen > 1
        ]
        order = self._order([n for n in mutables if n not in nodes
                             ]) + self._order(nodes)
        self._planned = len(order)
        runner.call_hook('before_train')
        if not self._resume():
            self.argmax = argmax_subnet(self.model, list(mutables))
        self._data = iter(self.dataloader)
        decided = {d['mutable'] for d in self.decisions}
        for name in order:
            if name in decided:
                continue
            decide = self.decide_topology if name in nodes else self.decide
            self.decisions.append(decide(name, mutables[name]))
            decided.add(name)
            undecided = [n for n in order if n not in decided]
            print_log(
                f'decision {len(self.decisions)}/{len(order)}: {name} '
                f'-> {self.decisions[-1]["choice"]} (argmax alpha: '
                f'{self.argmax[name]})',
                logger='current')
            if undecided:
                self.tune(undecided)
            self._save()
        if is_main_process():
            self._write_results()
        runner.call_hook('after_train')
        return self.model

    def _rows(self, i: int, d: dict, without: str) -> List[dict]:
        """The CSV rows of decision ``i``: one per removed candidate (an op
        edge) or per input edge and round (a node's topology)."""
        if d.get('kind') != 'topology':
            return [{
                'decision': i,
                'mutable': d['mutable'],
                'candidate': c,
                'weight': d['weights'][c],
                without: s,
                'kept': c == choice_key(d['choice']),
                'argmax alpha': c == choice_key(self.argmax[d['mutable']])
            } for c, s in d['scores'].items()]
        argmax = self.argmax[d['mutable']]
        return [{
            'decision': i,
            'mutable': d['mutable'],
            'candidate': f'input {e}',
            'weight': d['weights'][str(e)],
            without: s,
            'kept': int(e) in d['choice'],
            'argmax alpha': int(e) in argmax
        } for r in d['rounds'] for e, s in r['scores'].items()]

    def selected_subnet(self) -> dict:
        return get_subnet(self.model)

    def _write_results(self) -> None:
        subnet = self.selected_subnet()
        meta = dict(
            source='PerturbationSelectionLoop',
            score_key=self.score_key,
            order=[d['mutable'] for d in self.decisions])
        dump_subnet(subnet, osp.join(self.out_dir, 'subnet.yaml'), meta=meta)
        argmax = dict(subnet, **self.argmax)
        dump_subnet(
            argmax,
            osp.join(self.out_dir, 'argmax_subnet.yaml'),
            meta=dict(source='argmax alpha of the loaded supernet'))
        dump_json_atomic(self.decisions,
                         osp.join(self.out_dir, 'decisions.json'))
        without = f'{self.score_key} without it'
        dump_csv_atomic([
            row for i, d in enumerate(self.decisions)
            for row in self._rows(i, d, without)
        ],
                        osp.join(self.out_dir, 'decisions.csv'),
                        fields=[
                            'decision', 'mutable', 'candidate', 'weight',
                            without, 'kept', 'argmax alpha'
                        ])
