"""Sequential (staged) search: one group of mutables after the other."""
import os.path as osp
import random
from typing import List

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log

from mmnas_tricks.models.mutables import (extreme_subnet, get_subnet,
                                          named_mutables, set_subnet)
from mmnas_tricks.registry import HOOKS
from mmnas_tricks.structures import dump_subnet, subnet_key
from .utils import check_companions, hooks_named, unwrap_model

SELECT = ('argmax', 'search', None)
HOLD = ('first', 'max', 'min')


def _stage(i: int, stage: dict) -> dict:
    stage = dict(stage)
    unknown = set(stage) - {
        'name', 'begin_epoch', 'include', 'types', 'select', 'hold',
        'num_candidates', 'calibrate_bn', 'score_key', 'rule'
    }
    if unknown:
        raise ValueError(f'stage {i}: unknown keys {sorted(unknown)}')
    if 'begin_epoch' not in stage:
        raise ValueError(f'stage {i} has no begin_epoch')
    if stage.get('include') is None and stage.get('types') is None:
        raise ValueError(f'stage {i} names no mutables: give include '
                         '(fnmatch patterns) and / or types (class names)')
    stage.setdefault('name', f'stage{i}')
    stage.setdefault('select', 'argmax')
    stage.setdefault('hold', 'first')
    stage.setdefault('num_candidates', 8)
    stage.setdefault('calibrate_bn', 10)
    stage.setdefault('score_key', 'coco/bbox_mAP')
    stage.setdefault('rule', 'greater')
    if stage['select'] not in SELECT:
        raise ValueError(f'stage {i}: select={stage["select"]!r} is not one '
                         f'of {list(SELECT)}')
    if not isinstance(stage['hold'], dict) and stage['hold'] not in HOLD:
        raise ValueError(f'stage {i}: hold={stage["hold"]!r} is not a '
                         f'subnet dict or one of {list(HOLD)}')
    if stage['rule'] not in ('greater', 'less'):
        raise ValueError(f'stage {i}: rule={stage["rule"]!r} is not '
                         "'greater' or 'less'")
    if isinstance(stage.get('include'), str):
        stage['include'] = [stage['include']]
    return stage


@HOOKS.register_module()
class SequentialSearchHook(Hook):
    """Search the mutables in stages (docs/tricks.md, T4.3): NAS-FCOS's neck
    first, then head (Wang et al., CVPR 2020), or Once-for-All's progressive
    order (Cai et al., ICLR 2020: kernel, then depth, then width).

    Each stage names its mutables (``include``: fnmatch patterns on the
    mutable names, and / or ``types``: class names such as
    ``'DepthChoice'``) and the epoch it begins. During a stage only its
    mutables (plus those of earlier stages kept open with ``select=None``)
    are searched: sampled by the :class:`SampleSubnetHook`, or given alpha
    trained by the :class:`DartsHook`; mutables of later stages are held at
    ``hold`` (``'first'``, ``'max'``, ``'min'`` or a subnet dict), those of
    finished stages stay at their selection (``fixed`` mode). When a stage
    ends (the next begins, or training ends) its mutables are fixed by the
    stage's ``select``:

    - ``'argmax'``: argmax alpha (with a DartsHook);
    - ``'search'``: the stage's mutables at their first choices and
      ``num_candidates`` random choices of them, each scored after BN
      calibration on ``calibrate_bn`` training batches on the validation
      split (``score_key``, ``rule``), the best kept;
    - ``None``: not fixed, searched on in the later stages and selected
      with the next stage that fixes (OFA's progressive order).

    The choice is written to ``<work_dir>/sequential/{name}.yaml`` (the whole
    subnet at that point, subnet-file format) and the final subnet to
    ``sequential/final_subnet.yaml``; the stage state is saved in
    checkpoints, so ``--resume`` continues with the same fixed choices.
    Logged: ``train/sequential_stage``.

    Args:
        stages (list[dict]): The stages, in order of ``begin_epoch`` (the
            first at 0). Keys: ``begin_epoch``, ``include`` / ``types``,
            ``name``, ``select`` (default ``'argmax'``), ``hold`` (default
            ``'first'``), and for ``'search'``: ``num_candidates`` (8),
            ``calibrate_bn`` (10), ``score_key`` (``'coco/bbox_mAP'``),
            ``rule`` (``'greater'``).
        seed (int): Seed of the ``'search'`` candidates. Defaults to 0.

    Example:
        >>> custom_hooks = [
        ...     dict(type='mmnas_tricks.SampleSubnetHook'),
        ...     dict(type='mmnas_tricks.SequentialSearchHook', stages=[
        ...         dict(name='neck', begin_epoch=0, include='neck.*',
        ...              select='search'),
        ...         dict(name='head', begin_epoch=6, include='bbox_head.*',
        ...              select='search')])]
    """

    priority = 'ABOVE_NORMAL'  # before the sampler / arch step of an epoch
    search_only = True

    def __init__(self, stages: List[dict], seed: int = 0) -> None:
        if not stages:
            raise ValueError('SequentialSearchHook needs at least one stage')
        self.stages = [_stage(i, s) for i, s in enumerate(stages)]
        begins = [s['begin_epoch'] for s in self.stages]
        if begins[0] != 0 or begins != sorted(set(begins)):
            raise ValueError(f'stage begin epochs {begins} must start at 0 '
                             'and increase')
        self.seed = int(seed)
        self.current = -1  # index of the running stage
        self.selected: dict = {}  # name -> choice, of finished stages
        self._open: List[str] = []  # searched on (select=None stages)

    # -- which mutables -----------------------------------------------------
    def _names(self, model, stage: dict) -> List[str]:
        found = named_mutables(model, stage.get('include'))
        types = stage.get('types')
        if types is not None:
            found = {
                n: m
                for n, m in found.items() if type(m).__name__ in types
            }
        names = [n for n in found if n not in self.selected]
        if not names:
            raise ValueError(f'stage {stage["name"]!r} matches no mutable '
                             f'(include={stage.get("include")}, '
                             f'types={stage.get("types")})')
        return names

    def before_train(self, runner) -> None:
        check_companions(self, runner, conflicts=('PathDropoutHook', ))
        self._sampler = (hooks_named(runner, 'SampleSubnetHook') or [None])[0]
        self._darts = (hooks_named(runner, 'DartsHook') or [None])[0]
        if (self._sampler is None) == (self._darts is None):
            raise ValueError('SequentialSearchHook needs one SampleSubnetHook '
                             'or one DartsHook in custom_hooks')
        for s in self.stages:
            if s['select'] == 'argmax' and self._darts is None:
                raise ValueError(f'stage {s["name"]!r}: select=\'argmax\' '
                                 'needs a DartsHook; use \'search\'')
        model = unwrap_model(runner)
        # resumed: re-apply the finished stages' choices
        for name, choice in self.selected.items():
            m = named_mutables(model)[name]
            m.current_choice = choice
            m.set_mode('fixed')
        self._all = list(named_mutables(model, searchable_only=True))
        restored, target = self.current, self._stage_at(runner.epoch)
        if 0 <= restored != target:  # saved just before a stage boundary
            self._start(runner, restored)
            self._finish(runner, restored)
        self._start(runner, target)

    def _stage_at(self, epoch: int) -> int:
        return max(i for i, s in enumerate(self.stages)
                   if s['begin_epoch'] <= epoch)

    def _start(self, runner, index: int) -> None:
        model = unwrap_model(runner)
        stage = self.stages[index]
        names = self._names(model, stage)
        active = list(dict.fromkeys(self._open + names))
        waiting = [
            n for n in self._all if n not in active and n not in self.selected
        ]
        hold = stage['hold']
        if isinstance(hold, dict):
            held = {n: hold[n] for n in waiting if n in hold}
        elif hold == 'first':
            held = {n: named_mutables(model)[n].choices[0] for n in waiting}
        else:
            extreme = extreme_subnet(model, hold)
            held = {n: extreme[n] for n in waiting}
        subnet = get_subnet(model)
        subnet.update(held)
        if self._darts is not None:
            for n in waiting:
                named_mutables(model)[n].set_mode('sampled')
            set_subnet(model, subnet)
            self._darts.set_searched(runner, active)
        else:
            set_subnet(model, subnet)
            self._sampler.include = active
        self.current = index
        print_log(
            f'SequentialSearchHook: stage {stage["name"]!r} from epoch '
            f'{runner.epoch}: searching {len(active)} mutables, '
            f'{len(held)} held '
            f'({hold if not isinstance(hold, dict) else "given"}), '
            f'{len(self.selected)} fixed',
            logger='current')

    # -- stage boundaries --------------------------------------------------
    def before_train_epoch(self, runner) -> None:
        index = self._stage_at(runner.epoch)
        if index != self.current:
            self._finish(runner, self.current)
            self._start(runner, index)

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch=None) -> None:
        runner.message_hub.update_scalar('train/sequential_stage',
                                         float(self.current))

    def after_train(self, runner) -> None:
        if self.current >= 0:
            self._finish(runner, self.current)
        model = unwrap_model(runner)
        if is_main_process():
            dump_subnet(
                get_subnet(model),
                osp.join(runner.work_dir, 'sequential', 'final_subnet.yaml'),
                meta=dict(
                    source='SequentialSearchHook',
                    selected=len(self.selected)))

    def _finish(self, runner, index: int) -> None:
        stage = self.stages[index]
        model = unwrap_model(runner)
        names = [n for n in self._names(model, stage)]
        meta = dict(
            source='SequentialSearchHook',
            stage=stage['name'],
            select=stage['select'],
            epoch=runner.epoch)
        if stage['select'] is None:
            self._open = list(dict.fromkeys(self._open + names))
            return
        # the open stages' mutables are selected with this one
        targets = list(dict.fromkeys(self._open + names))
        if stage['select'] == 'argmax':
            choice = {
                n: named_mutables(model)[n].argmax_choice()
                for n in targets
            }
        else:
            choice, scores = self._search(runner, targets, stage)
            meta['scores'] = scores
        self._open = []
        for n, c in choice.items():
            m = named_mutables(model)[n]
            m.set_mode('sampled')
            m.current_choice = c
            m.set_mode('fixed')
        self.selected.update(choice)
        print_log(
            f'SequentialSearchHook: stage {stage["name"]!r} fixed '
            f'{choice}',
            logger='current')
        if is_main_process():
            dump_subnet(
                get_subnet(model),
                osp.join(runner.work_dir, 'sequential',
                         f'{stage["name"]}.yaml'),
                meta=meta)

    def _search(self, runner, names, stage):
        from mmnas_tricks.engine.scoring import score_subnet
        model = unwrap_model(runner)
        mutables = named_mutables(model)
        for n in names:  # single candidates while scoring
            mutables[n].set_mode('sampled')
        # the stage's mutables at their first choice (the plain
        # architecture), not at whatever was sampled last: the same
        # candidates after a resume
        base = get_subnet(model)
        base.update({n: mutables[n].choices[0] for n in names})
        rng = random.Random(f'{self.seed}-{stage["name"]}')
        candidates = {subnet_key(base): base}
        for _ in range(20 * stage['num_candidates']):
            if len(candidates) > stage['num_candidates']:
                break
            c = dict(base)
            c.update({n: rng.choice(mutables[n].choices) for n in names})
            candidates.setdefault(subnet_key(c), c)
        calib = []
        if stage['calibrate_bn'] > 0:
            for data in runner.train_dataloader:
                calib.append(data)
                if len(calib) >= stage['calibrate_bn']:
                    break
        scores, best, best_key = {}, None, None
        sign = 1 if stage['rule'] == 'greater' else -1
        for key, subnet in candidates.items():
            metrics = score_subnet(model, subnet, runner.val_dataloader,
                                   runner.val_evaluator, calib,
                                   stage['calibrate_bn'], stage['score_key'])
            score = float(metrics[stage['score_key']])
            scores[key] = score
            if best is None or sign * score > sign * best:
                best, best_key = score, key
        model.train()
        chosen = candidates[best_key]
        return {n: chosen[n] for n in names}, scores

    # -- checkpoints --------------------------------------------------------
    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['sequential'] = dict(
            current=self.current, selected=self.selected, open=self._open)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get('sequential')
        if state is not None:
            self.selected = dict(state['selected'])
            self._open = list(state['open'])
            self.current = state['current']
