"""Evolutionary (and random) search over a trained supernet, as a Loop."""
import csv
import io
import json
import os.path as osp
import random
import time
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.dist import is_main_process
from mmengine.logging import print_log
from mmengine.utils import ProgressBar

from mmnas_tricks.models.mutables import (extreme_subnet, get_subnet,
                                          named_mutables, sample_subnet,
                                          set_subnet, subnet_param_count,
                                          validate_subnet)
from mmnas_tricks.models.resources import ResourceTable
from mmnas_tricks.registry import LOOPS
from mmnas_tricks.structures import dump_subnet, subnet_key
from mmnas_tricks.utils.io import atomic_write_text, dump_json_atomic
from ..bn_calibration import calibrate_bn
from ..few_shot import FewShotRouter
from ..scoring import score_subnet
from .supernet_loop import SupernetLoop

RULES = ('greater', 'less')
SUBNET_BOUNDS = ('first', 'min', 'max')


def _subnet_bound(bound) -> Optional[Tuple[float, str]]:
    """``'first'`` -> (1.0, 'first'), ``'0.9*first'`` -> (0.9, 'first');
    None when ``bound`` is not such a string."""
    if not isinstance(bound, str):
        return None
    scale, _, which = bound.replace(' ', '').rpartition('*')
    if which not in SUBNET_BOUNDS:
        return None
    try:
        return (float(scale) if scale else 1.0), which
    except ValueError:
        return None


@LOOPS.register_module()
class EvolutionSearchLoop(SupernetLoop):
    """Evolutionary architecture search over a trained one-shot supernet
    (SPOS, Guo et al., ECCV 2020; DetNAS; TRICKS.md T1.4, 6.2), used as
    ``train_cfg`` with ``load_from`` the supernet checkpoint.

    Generation 0 is ``population_size`` random subnets; every later one
    ``num_mutation`` mutants (each searchable choice resampled with
    ``mutate_prob``) and ``num_crossover`` children (each choice from one of
    two parents) of the global top ``top_k``, filled up with random subnets.
    Candidates are deduplicated (a subnet is scored once) and must meet the
    ``constraints`` on FLOPs / params of the whole model at ``input_shape``.
    Each is scored after BN calibration on ``calibrate_bn`` training batches
    (fixed for the whole search). Ties break on fewer FLOPs, then on the
    subnet, so the result does not depend on evaluation order.

    State (every score, the top k, the generation, the random state) is
    written atomically to ``<work_dir>/search/state.json`` after every
    generation; with ``resume=True`` (``tools/train.py --resume``) a killed
    search continues and ends with the result of an uninterrupted one.
    Results: ``candidates.csv`` / ``.json`` (every scored subnet, with the
    seconds its FLOPs count, BN calibration and evaluation took),
    ``score_vs_flops.png`` (Pareto front), ``best_subnet.yaml`` and, with
    ``export_best``, ``best_subnet.py`` / ``.pth``: the best subnet as a
    plain config and checkpoint (BN-calibrated on the scoring batches,
    checked as ``tools/export_subnet.py`` checks). The config's top-level
    ``retrain`` dict (e.g. ``retrain = dict(train_cfg=_base_.train_cfg,
    default_hooks=_base_.default_hooks)``) replaces those keys in the
    exported config, so that it trains rather than searches.

    The supernet weights come from ``supernet_checkpoint`` (loaded by the
    loop, also when the search resumes) or from the runner's ``load_from``.
    Scores are used unrounded: use ``mmnas_tricks.PreciseCocoMetric`` for
    COCO mAP (mmdet rounds to 3 decimals).

    ``random_search=True`` makes every generation random (the baseline).

    Args:
        runner: The runner.
        dataloader (DataLoader | dict): Training data, for BN calibration.
        max_generations (int): Generations. Defaults to 20.
        population_size (int): Candidates per generation. Defaults to 50.
        top_k (int): Parents kept. Defaults to 10.
        num_mutation (int): Mutants per generation. Defaults to 25.
        num_crossover (int): Crossover children per generation. Defaults
            to 25.
        mutate_prob (float): Per-choice mutation probability. Defaults to
            0.1.
        constraints (dict, optional): ``flops`` / ``params`` -> (min, max),
            either bound None, a number, or ``'first'`` / ``'min'`` /
            ``'max'``: the value of that subnet (``'first'``: every
            mutable's first choice, the plain architecture in our heads and
            FPN necks, so ``(None, 'first')`` means "no costlier than the
            baseline"), optionally scaled as ``'0.9*first'``. Defaults to
            None.
        input_shape (Sequence[int], optional): (C, H, W) for FLOPs.
            Defaults to None: the preprocessor's ``size`` or (3, 128, 128).
        calibrate_bn (int): BN calibration batches per candidate (0: use the
            supernet's running statistics). Defaults to 20.
        score_key (str): The metric to optimise. Defaults to
            ``'coco/bbox_mAP'``.
        rule (str): ``'greater'`` or ``'less'`` is better. Defaults to
            ``'greater'``.
        include (str | Sequence[str], optional): fnmatch patterns of the
            mutables searched; others keep their current choice. Defaults to
            None.
        random_search (bool): Random search instead of evolution. Defaults
            to False.
        seed (int): Seed of the search. Defaults to 0.
        val_dataloader (dict, optional): Scoring data. Defaults to None
            (the config's ``val_dataloader``).
        evaluator (dict | list, optional): Defaults to None (the config's
            ``val_evaluator``).
        supernet_checkpoint (str, optional): The trained supernet. Defaults
            to None (the runner's ``load_from``).
        export_best (bool): Write the best subnet's config and checkpoint.
            Defaults to True.
        few_shot (str | dict, optional): A few-shot split's manifest
            (``tools/few_shot.py``; TRICKS.md T5.1): every candidate is
            scored (and the best exported) with the weights of the
            sub-supernet whose pinned choice it has. Defaults to None (the
            one-shot supernet).
    """

    def __init__(self,
                 runner,
                 dataloader,
                 max_generations: int = 20,
                 population_size: int = 50,
                 top_k: int = 10,
                 num_mutation: int = 25,
                 num_crossover: int = 25,
                 mutate_prob: float = 0.1,
                 constraints: Optional[Dict[str, Tuple]] = None,
                 input_shape: Optional[Sequence[int]] = None,
                 calibrate_bn: int = 20,
                 score_key: str = 'coco/bbox_mAP',
                 rule: str = 'greater',
                 include: Optional[Union[str, Sequence[str]]] = None,
                 random_search: bool = False,
                 seed: int = 0,
                 val_dataloader: Optional[dict] = None,
                 evaluator=None,
                 supernet_checkpoint: Optional[str] = None,
                 export_best: bool = True,
                 few_shot=None) -> None:
        super().__init__(runner, dataloader, val_dataloader, evaluator,
                         supernet_checkpoint)
        for name, value in (('max_generations', max_generations),
                            ('population_size', population_size), ('top_k',
                                                                   top_k)):
            if value < 1:
                raise ValueError(f'{name}={value} must be >= 1')
        if num_mutation < 0 or num_crossover < 0:
            raise ValueError(f'num_mutation={num_mutation} and num_crossover='
                             f'{num_crossover} must be >= 0')
        if not 0 <= mutate_prob <= 1:
            raise ValueError(f'mutate_prob={mutate_prob} is not in [0, 1]')
        if rule not in RULES:
            raise ValueError(f'rule={rule!r} is not one of {list(RULES)}')
        constraints = dict(constraints or {})
        bad = sorted(set(constraints) - {'flops', 'params'})
        if bad:
            raise ValueError(f'constraints {bad} are not among [\'flops\', '
                             '\'params\']')
        for name, bounds in constraints.items():
            if not isinstance(bounds, (list, tuple)) or len(bounds) != 2 or \
                    any(b is not None and not isinstance(b, (int, float))
                        and _subnet_bound(b) is None for b in bounds):
                raise ValueError(
                    f'constraints[{name!r}]={bounds!r} must be (min, max), '
                    f'each None, a number or one of {list(SUBNET_BOUNDS)} '
                    "(optionally scaled, e.g. '0.9*first')")
        if export_best and not runner.cfg.get('retrain'):
            raise ValueError(
                'export_best=True needs a top-level `retrain` dict in the '
                'config (what the exported subnet trains with, e.g. '
                'retrain = dict(train_cfg=_base_.train_cfg, '
                'default_hooks=_base_.default_hooks)); or set '
                'export_best=False')
        self.export_best = export_best
        self.router = None if few_shot is None else FewShotRouter(few_shot)
        self.max_generations = max_generations
        self.population_size = population_size
        self.top_k = top_k
        self.num_mutation = num_mutation
        self.num_crossover = num_crossover
        self.mutate_prob = mutate_prob
        self.constraints = constraints
        self.input_shape = input_shape
        self.num_calib = int(calibrate_bn)
        self.score_key = score_key
        self.rule = rule
        self.include = include
        self.random_search = random_search
        self.seed = seed
        self._generation = 0
        self.records: Dict[str, dict] = {}
        # seconds per scored candidate (FLOPs count, BN calibration,
        # evaluation): kept apart from the records, which must not depend
        # on the machine
        self.seconds: Dict[str, float] = {}
        self.rejected: Dict[str, dict] = {}
        self.top: List[str] = []
        self.rng = random.Random(seed)
        self._res_cache: Dict[str, dict] = {}
        self._table: Optional[ResourceTable] = None

    # -- properties mmengine's Runner reads --------------------------------
    @property
    def max_epochs(self) -> int:
        return self.max_generations

    @property
    def max_iters(self) -> int:
        return self.max_generations

    @property
    def epoch(self) -> int:
        return self._generation

    @property
    def iter(self) -> int:
        return self._generation

    # -- state ------------------------------------------------------------
    @property
    def out_dir(self) -> str:
        return osp.join(self.runner.work_dir, 'search')

    def state_dict(self) -> dict:
        version, internal, gauss = self.rng.getstate()
        return dict(
            generation=self._generation,
            records=self.records,
            rejected=self.rejected,
            top=self.top,
            rng=[version, list(internal), gauss],
            seed=self.seed,
            seconds=self.seconds)

    def load_state_dict(self, state: dict) -> None:
        if state.get('seed') != self.seed:
            raise ValueError(f'search state has seed {state.get("seed")}, '
                             f'this search {self.seed}')
        self._generation = state['generation']
        self.records = state['records']
        self.seconds = state.get('seconds', {})
        self.rejected = state['rejected']
        self.top = state['top']
        version, internal, gauss = state['rng']
        self.rng.setstate((version, tuple(internal), gauss))

    # -- search -----------------------------------------------------------
    def _shape(self):
        if self.input_shape is not None:
            return tuple(self.input_shape)
        size = getattr(self.model.data_preprocessor, 'size', None)
        return (3, *size) if size else (3, 128, 128)

    def _searchable(self) -> dict:
        return named_mutables(self.model, self.include, searchable_only=True)

    def _random(self) -> dict:
        return sample_subnet(
            self.model, self.rng, include=self.include, apply=False)

    def _mutate(self, parent: dict) -> dict:
        child = dict(parent)
        for name, m in self._searchable().items():
            if self.rng.random() < self.mutate_prob:
                child[name] = self.rng.choice(m.choices)
        return child

    def _crossover(self, a: dict, b: dict) -> dict:
        return {n: (a[n] if self.rng.random() < 0.5 else b[n]) for n in a}

    def _resources(self, subnet: dict) -> dict:
        key = subnet_key(subnet)
        if key not in self._res_cache:
            if self._table is None:
                self._table = ResourceTable(self.model, self._shape())
                print_log(
                    'FLOPs of candidates: ' +
                    ('per-choice table (checked exact for this space)'
                     if self._table.why_not is None else
                     f'traced each ({self._table.why_not})'),
                    logger='current')
            self._res_cache[key] = self._table(subnet)
        return self._res_cache[key]

    def _resolve_constraints(self) -> None:
        """Replace ``'first'`` / ``'min'`` / ``'max'`` bounds by the value
        of that subnet (logged)."""
        for name, bounds in list(self.constraints.items()):
            resolved = []
            for bound in bounds:
                if isinstance(bound, str):
                    scale, which = _subnet_bound(bound)
                    searchable = self._searchable()
                    if which == 'first':
                        subnet = {
                            n: m.choices[0]
                            for n, m in searchable.items()
                        }
                    else:
                        extreme = extreme_subnet(self.model, which)
                        subnet = {n: extreme[n] for n in searchable}
                    value = scale * self._resources(
                        dict(get_subnet(self.model), **subnet))[name]
                    print_log(
                        f'constraint {name}: {bound!r} = {value:.6g}',
                        logger='current')
                    bound = value
                resolved.append(bound)
            self.constraints[name] = tuple(resolved)

    def _feasible(self, key: str, subnet: dict) -> bool:
        if key in self.records:
            return True
        if key in self.rejected:
            return False
        if not self.constraints:
            return True
        if set(self.constraints) == {'params'}:  # no FLOPs trace needed
            res = dict(params=subnet_param_count(self.model, subnet))
        else:
            res = self._resources(subnet)
        for name, (low, high) in self.constraints.items():
            if (low is not None and res[name] < low) or (high is not None
                                                         and res[name] > high):
                self.rejected[key] = res
                return False
        return True

    def _candidates(self) -> List[dict]:
        """New, feasible, unscored subnets of this generation."""
        base = get_subnet(self.model)
        chosen, keys = [], set()

        def take(make, count):
            tries = 0
            while count > 0 and tries < 10 * count + 10:
                tries += 1
                subnet = dict(base, **make())
                key = subnet_key(subnet)
                if key in keys or key in self.records or \
                        not self._feasible(key, subnet):
                    continue
                keys.add(key)
                chosen.append(subnet)
                count -= 1

        parents = [
            validate_subnet(self.model, json.loads(k)) for k in self.top
        ]
        if self._generation > 0 and parents and not self.random_search:
            take(lambda: self._mutate(self.rng.choice(parents)),
                 self.num_mutation)
            take(
                lambda: self._crossover(
                    self.rng.choice(parents), self.rng.choice(parents)),
                self.num_crossover)
        take(self._random, self.population_size - len(chosen))
        return chosen

    def _score(self, subnet: dict) -> dict:
        if self.router is not None:
            self.router.load_for(self.model, subnet)
        return score_subnet(self.model, subnet, self.val_dataloader,
                            self.evaluator, self.calib_batches, self.num_calib,
                            self.score_key)

    def _sort_key(self, key: str):
        rec = self.records[key]
        score = rec['score'] if self.rule == 'less' else -rec['score']
        return (score, rec['flops'], key)

    def _draw_calibration_batches(self) -> list:
        """The same batches for every candidate and across resumes."""
        if self.num_calib <= 0:
            return []
        state = (random.getstate(), np.random.get_state(),
                 torch.get_rng_state())
        random.seed(self.seed)
        np.random.seed(self.seed)
        torch.manual_seed(self.seed)
        # the sampler shuffles with the runner's seed (random unless the
        # config sets one): make the order the search's
        sampler = getattr(self.dataloader, 'sampler', None)
        if hasattr(sampler, 'seed'):
            sampler.seed = self.seed
        if hasattr(sampler, 'set_epoch'):
            sampler.set_epoch(0)
        try:
            batches = []
            for data in self.dataloader:
                batches.append(data)
                if len(batches) >= self.num_calib:
                    break
        finally:
            random.setstate(state[0])
            np.random.set_state(state[1])
            torch.set_rng_state(state[2])
        return batches

    def run(self):
        self._load_supernet()
        if self.router is not None:
            self.router.check(self.model)
        state_path = osp.join(self.out_dir, 'state.json')
        if self.runner._resume and osp.isfile(state_path):
            with open(state_path) as f:
                self.load_state_dict(json.load(f))
            print_log(
                f'search resumed at generation {self._generation} '
                f'with {len(self.records)} scored subnets',
                logger='current')
        self._resolve_constraints()
        self.calib_batches = self._draw_calibration_batches()
        initial = get_subnet(self.model)
        while self._generation < self.max_generations:
            gen = self._generation
            candidates = self._candidates()
            bar = ProgressBar(len(candidates)) if is_main_process() and \
                candidates else None
            for subnet in candidates:
                key = subnet_key(subnet)
                start = time.perf_counter()
                res = self._resources(subnet)
                metrics = self._score(subnet)
                self.seconds[key] = round(time.perf_counter() - start, 4)
                self.records[key] = dict(
                    generation=gen,
                    score=float(metrics[self.score_key]),
                    flops=res['flops'],
                    params=res['params'],
                    metrics={
                        k: float(v)
                        for k, v in metrics.items()
                        if isinstance(v, (int, float))
                    })
                print_log(
                    f'generation {gen} candidate {len(self.records)}: '
                    f'{self.score_key}={metrics[self.score_key]} '
                    f'flops={res["flops"] / 1e9:.4f}G '
                    f'params={res["params"] / 1e6:.4f}M',
                    logger='current')
                if bar is not None:
                    bar.update()
            self.top = sorted(self.records, key=self._sort_key)[:self.top_k]
            self._generation = gen + 1
            best = self.records[self.top[0]] if self.top else None
            print_log(
                f'generation {gen} done: {len(candidates)} new, '
                f'{len(self.records)} scored, best {self.score_key}='
                f'{best["score"] if best else None}',
                logger='current')
            if is_main_process():
                dump_json_atomic(self.state_dict(), state_path)
        if is_main_process():
            self._write_results()
        if not self.top:
            set_subnet(self.model, initial)
            raise RuntimeError(
                f'no subnet was scored in {self.max_generations} '
                f'generation(s): {len(self.rejected)} rejected by the '
                f'constraints {self.constraints}')
        if self.export_best:
            self._export_best()
        set_subnet(self.model, initial)
        return self.model

    def _export_best(self) -> None:
        """Every rank calibrates the best subnet's BN statistics (averaged
        over ranks, as when it was scored); the main process writes."""
        from ..export import apply_retrain, export_subnet_files
        subnet = self.best_subnet()
        if self.router is not None:
            self.router.load_for(self.model, subnet)
        set_subnet(self.model, subnet)
        if self.num_calib > 0:
            calibrate_bn(self.model, self.calib_batches, self.num_calib)
        if not is_main_process():
            return
        best = self.records[self.top[0]]
        cfg_path, ckpt_path, _ = export_subnet_files(
            apply_retrain(self.runner.cfg),
            self.model,
            subnet,
            self.out_dir,
            'best_subnet',
            meta=dict(
                score=best['score'],
                score_key=self.score_key,
                flops=best['flops'],
                params=best['params']))
        print_log(
            f'best subnet exported: {cfg_path}, {ckpt_path}', logger='current')

    # -- results ----------------------------------------------------------
    def best_subnet(self) -> dict:
        if not self.top:
            raise RuntimeError('no subnet was scored (constraints too tight?)')
        return json.loads(self.top[0])

    def _write_results(self) -> None:
        rows = [
            dict(
                subnet=k,
                **{
                    f: r[f]
                    for f in ('generation', 'score', 'flops', 'params')
                },
                seconds=self.seconds.get(k)) for k, r in sorted(
                    self.records.items(), key=lambda kv: self._sort_key(kv[0]))
        ]
        dump_json_atomic(rows, osp.join(self.out_dir, 'candidates.json'))
        buf = io.StringIO()
        writer = csv.DictWriter(
            buf,
            fieldnames=[
                'generation', 'score', 'flops', 'params', 'seconds', 'subnet'
            ])
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(
            osp.join(self.out_dir, 'candidates.csv'), buf.getvalue())
        best = self.records[self.top[0]] if self.top else None
        if best is not None:
            dump_subnet(
                self.best_subnet(),
                osp.join(self.out_dir, 'best_subnet.yaml'),
                meta=dict(
                    score=best['score'],
                    score_key=self.score_key,
                    flops=best['flops'],
                    params=best['params'],
                    source=type(self).__name__,
                    generations=self.max_generations,
                    seed=self.seed))
            print_log(
                f'best subnet ({self.score_key}={best["score"]}): '
                f'{osp.join(self.out_dir, "best_subnet.yaml")}',
                logger='current')
        self._plot(rows)

    def _plot(self, rows) -> None:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
        if not rows:
            return
        flops = [r['flops'] / 1e9 for r in rows]
        scores = [r['score'] for r in rows]
        sign = 1 if self.rule == 'greater' else -1
        front, best = [], None
        for f, s in sorted(
                zip(flops, scores), key=lambda t: (t[0], -sign * t[1])):
            if best is None or sign * s > sign * best:  # better, no costlier
                front.append((f, s))
                best = s
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.scatter(flops, scores, s=12, alpha=0.6, label='candidates')
        ax.plot(*zip(*front), 'r.-', label='Pareto front')
        ax.set_xlabel('GFLOPs (whole model)')
        ax.set_ylabel(self.score_key)
        ax.legend()
        fig.tight_layout()
        path = osp.join(self.out_dir, 'score_vs_flops.png')
        from mmnas_tricks.utils.io import atomic_write
        atomic_write(path, lambda f: fig.savefig(f, format='png', dpi=100))
        plt.close(fig)


@LOOPS.register_module()
class RandomSearchLoop(EvolutionSearchLoop):
    """Random search (the baseline of evolution): every generation is
    ``population_size`` new random subnets; same scoring, constraints,
    resume and results as :class:`EvolutionSearchLoop`."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs['random_search'] = True
        super().__init__(*args, **kwargs)
