"""What every architecture search over a trained supernet shares: the
skeleton of :class:`EvolutionSearchLoop`, :class:`RandomSearchLoop` and
:class:`NSGA2SearchLoop`, whose strategies only propose candidates and take
back their scores."""
import json
import logging
import os
import os.path as osp
import random
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.dist import (all_gather_object, broadcast_object_list,
                           get_world_size, is_main_process)
from mmengine.logging import print_log
from mmengine.utils import ProgressBar

from mmnas_tricks.models.mutables import (extreme_subnet, get_subnet,
                                          named_mutables, sample_subnet,
                                          set_subnet, subnet_param_count,
                                          validate_subnet)
from mmnas_tricks.models.resources import (LatencyTable, ResourceTable,
                                           input_size, measure_latency,
                                           size_text, traced_input_shape)
from mmnas_tricks.structures import dump_subnet, subnet_key
from mmnas_tricks.utils.io import (dump_csv_atomic, dump_json_atomic,
                                   new_figure, save_png_atomic)
from mmnas_tricks.utils.metrics import scalar_metrics
from ..bn_calibration import calibrate_bn
from ..few_shot import FewShotRouter
from ..pareto import non_dominated_ranks
from ..scoring import score_subnet
from .supernet_loop import SupernetLoop

SUBNET_BOUNDS = ('first', 'min', 'max')
#: what a constraint or an objective can bound besides the score
RESOURCES = ('flops', 'params', 'latency')
#: the keys of ``latency`` and their defaults: :func:`measure_latency`'s
#: ``repeats`` / ``warmup``; ``table``: a per-choice table where the space is
#: additive (:class:`LatencyTable`), its first ``check`` predictions within
#: ``tolerance`` of a measurement
LATENCY_DEFAULTS = dict(
    repeats=10, warmup=2, table=True, check=4, tolerance=0.15)
#: the record field of each resource
FIELDS = dict(flops='flops', params='params', latency='latency_ms')


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


class SearchLoop(SupernetLoop):
    """The skeleton of a search over a trained one-shot supernet, used as
    ``train_cfg`` (a subclass, e.g. ``mmnas_tricks.EvolutionSearchLoop``).

    Every generation the strategy (:meth:`propose`, from generation 1 on)
    proposes subnets, filled up with random ones to ``population_size``;
    candidates are deduplicated (a subnet is scored once) and must meet the
    ``constraints`` on FLOPs / params of the whole model at ``input_shape``
    and on its measured latency. Each is scored after BN calibration on
    ``calibrate_bn`` training batches (fixed for the whole search). Ties
    break on fewer FLOPs, then on the subnet, so the result does not depend
    on evaluation order. The ``reference`` subnet (default: every searched
    mutable's first choice, the plain architecture of our spaces) is scored
    first, the same way, and reported beside the result.

    State (every score, the generation's candidates, the random state, the
    measured latencies) is written atomically to
    ``<work_dir>/search/state.json`` after every scored candidate; with
    ``resume=True`` (``tools/train.py --resume``) a killed search continues
    where it stopped and ends with the result of an uninterrupted one.
    Results in ``<work_dir>/search/``: ``candidates.csv`` / ``.json``
    (every scored subnet, with the seconds its FLOPs count, BN calibration
    and evaluation took), ``pareto_front.json`` (the subnets no other beats
    in score and FLOPs), ``reference.json``, ``score_vs_flops.png``,
    ``best_subnet.yaml`` and, with ``export_best``, ``best_subnet.py`` /
    ``.pth``: the best subnet as a plain config and checkpoint
    (BN-calibrated on the scoring batches, checked as
    ``tools/export_subnet.py`` checks); with ``export_flops``, the same for
    the best subnet at each FLOPs budget. ``complete.json`` is written last
    (the files the search wrote, its best score) and removed when a search
    starts or resumes in the folder: without it a folder is not a finished
    search (a search killed while exporting is finished by ``--resume``,
    which scores nothing again). The loop's ``retrain`` dict (e.g.
    ``retrain=dict(train_cfg=_base_.train_cfg,
    default_hooks=_base_.default_hooks)``) replaces those keys in the
    exported configs, so that they train rather than search.

    The supernet weights come from ``supernet_checkpoint`` (loaded by the
    loop, also when the search resumes) or from the runner's ``load_from``.
    Scores are used unrounded: use ``mmnas_tricks.PreciseCocoMetric`` for
    COCO mAP (mmdet rounds to 3 decimals).

    Args:
        runner: The runner.
        dataloader (DataLoader | dict): Training data, for BN calibration.
        max_generations (int): Generations. Defaults to 20.
        population_size (int): Candidates per generation. Defaults to 50.
        constraints (dict, optional): ``flops`` / ``params`` / ``latency``
            (milliseconds, :func:`measure_latency`) -> (min, max), either
            bound None, a number, or ``'first'`` / ``'min'`` / ``'max'``:
            the value of that subnet (``'first'``: every mutable's first
            choice, so ``(None, 'first')`` means "no costlier than the
            baseline"), optionally scaled as ``'0.9*first'``. Defaults to
            None.
        input_shape (Sequence[int], optional): (C, H, W) for FLOPs and
            latency. Defaults to None: the config's, by
            :func:`~mmnas_tricks.models.resources.input_size`'s rule (its
            data preprocessor's ``size``, else its test pipeline's resize).
            Each record holds the size its subnet was counted at
            (``input_size``, [H, W]: the chosen one in a space with an
            input-size choice), and ``state.json`` the rule's result.
        calibrate_bn (int): BN calibration batches per candidate (0: use the
            supernet's running statistics). Defaults to 20.
        score_key (str): The metric to optimise. Defaults to
            ``'coco/bbox_mAP'``.
        rule (str): ``'greater'`` or ``'less'`` is better. Defaults to
            ``'greater'``.
        include (str | Sequence[str], optional): fnmatch patterns of the
            mutables searched; others keep their current choice. Defaults to
            None.
        seed (int): Seed of the search. Defaults to 0.
        val_dataloader (dict, optional): Scoring data. Defaults to None
            (the config's ``val_dataloader``).
        evaluator (dict | list, optional): Defaults to None (the config's
            ``val_evaluator``).
        supernet_checkpoint (str, optional): The trained supernet. Defaults
            to None (the runner's ``load_from``).
        export_best (bool): Write the best subnet's config and checkpoint.
            Defaults to True.
        retrain (dict, optional): What an exported subnet trains with:
            top-level config keys that replace the search config's in the
            exported configs (e.g. ``dict(train_cfg=_base_.train_cfg,
            default_hooks=_base_.default_hooks)``). Needed by
            ``export_best`` and ``export_flops``. Defaults to None.
        export_flops (Sequence[float], optional): FLOPs budgets as
            fractions of the reference's: for each, the best scored subnet
            of at most that many FLOPs is exported as
            ``best_subnet_<f>x.{py,pth,yaml}`` (e.g. ``(0.5, 1.0)``).
            Defaults to None.
        reference (str | dict, optional): ``'first'`` or a subnet (dict):
            scored before generation 0 and reported (``reference.json``, the
            plot, the best subnet's meta); None: none. Defaults to
            ``'first'``.
        latency (dict, optional): How latency is had, when a constraint or
            an objective is ``latency``: :func:`measure_latency`'s
            ``repeats`` / ``warmup``, and ``table`` (from a per-choice
            :class:`~mmnas_tricks.models.resources.LatencyTable` where the
            space is additive, its first ``check`` predictions within a
            relative ``tolerance`` of a measurement; each candidate measured
            otherwise). Defaults to None (:data:`LATENCY_DEFAULTS`: 10 / 2,
            table, 4, 0.15).
        few_shot (str | dict, optional): A few-shot split's manifest
            (``tools/few_shot.py``; docs/tricks.md, T5.1): every candidate is
            scored (and the best exported) with the weights of the
            sub-supernet whose pinned choice it has. Defaults to None (the
            one-shot supernet).
        rerank (dict, optional): ``topk`` / ``group_by`` of
            :func:`~mmnas_tricks.engine.rerank.select_candidates`: the
            subnets to re-rank by a short fine-tune (``tools/nas.py``'s
            ``rerank`` stage), for each exported budget (``best_subnet``,
            ``best_subnet_<f>x``) the best ``topk`` within it (of each value
            of the mutable ``group_by``), exported as
            ``candidate<i>.{py,pth,yaml}`` and listed in
            ``rerank_candidates.json`` (name, subnet, the export names it
            is a candidate for, score, FLOPs, params). Defaults to None.
        islands (str, optional): A searched mutable (e.g.
            ``'data_preprocessor.size'``) whose choices split the search
            into islands: random subnets are drawn in equal numbers for each
            of its choices (each filled up to its share of
            ``population_size``, each subnet repaired into the constraints
            by :meth:`random_within`), mutation never changes it and a
            crossover keeps the first parent's, so subnets compete within
            their island (:class:`NSGA2SearchLoop` ranks each island apart).
            Without it a FLOPs budget favours whichever choice fits it most
            often (at <= 1x FLOPs, random subnets at the lowest input size),
            and a mutation of it almost always leaves the budget. Defaults
            to None.
        eval_cache_mb (float): The scoring batches are loaded once and kept
            in memory up to this size (the same images for every
            candidate); 0: loaded for each candidate. Defaults to 1024.
        eval_batch_size (int, optional): Images per forward when scoring
            the kept batches (regrouped; the same scores where the images
            share one size). Defaults to None (the dataloader's).
    """

    def __init__(self,
                 runner,
                 dataloader,
                 max_generations: int = 20,
                 population_size: int = 50,
                 constraints: Optional[Dict[str, Tuple]] = None,
                 input_shape: Optional[Sequence[int]] = None,
                 calibrate_bn: int = 20,
                 score_key: str = 'coco/bbox_mAP',
                 rule: str = 'greater',
                 include: Optional[Union[str, Sequence[str]]] = None,
                 seed: int = 0,
                 val_dataloader: Optional[dict] = None,
                 evaluator=None,
                 supernet_checkpoint: Optional[str] = None,
                 export_best: bool = True,
                 retrain: Optional[dict] = None,
                 export_flops: Optional[Sequence[float]] = None,
                 reference: Union[str, dict, None] = 'first',
                 latency: Optional[dict] = None,
                 few_shot=None,
                 rerank: Optional[dict] = None,
                 islands: Optional[str] = None,
                 eval_cache_mb: float = 1024,
                 eval_batch_size: Optional[int] = None) -> None:
        super().__init__(runner, dataloader, val_dataloader, evaluator,
                         supernet_checkpoint, eval_cache_mb, eval_batch_size,
                         score_key, rule, seed)
        for name, value in (('max_generations', max_generations),
                            ('population_size', population_size)):
            if value < 1:
                raise ValueError(f'{name}={value} must be >= 1')
        constraints = dict(constraints or {})
        bad = sorted(set(constraints) - set(RESOURCES))
        if bad:
            raise ValueError(f'constraints {bad} are not among '
                             f'{list(RESOURCES)}')
        for name, bounds in constraints.items():
            if not isinstance(bounds, (list, tuple)) or len(bounds) != 2 or \
                    any(b is not None and not isinstance(b, (int, float))
                        and _subnet_bound(b) is None for b in bounds):
                raise ValueError(
                    f'constraints[{name!r}]={bounds!r} must be (min, max), '
                    f'each None, a number or one of {list(SUBNET_BOUNDS)} '
                    "(optionally scaled, e.g. '0.9*first')")
        export_flops = tuple(export_flops or ())
        if any(not isinstance(f, (int, float)) or f <= 0
               for f in export_flops):
            raise ValueError(f'export_flops={export_flops!r} must be '
                             'positive fractions of the reference\'s FLOPs')
        if export_flops and reference is None:
            raise ValueError('export_flops needs a reference subnet (its '
                             'FLOPs are the unit); reference is None')
        if (export_best or export_flops) and not retrain:
            raise ValueError(
                f'{type(self).__name__}: export_best=True or export_flops '
                'needs the loop\'s retrain argument (what the exported subnet '
                'trains with, e.g. retrain=dict(train_cfg=_base_.train_cfg, '
                'default_hooks=_base_.default_hooks)); or set '
                'export_best=False')
        if not (reference is None or reference == 'first'
                or isinstance(reference, dict)):
            raise ValueError(f'reference={reference!r} must be \'first\', a '
                             'subnet (dict) or None')
        latency = dict(LATENCY_DEFAULTS, **(latency or {}))
        bad = sorted(set(latency) - set(LATENCY_DEFAULTS))
        if bad:
            raise ValueError(f'latency keys {bad} are not among '
                             f'{list(LATENCY_DEFAULTS)}')
        rerank = None if rerank is None else dict(rerank)
        if rerank is not None:
            bad = sorted(set(rerank) - {'topk', 'group_by'})
            if bad:
                raise ValueError(f'rerank keys {bad} are not among '
                                 "['topk', 'group_by']")
            if not (export_best or export_flops):
                raise ValueError('rerank needs exports to re-rank for: '
                                 'export_best=True or export_flops')
        if islands is not None and not isinstance(islands, str):
            raise ValueError(f'islands={islands!r} must be the name of a '
                             'searched mutable or None')
        self.islands = islands
        self.rerank = rerank
        self.latency_cfg = latency
        self.export_best = export_best
        self.retrain = dict(retrain or {})
        self.export_flops = export_flops
        self.reference_subnet = reference
        self.router = None if few_shot is None else FewShotRouter(few_shot)
        self.max_generations = max_generations
        self.population_size = population_size
        self.constraints = constraints
        self.input_shape = input_shape
        self._input = None
        self.num_calib = int(calibrate_bn)
        self.include = include
        self._generation = 0
        self.records: Dict[str, dict] = {}
        # seconds per scored candidate (FLOPs count, BN calibration,
        # evaluation): kept apart from the records, which must not depend
        # on the machine
        self.seconds: Dict[str, float] = {}
        #: seconds of this run's one-off work before the first candidate
        #: (the FLOPs table), reported beside the candidates' own
        self.setup_seconds: Dict[str, float] = {}
        self.rejected: Dict[str, dict] = {}
        self.reference: Optional[dict] = None
        #: this generation's candidates (keys), once proposed
        self.pending: Optional[List[str]] = None
        #: measured latencies (ms) by subnet key
        self.latencies: Dict[str, float] = {}
        #: the per-choice latency table (main process; where additive)
        self._latency_table: Optional[LatencyTable] = None
        self._latency_table_state: Optional[dict] = None
        self.rng = random.Random(seed)
        self._rng_at_start = self.rng.getstate()
        self._res_cache: Dict[str, dict] = {}
        self._table: Optional[ResourceTable] = None
        self._chosen: List[dict] = []
        self._keys: set = set()

    # -- what a strategy defines --------------------------------------------
    #: the objectives (minimised after the rule's sign) the strategy trades
    #: off; the Pareto front written with the results uses them
    objectives: Tuple[str, ...] = ('score', 'flops')

    def propose(self) -> None:
        """Propose this generation's candidates (generation >= 1) with
        :meth:`take`; the rest of ``population_size`` is random."""

    def update(self) -> None:
        """Take back the scores: called after every generation (and after a
        resume), when :attr:`records` holds every score so far."""

    def strategy_state(self) -> dict:
        """What the strategy adds to the state file."""
        return {}

    def load_strategy_state(self, state: dict) -> None:
        """Restore :meth:`strategy_state`."""

    # -- progress and state (the skeleton's) ------------------------------
    @property
    def planned_rounds(self) -> int:
        return self.max_generations

    @property
    def rounds_done(self) -> int:
        return self._generation

    @property
    def complete_path(self) -> str:
        """Written last: the folder holds a finished search."""
        return osp.join(self.out_dir, 'complete.json')

    def state_dict(self, rng_state=None) -> dict:
        version, internal, gauss = rng_state or self.rng.getstate()
        return dict(
            generation=self._generation,
            records=self.records,
            rejected=self.rejected,
            reference=self.reference,
            pending=self.pending,
            latencies=self.latencies,
            latency_table=(self._latency_table.state_dict()
                           if self._latency_table is not None else
                           self._latency_table_state),
            rng=[version, list(internal), gauss],
            seconds=self.seconds,
            supernet=self.supernet_source,
            input_size=self.input.hw,
            input_source=self.input.source,
            **self.strategy_state())

    def load_state_dict(self, state: dict) -> None:
        self._generation = state['generation']
        self.records = state['records']
        self.seconds = state.get('seconds', {})
        self.rejected = state['rejected']
        self.reference = state.get('reference')
        self.pending = state.get('pending')
        self.latencies = state.get('latencies', {})
        self._latency_table_state = state.get('latency_table')
        self._latency_table = None  # rebuilt from that state when needed
        version, internal, gauss = state['rng']
        self.rng.setstate((version, tuple(internal), gauss))
        self._rng_at_start = self.rng.getstate()
        self.load_strategy_state(state)

    def _save_state(self, rng_state=None) -> None:
        self.save_state(self.state_dict(rng_state))

    # -- resources and constraints ---------------------------------------
    @property
    def input(self):
        """The input size of the FLOPs / params / latency figures and where
        it came from (:func:`~mmnas_tricks.models.resources.input_size`)."""
        if self._input is None:
            self._input = input_size(self.runner.cfg, self.input_shape)
            print_log(
                f'FLOPs / params / latency of candidates at {self._input}',
                logger='current')
        return self._input

    def _shape(self):
        return self.input.shape

    def _searchable(self) -> dict:
        return named_mutables(self.model, self.include, searchable_only=True)

    def _needs_latency(self) -> bool:
        return 'latency' in self.constraints or 'latency' in self.objectives

    def _latency(self, subnet: dict) -> float:
        """Measured once per subnet (on the main process, shared with the
        others) and kept in the state, so that a resumed search decides as
        the uninterrupted one did."""
        key = subnet_key(subnet)
        if key not in self.latencies:
            value = [None]
            if is_main_process():
                value = [round(self._latency_of(subnet), 4)]
            if get_world_size() > 1:
                broadcast_object_list(value)
            self.latencies[key] = value[0]
            if self.pending is None:  # proposing: the state's rng is the
                self._save_state(self._rng_at_start)  # generation's start
        return self.latencies[key]

    def _latency_of(self, subnet: dict) -> float:
        """Milliseconds of ``subnet``: from the per-choice table where the
        space is additive and the table predicts (``latency.table``), else
        measured."""
        cfg = self.latency_cfg

        def measure(s):
            return measure_latency(
                self.model,
                s,
                self._shape(),
                repeats=cfg['repeats'],
                warmup=cfg['warmup'])

        if not cfg['table']:
            return measure(subnet)
        if self._latency_table is None:
            self._latency_table = LatencyTable(
                self.model,
                measure,
                check=cfg['check'],
                tolerance=cfg['tolerance'],
                state=self._latency_table_state)
            table = self._latency_table
            print_log(
                'latency of candidates: ' +
                (f'per-choice table ({table.measurements} measurements, '
                 f'checked on the first {cfg["check"]} candidates)'
                 if table.why_not is None else
                 f'measured each ({table.why_not})'),
                logger='current')
        table = self._latency_table
        had = table.why_not
        ms = table(subnet)
        if had is None and table.why_not is not None:
            print_log(
                f'latency table dropped, each candidate measured from now on: '
                f'{table.why_not}',
                logger='current',
                level=logging.WARNING)
        return ms

    def _resources(self, subnet: dict, latency: Optional[bool] = None) -> dict:
        """FLOPs and params and, when ``latency`` (default: when a
        constraint or an objective needs it), the measured latency."""
        key = subnet_key(subnet)
        if key not in self._res_cache:
            self._res_cache[key] = self.resource_table()(subnet)
        res = dict(self._res_cache[key])
        if self._needs_latency() if latency is None else latency:
            res['latency'] = self._latency(subnet)
        return res

    def resource_table(self) -> ResourceTable:
        """The FLOPs / params table of the candidates, built (and timed:
        :attr:`setup_seconds`) on first use; :meth:`run` builds it before
        the first candidate, so that the candidates' seconds are their own
        (a one-off of the search, like loading the supernet)."""
        if self._table is None:
            start = time.perf_counter()
            self._table = ResourceTable(self.model, self._shape())
            self.setup_seconds['resource_table'] = round(
                time.perf_counter() - start, 4)
            print_log(
                'FLOPs of candidates: ' +
                (f'per-choice table (checked exact for this space; '
                 f'{self._table.traces} traces)' if self._table.why_not is None
                 else f'traced each ({self._table.why_not})') +
                f', {self.setup_seconds["resource_table"]:.2f} s',
                logger='current')
        return self._table

    def _first(self) -> dict:
        """Every searched mutable at its first choice."""
        return dict(
            get_subnet(self.model),
            **{n: m.choices[0]
               for n, m in self._searchable().items()})

    def _resolve_constraints(self) -> None:
        """Replace ``'first'`` / ``'min'`` / ``'max'`` bounds by the value
        of that subnet (logged)."""
        for name, bounds in list(self.constraints.items()):
            resolved = []
            for bound in bounds:
                if isinstance(bound, str):
                    scale, which = _subnet_bound(bound)
                    if which == 'first':
                        subnet = self._first()
                    else:
                        extreme = extreme_subnet(self.model, which)
                        subnet = dict(
                            get_subnet(self.model),
                            **{n: extreme[n]
                               for n in self._searchable()})
                    value = scale * self._resources(
                        subnet, latency=name == 'latency')[name]
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
        else:  # latency measured only for what the others let through
            res = self._resources(subnet, latency=False)
        for name in sorted(self.constraints, key=lambda n: n == 'latency'):
            if name == 'latency':
                res['latency'] = self._latency(subnet)
            low, high = self.constraints[name]
            if (low is not None and res[name] < low) or (high is not None
                                                         and res[name] > high):
                self.rejected[key] = res
                return False
        return True

    # -- proposing ----------------------------------------------------------
    def island_values(self) -> list:
        """The choices of the ``islands`` mutable ([None] without
        islands)."""
        if self.islands is None:
            return [None]
        return list(self._searchable()[self.islands].choices)

    def island_of(self, subnet: dict):
        """The island (``islands`` choice) of a subnet; None without."""
        return None if self.islands is None else subnet[self.islands]

    def _check_islands(self) -> None:
        if self.islands is not None and \
                self.islands not in self._searchable():
            raise KeyError(f'islands={self.islands!r} is not a searched '
                           f'mutable; valid: {sorted(self._searchable())}')

    def random_subnet(self, island=None) -> dict:
        """A random subnet (of ``island``, a choice of the ``islands``
        mutable, when given)."""
        subnet = sample_subnet(
            self.model, self.rng, include=self.include, apply=False)
        if island is not None:
            subnet[self.islands] = island
        return subnet

    def mutate(self, parent: dict, prob: float) -> dict:
        """Each searched choice of ``parent`` resampled with ``prob`` (but
        its island)."""
        child = dict(parent)
        for name, m in self._searchable().items():
            if self.rng.random() < prob and name != self.islands:
                child[name] = self.rng.choice(m.choices)
        return child

    def crossover(self, a: dict, b: dict) -> dict:
        """Each choice from ``a`` or ``b`` with even odds (the island
        from ``a``)."""
        child = {n: (a[n] if self.rng.random() < 0.5 else b[n]) for n in a}
        if self.islands is not None:
            child[self.islands] = a[self.islands]
        return child

    def subnet_of(self, key: str) -> dict:
        return validate_subnet(self.model, json.loads(key))

    def take(self,
             make: Callable[[], dict],
             count: int,
             tries_per_subnet: int = 10) -> None:
        """Add up to ``count`` new, feasible, unscored subnets made by
        ``make`` to this generation's candidates (it stops after
        ``tries_per_subnet * (c + 1)`` tries, c the count still missing)."""
        base = get_subnet(self.model)
        tries = 0
        while count > 0 and tries < tries_per_subnet * (count + 1):
            tries += 1
            subnet = dict(base, **make())
            key = subnet_key(subnet)
            if key in self._keys or key in self.records or \
                    not self._feasible(key, subnet):
                continue
            self._keys.add(key)
            self._chosen.append(subnet)
            count -= 1

    def _candidates(self) -> List[dict]:
        """New, feasible, unscored subnets of this generation."""
        self._chosen, self._keys = [], set()
        if self._generation > 0 and self.records:
            self.propose()
        if self.islands is None:
            self.take(self.random_subnet,
                      self.population_size - len(self._chosen))
            return self._chosen
        for island, share in self.island_shares():
            have = sum(
                json.dumps(self.island_of(s)) == json.dumps(island)
                for s in self._chosen)
            self.take(
                lambda island=island: self.random_within(island), share - have)
        return self._chosen

    #: the chances of taking the smallest choice in :meth:`random_within`
    SHRINK_STEPS = (0.0, 0.25, 0.5, 0.75, 1.0)

    def random_within(self, island) -> dict:
        """A random subnet of ``island`` repaired into the constraints: a
        random subnet, then, while it is infeasible, each searched choice
        (but the island) replaced by its smallest with a chance stepping
        through :attr:`SHRINK_STEPS` (a fresh draw each step). At a high
        input size a random subnet almost never fits a FLOPs budget, so plain
        rejection sampling leaves the island empty. Returns the last step's
        subnet when none fits (``take`` then rejects it)."""
        base = get_subnet(self.model)
        small = extreme_subnet(self.model, 'min')
        searched = self._searchable()
        drawn = self.random_subnet(island)
        subnet = drawn
        for chance in self.SHRINK_STEPS:
            subnet = {
                n: (small[n] if n in searched and n != self.islands
                    and self.rng.random() < chance else v)
                for n, v in drawn.items()
            }
            full = dict(base, **subnet)
            if self._feasible(subnet_key(full), full):
                break
        return subnet

    def island_shares(self) -> list:
        """(island, its share of ``population_size``) pairs: equal, the
        first islands one more when it does not divide ([(None,
        population_size)] without islands)."""
        values = self.island_values()
        per, extra = divmod(self.population_size, len(values))
        return [(v, per + (i < extra)) for i, v in enumerate(values)]

    # -- scoring ------------------------------------------------------------
    def _score(self, subnet: dict) -> dict:
        if self.router is not None:
            self.router.load_for(self.model, subnet)
        return score_subnet(self.model, subnet, self.val_dataloader,
                            self.evaluator, self.calib_batches, self.num_calib,
                            self.score_key)

    def _record(self, subnet: dict, generation) -> dict:
        res = self._resources(subnet)
        metrics = self._score(subnet)
        record = dict(
            generation=generation,
            score=float(metrics[self.score_key]),
            flops=res['flops'],
            params=res['params'],
            input_size=list(
                traced_input_shape(self.model, self._shape(), subnet)[1:]),
            metrics=scalar_metrics(metrics))
        if 'latency' in res:
            record['latency_ms'] = res['latency']
        return record

    def _sort_key(self, key: str):
        rec = self.records[key]
        score = -self.sign * rec['score']
        return (score, rec['flops'], key)

    def ranked(self) -> List[str]:
        """Every scored subnet (key), best first."""
        return sorted(self.records, key=self._sort_key)

    def objective_values(self, key: str) -> Tuple[float, ...]:
        """:attr:`objectives` of a scored subnet, each to be minimised."""
        rec = self.records[key]
        sign = -self.sign
        return tuple(sign *
                     rec['score'] if o == 'score' else float(rec[FIELDS[o]])
                     for o in self.objectives)

    def pareto_front(self) -> List[str]:
        """The scored subnets no other beats in every objective, by FLOPs
        (then key)."""
        keys = sorted(self.records)
        ranks = non_dominated_ranks([self.objective_values(k) for k in keys])
        return sorted((k for k, r in zip(keys, ranks) if r == 0),
                      key=lambda k: (self.records[k]['flops'], k))

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

    def _score_reference(self) -> None:
        if self.reference_subnet is None or self.reference is not None:
            return
        subnet = self._first() if self.reference_subnet == 'first' else \
            dict(get_subnet(self.model),
                 **validate_subnet(self.model, self.reference_subnet))
        key = subnet_key(subnet)
        record = self._record(subnet, 'reference')
        self.reference = dict(subnet=key, **record)
        print_log(
            f'reference subnet: {self.score_key}={record["score"]} '
            f'flops={record["flops"] / 1e9:.4f}G '
            f'params={record["params"] / 1e6:.4f}M '
            f'at {size_text(record["input_size"])}',
            logger='current')
        self._save_state()

    def _resume_supernet(self, state: dict) -> None:
        """Load, on resume, the supernet the first run searched: a config
        that names it with ``load_from`` loses it to ``--resume`` (which
        resumes from the work dir instead), so the recorded path is loaded
        again; a different supernet, or none known, refuses to resume."""
        recorded = state.get('supernet')
        if self.supernet_source is not None:
            if recorded is not None and osp.abspath(recorded) != osp.abspath(
                    self.supernet_source):
                raise RuntimeError(
                    f'{self.state_path}: this search was run on the supernet '
                    f'{recorded!r}, the resumed one would load '
                    f'{self.supernet_source!r}; resume with the same '
                    'supernet or start a new work dir')
            return
        if recorded is None:
            raise RuntimeError(
                f'{self.state_path}: cannot resume: the search state does not '
                'say which supernet it searched and the config names none '
                '(set supernet_checkpoint in train_cfg)')
        self.supernet_checkpoint = recorded
        self._load_supernet()
        print_log(
            f'resumed on the supernet the search started with: '
            f'{recorded}',
            logger='current')

    # -- the loop -----------------------------------------------------------
    def run(self):
        state = self.read_state()
        self._load_supernet()
        if state is not None:
            self._resume_supernet(state)
        if self.router is not None:
            self.router.check(self.model)
        if is_main_process() and osp.isfile(self.complete_path):
            os.remove(self.complete_path)  # finished again below, or not
        if state is not None:
            self.load_state_dict(state)
            print_log(
                f'search resumed at generation {self._generation} '
                f'with {len(self.records)} scored subnets',
                logger='current')
            self.update()
        initial = get_subnet(self.model)
        try:
            self._check_islands()
            self._resolve_constraints()
            self.calib_batches = self._draw_calibration_batches()
            self.resource_table()
            self._score_reference()
            while self._generation < self.max_generations:
                self._run_generation()
        finally:
            set_subnet(self.model, initial)
        self._check_ranks_agree()
        if is_main_process():
            self._write_results()
        if not self.records:
            raise RuntimeError(
                f'no subnet was scored in {self.max_generations} '
                f'generation(s): {len(self.rejected)} rejected by the '
                f'constraints {self.constraints}')
        for name, fraction, most in self._export_budgets():
            key = self.best_key(most)
            if fraction is None:
                self._export(key, name)
                continue
            if key is None:
                print_log(
                    f'no scored subnet within {fraction}x the reference\'s '
                    'FLOPs: nothing exported for it',
                    logger='current',
                    level=30)
                continue
            self._export(key, name, fraction)
        if self.rerank is not None:
            self._export_rerank_candidates()
        set_subnet(self.model, initial)
        if is_main_process():
            best = self.best_key()
            dump_json_atomic(
                dict(
                    generations=self._generation,
                    scored=len(self.records),
                    best_score=self.records[best]['score'],
                    setup_seconds=self.setup_seconds,
                    files=sorted(
                        f for f in os.listdir(self.out_dir)
                        if f != 'complete.json')), self.complete_path)
        return self.model

    def _run_generation(self) -> None:
        gen = self._generation
        if self.pending is None:
            self._rng_at_start = self.rng.getstate()
            self.pending = [subnet_key(s) for s in self._candidates()]
            self._save_state()
        todo = [k for k in self.pending if k not in self.records]
        bar = ProgressBar(len(todo)) if is_main_process() and todo else None
        for key in todo:
            subnet = self.subnet_of(key)
            start = time.perf_counter()
            self.records[key] = self._record(subnet, gen)
            self.seconds[key] = round(time.perf_counter() - start, 4)
            rec = self.records[key]
            print_log(
                f'generation {gen} candidate {len(self.records)}: '
                f'{self.score_key}={rec["score"]} '
                f'flops={rec["flops"] / 1e9:.4f}G '
                f'params={rec["params"] / 1e6:.4f}M '
                f'at {size_text(rec["input_size"])}',
                logger='current')
            self._save_state()
            if bar is not None:
                bar.update()
        new = len(self.pending)
        self.pending = None
        self._generation = gen + 1
        self.update()
        best = self.records[self.best_key()] if self.records else None
        print_log(
            f'generation {gen} done: {new} new, {len(self.records)} scored, '
            f'best {self.score_key}={best["score"] if best else None}',
            logger='current')
        self._save_state()

    def _check_ranks_agree(self) -> None:
        """Every rank scored the same candidates the same: its best subnet
        and Pareto front are rank 0's (else the exported result would be one
        rank's view)."""
        if get_world_size() <= 1:
            return
        mine = [self.best_key(), self.pareto_front()]
        views = all_gather_object(mine)
        for rank, view in enumerate(views):
            if view != views[0]:
                raise RuntimeError(
                    f'the ranks disagree on the search result: rank {rank} '
                    f'found best {view[0]} and a front of {len(view[1])}, '
                    f'rank 0 best {views[0][0]} and a front of '
                    f'{len(views[0][1])}')

    # -- results ----------------------------------------------------------
    def best_key(self, max_flops: Optional[float] = None) -> Optional[str]:
        """The best scored subnet (of at most ``max_flops``), or None."""
        for key in self.ranked():
            if max_flops is None or self.records[key]['flops'] <= max_flops:
                return key
        return None

    def best_subnet(self) -> dict:
        if not self.records:
            raise RuntimeError('no subnet was scored (constraints too tight?)')
        return self.subnet_of(self.best_key())

    def _meta(self, key: str, **extra) -> dict:
        rec = self.records[key]
        meta = dict(
            score=rec['score'],
            score_key=self.score_key,
            flops=rec['flops'],
            params=rec['params'],
            input_size=rec.get('input_size'),
            **extra)
        if 'latency_ms' in rec:
            meta['latency_ms'] = rec['latency_ms']
        if self.reference is not None:
            meta.update(
                reference_score=self.reference['score'],
                reference_flops=self.reference['flops'])
        return meta

    def _export(self, key: str, name: str, fraction=None) -> None:
        """Every rank calibrates the subnet's BN statistics (averaged over
        ranks, as when it was scored); the main process writes
        ``<name>.{py,pth,yaml}``."""
        from ..export import apply_retrain, export_subnet_files
        subnet = self.subnet_of(key)
        if self.router is not None:
            self.router.load_for(self.model, subnet)
        set_subnet(self.model, subnet)
        if self.num_calib > 0:
            calibrate_bn(self.model, self.calib_batches, self.num_calib)
        if not is_main_process():
            return
        extra = {} if fraction is None else dict(max_flops_fraction=fraction)
        subnet_file = osp.join(self.out_dir, f'{name}.yaml')
        if name != 'best_subnet':  # written with the results
            dump_subnet(
                subnet,
                subnet_file,
                meta=self._meta(
                    key, source=type(self).__name__, seed=self.seed, **extra))
        cfg_path, ckpt_path, _ = export_subnet_files(
            apply_retrain(self.runner.cfg, self.retrain),
            self.model,
            subnet,
            self.out_dir,
            name,
            meta=self._meta(key, **extra))
        print_log(
            f'{name} exported: {cfg_path}, {ckpt_path}', logger='current')

    def _export_budgets(
            self) -> List[Tuple[str, Optional[float], Optional[float]]]:
        """(export name, FLOPs fraction, most FLOPs) of each export:
        ``best_subnet`` (no fraction, no bound) with ``export_best``, then
        ``best_subnet_<f>x`` for each of ``export_flops``."""
        out = [('best_subnet', None, None)] if self.export_best else []
        return out + [(f'best_subnet_{f:g}x', f, f * self.reference['flops'])
                      for f in self.export_flops]

    def _export_rerank_candidates(self) -> None:
        """``candidate<i>`` for each subnet to re-rank, and
        ``rerank_candidates.json`` (written last) listing them."""
        from ..rerank import select_candidates
        budgets = {
            name: float('inf') if most is None else most
            for name, _, most in self._export_budgets()
        }
        chosen = select_candidates(
            self.ranked(), {k: r['flops']
                            for k, r in self.records.items()}, budgets,
            **self.rerank)
        rows = []
        for i, cand in enumerate(chosen):
            name = f'candidate{i}'
            self._export(cand['key'], name)
            rec = self.records[cand['key']]
            rows.append(
                dict(
                    name=name,
                    subnet=cand['key'],
                    budgets=cand['budgets'],
                    score=rec['score'],
                    flops=rec['flops'],
                    params=rec['params'],
                    input_size=rec.get('input_size')))
        if is_main_process():
            dump_json_atomic(
                dict(rerank=self.rerank, candidates=rows),
                osp.join(self.out_dir, 'rerank_candidates.json'))

    def _rows(self, keys, seconds: bool = True) -> List[dict]:
        latency = any('latency_ms' in r for r in self.records.values())
        rows = []
        for k in keys:
            r = self.records[k]
            row = dict(
                subnet=k,
                **{
                    f: r[f]
                    for f in ('generation', 'score', 'flops', 'params')
                })
            row['input_size'] = r.get('input_size')
            if latency:
                row['latency_ms'] = r.get('latency_ms')
            if seconds:
                row['seconds'] = self.seconds.get(k)
            rows.append(row)
        return rows

    def _write_results(self) -> None:
        rows = self._rows(self.ranked())
        dump_json_atomic(rows, osp.join(self.out_dir, 'candidates.json'))
        front = self._rows(self.pareto_front(), seconds=False)
        dump_json_atomic(
            dict(objectives=list(self.objectives), subnets=front),
            osp.join(self.out_dir, 'pareto_front.json'))
        if self.reference is not None:
            dump_json_atomic(self.reference,
                             osp.join(self.out_dir, 'reference.json'))
        if rows:
            fields = ['generation', 'score', 'flops', 'params', 'input_size'
                      ] + (['latency_ms'] if 'latency_ms' in rows[0] else
                           []) + ['seconds', 'subnet']
            dump_csv_atomic([
                dict(
                    r,
                    input_size=size_text(r['input_size'])
                    if r['input_size'] else None) for r in rows
            ], osp.join(self.out_dir, 'candidates.csv'), fields)
            best = self.best_key()
            dump_subnet(
                json.loads(best),
                osp.join(self.out_dir, 'best_subnet.yaml'),
                meta=self._meta(
                    best,
                    source=type(self).__name__,
                    generations=self.max_generations,
                    seed=self.seed))
            print_log(
                f'best subnet ({self.score_key}='
                f'{self.records[best]["score"]}): '
                f'{osp.join(self.out_dir, "best_subnet.yaml")}',
                logger='current')
            self._plot(rows, front)

    def _plot(self, rows, front) -> None:
        fig, ax = new_figure((6, 4))
        ax.scatter([r['flops'] / 1e9 for r in rows],
                   [r['score'] for r in rows],
                   s=12,
                   alpha=0.6,
                   label='candidates')
        ax.plot([r['flops'] / 1e9 for r in front], [r['score'] for r in front],
                'r.-',
                label='Pareto front')
        if self.reference is not None:
            ax.scatter(
                self.reference['flops'] / 1e9,
                self.reference['score'],
                marker='*',
                s=120,
                c='k',
                label='reference')
        ax.set_xlabel('GFLOPs (whole model)')
        ax.set_ylabel(self.score_key)
        ax.legend()
        save_png_atomic(fig, osp.join(self.out_dir, 'score_vs_flops.png'))
