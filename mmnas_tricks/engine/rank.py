"""What the rank tools share (tools/proxy_rank.py,
tools/rank_correlation.py): the subnets to compare, stand-alone training of
one subnet, and the scatter plot (docs/tricks.md, T5.3)."""
import os
import random
import time
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.config import Config

from mmnas_tricks.models.inherit import plain_subnet
from mmnas_tricks.models.mutables import sample_subnet
from mmnas_tricks.structures import subnet_key


def distinct_subnets(model, num: int, seed: int = 0) -> List[dict]:
    """The baseline (every mutable's first choice) and ``num - 1`` random
    distinct subnets of ``model`` (seeded)."""
    if num < 1:
        raise ValueError(f'num={num} must be >= 1')
    first = plain_subnet(model)
    found = {subnet_key(first): first}
    rng = random.Random(seed)
    for _ in range(100 * num):
        if len(found) >= num:
            break
        subnet = sample_subnet(model, rng, apply=False)
        found.setdefault(subnet_key(subnet), subnet)
    return list(found.values())


#: top-level keys of a rank-set file, the keys one of its ``random``
#: entries must have, and the one it may have
RANK_SET_KEYS = ('named', 'random', 'disjoint_from')
RANDOM_KEYS = ('flops', 'num', 'seed')
RANDOM_OPTIONAL = ('fixed', )


class RankSetError(ValueError):
    """A rank-set file that does not describe subnets of the model."""


def read_rank_set(path: str) -> dict:
    """Read and shape-check a rank-set file (YAML; no model needed).

    A rank set is the fixed list of subnets a rank study compares, so that
    every supernet recipe is measured against the same stand-alone
    trainings::

        named:            # name -> overrides of the first subnet
          baseline: {}
          res160: {data_preprocessor.size: 160}
        random:           # random subnets within FLOPs windows, as
          - {flops: [0.85, 1.0], num: 5, seed: 0}   # fractions of the
                                                    # first subnet's FLOPs
          # `fixed`: these mutables at these choices in every draw
          - {flops: [0.3, 1.2], num: 4, seed: 1,
             fixed: {data_preprocessor.size: 160}}
        # other rank sets (paths relative to this file) that share no
        # subnet with this one: a held-out set never holds a subnet of
        # the set things were tuned on (checked when the subnets are drawn)
        disjoint_from: [truth.yaml]
    """
    import yaml
    try:
        with open(path, encoding='utf-8') as f:
            doc = yaml.safe_load(f)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise RankSetError(f'{path}: cannot read the rank set: '
                           f'{type(e).__name__}: {str(e)[:200]}') from e
    if not isinstance(doc, dict) or not doc:
        raise RankSetError(f'{path}: expected a mapping with keys '
                           f'{list(RANK_SET_KEYS)}, got '
                           f'{type(doc).__name__}')
    unknown = sorted(str(k)[:40] for k in doc if k not in RANK_SET_KEYS)
    if unknown:
        raise RankSetError(f'{path}: unknown keys {unknown}; valid: '
                           f'{list(RANK_SET_KEYS)}')
    named = doc.get('named') or {}
    if not isinstance(named, dict):
        raise RankSetError(f"{path}: 'named' must map a name to a dict of "
                           f'overrides, got {type(named).__name__}')
    for name, overrides in named.items():
        if not isinstance(name, str) or not isinstance(overrides, dict):
            raise RankSetError(
                f'{path}: named.{str(name)[:40]}: expected a name and a dict '
                f'mutable -> choice, got {type(overrides).__name__}')
    windows = doc.get('random') or []
    if not isinstance(windows, list):
        raise RankSetError(f"{path}: 'random' must be a list of "
                           f'{list(RANDOM_KEYS)} dicts')
    for i, w in enumerate(windows):
        where = f'{path}: random[{i}]'
        if not isinstance(w, dict) or not set(RANDOM_KEYS) <= set(w) or (
                set(w) - set(RANDOM_KEYS) - set(RANDOM_OPTIONAL)):
            got = sorted(map(str, w)) if isinstance(w, dict) else \
                type(w).__name__
            raise RankSetError(f'{where}: expected the keys '
                               f'{list(RANDOM_KEYS)} (and optionally '
                               f'{list(RANDOM_OPTIONAL)}), got {got}')
        if not isinstance(w.get('fixed', {}), dict):
            raise RankSetError(f'{where}.fixed: expected a dict mutable -> '
                               f'choice, got {type(w["fixed"]).__name__}')
        lo_hi = w['flops']
        if (not isinstance(lo_hi, list) or len(lo_hi) != 2 or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool)
                for v in lo_hi) or not 0 < lo_hi[0] < lo_hi[1]):
            raise RankSetError(f'{where}.flops: expected [low, high] with '
                               f'0 < low < high (fractions of the first '
                               f"subnet's FLOPs), got {str(lo_hi)[:60]}")
        for key in ('num', 'seed'):
            if not isinstance(w[key], int) or isinstance(w[key], bool) \
                    or w[key] < (1 if key == 'num' else 0):
                raise RankSetError(f'{where}.{key}: expected an integer >= '
                                   f'{1 if key == "num" else 0}, got '
                                   f'{str(w[key])[:40]}')
    others = doc.get('disjoint_from') or []
    if not isinstance(others, list) or not all(
            isinstance(o, str) for o in others):
        raise RankSetError(f"{path}: 'disjoint_from' must be a list of "
                           'rank-set paths (relative to this file)')
    here = os.path.dirname(os.path.abspath(path))
    others = [os.path.normpath(os.path.join(here, o)) for o in others]
    for other in others:
        if not os.path.isfile(other):
            raise RankSetError(f'{path}: disjoint_from: {other} is not a '
                               'file')
    return dict(named=named, random=windows, disjoint_from=others)


def rank_set_subnets(
    model,
    path: str,
    input_shape: Sequence[int],
    max_tries: int = 2000,
    flops_cache: Optional[Dict[str,
                               int]] = None) -> List[Tuple[str, dict, float]]:
    """``(name, subnet, FLOPs / first subnet's FLOPs)`` of every subnet of
    the rank set at ``path`` (:func:`read_rank_set`), named ones first,
    then ``random`` ones (named ``random<i>``; drawn from a seeded
    :func:`sample_subnet`, kept while their FLOPs lie in the window, with
    no subnet twice).

    ``flops_cache`` (subnet key -> FLOPs at ``input_shape``) keeps the
    traced FLOPs across calls (a set ``disjoint_from`` another resolves
    that one too; each trace of a channel space takes about a second).

    Raises:
        RankSetError: an override that is not a mutable or a choice of
            ``model`` (naming the file and the entry), or a window with
            fewer than ``num`` subnets in ``max_tries`` draws.
    """
    from mmnas_tricks.models.mutables import SubnetError, validate_subnet
    from mmnas_tricks.models.resources import subnet_resources
    spec = read_rank_set(path)
    first = plain_subnet(model)
    cache = {} if flops_cache is None else flops_cache
    # the subnets of the sets this one must not share any with
    taken: Dict[str, str] = {}
    for other in spec['disjoint_from']:
        for name, subnet, _ in rank_set_subnets(model, other, input_shape,
                                                max_tries, cache):
            taken.setdefault(subnet_key(subnet), f'{other}: {name}')

    def flops(subnet):
        key = subnet_key(subnet)
        if key not in cache:
            cache[key] = subnet_resources(model, subnet, input_shape)['flops']
        return cache[key]

    named = []
    seen: Dict[str, str] = {}
    for name, overrides in spec['named'].items():  # all checked first
        try:
            subnet = dict(first,
                          **validate_subnet(model, overrides, strict=False))
        except SubnetError as e:
            raise RankSetError(f'{path}: named.{name}: {e}') from e
        key = subnet_key(subnet)
        if key in seen:
            raise RankSetError(f'{path}: named.{name} is the same subnet as '
                               f'named.{seen[key]}')
        if key in taken:
            raise RankSetError(f'{path}: named.{name} is the subnet '
                               f'{taken[key]}, a set this one is disjoint '
                               'from')
        seen[key] = name
        named.append((name, subnet))
    base = flops(first)
    out: List[Tuple[str, dict, float]] = [
        (name, subnet, 1.0 if subnet == first else flops(subnet) / base)
        for name, subnet in named
    ]
    index = 0
    for i, w in enumerate(spec['random']):
        lo, hi = w['flops']
        rng = random.Random(w['seed'])
        try:
            fixed = validate_subnet(model, w.get('fixed') or {}, strict=False)
        except SubnetError as e:
            raise RankSetError(f'{path}: random[{i}].fixed: {e}') from e
        kept = 0
        for _ in range(max_tries):
            if kept == w['num']:
                break
            subnet = dict(sample_subnet(model, rng, apply=False), **fixed)
            key = subnet_key(subnet)
            if key in seen or key in taken:
                continue
            ratio = flops(subnet) / base
            if not lo <= ratio <= hi:
                continue
            seen[key] = f'random{index}'
            out.append((f'random{index}', subnet, ratio))
            index += 1
            kept += 1
        if kept < w['num']:
            raise RankSetError(
                f'{path}: random[{i}]: {kept} of {w["num"]} subnets within '
                f'{lo}x-{hi}x FLOPs in {max_tries} draws; widen the window')
    return out


def train_resumable(cfg: Config,
                    work_dir: str,
                    name: str,
                    hooks: Sequence = ()) -> tuple:
    """Train ``cfg`` in this process (mmengine Runner) in ``work_dir``,
    resuming from its last checkpoint if an earlier run was interrupted,
    with ``hooks`` (Hook objects) registered beside the config's; returns
    the final checkpoint and the last validation metrics."""
    from mmengine.runner import Runner

    from mmnas_tricks.utils import (explain_unsafe_checkpoint,
                                    last_val_metrics, scalar_metrics)
    cfg = cfg.copy()
    cfg.work_dir = work_dir
    cfg.experiment_name = f'{name}_{time.time_ns()}'
    last = os.path.join(work_dir, 'last_checkpoint')
    if os.path.isfile(last):
        with open(last) as f:
            cfg.load_from = f.read().strip()
        cfg.resume = True
    runner = Runner.from_cfg(cfg)
    for hook in hooks:
        runner.register_hook(hook)
    with explain_unsafe_checkpoint():
        runner.train()
    checkpoint = None
    if os.path.isfile(last):
        with open(last) as f:
            checkpoint = f.read().strip()
    metrics = last_val_metrics(runner)
    if not metrics and cfg.get('resume') and runner.val_loop is not None:
        # killed after the last checkpoint, before its validation
        metrics = scalar_metrics(runner.val())
    return checkpoint, metrics


def train_standalone(cfg: Config, work_dir: str, name: str,
                     score_key: str) -> float:
    """Train ``cfg`` (:func:`train_resumable`) and return ``score_key`` of
    its last validation."""
    _, metrics = train_resumable(cfg, work_dir, name)
    if score_key not in metrics:
        raise KeyError(f'score_key {score_key!r} is not among the metrics '
                       f'{sorted(metrics)}')
    return metrics[score_key]


def standalone_config(cfg: Config,
                      subnet: dict,
                      seed: int = 0,
                      retrain: Optional[dict] = None,
                      **proxy) -> Config:
    """The plain config that trains ``subnet`` of the supernet config
    ``cfg`` alone: exported, with the retrain recipe ``retrain`` applied
    (:func:`~mmnas_tricks.engine.export.apply_retrain`; a pipeline config's
    ``nas.retrain``, :func:`~mmnas_tricks.engine.pipeline.retrain_recipe`)
    and the search settings stripped, seeded with ``seed``
    (``randomness.seed``: every stand-alone training of a study starts from
    the same random state, as ``tools/nas.py`` seeds its stages), then
    through :func:`proxy_config` with ``proxy`` (e.g. ``max_epochs=4``) if
    given."""
    from mmnas_tricks.models import export_config
    from .export import apply_retrain, strip_search_settings
    from .proxy import proxy_config
    cfg = cfg.copy()
    cfg.pop('nas', None)  # a pipeline's settings are not the model's
    static = apply_retrain(export_config(cfg, subnet), retrain)
    strip_search_settings(static)
    static.randomness = dict(static.get('randomness') or {}, seed=seed)
    return proxy_config(static, **proxy) if proxy else static


def finetune_estimate_config(cfg: Config,
                             subnet: dict,
                             weights: str,
                             epochs: int,
                             lr: float,
                             seed: int = 0,
                             val_dataloader: Optional[dict] = None,
                             evaluator: Optional[dict] = None,
                             retrain: Optional[dict] = None) -> Config:
    """The plain config that fine-tunes ``subnet`` of the supernet config
    ``cfg`` from ``weights`` (its exported supernet weights) for ``epochs``
    at ``lr`` (cosine to 0, no warm-up), as a short estimate of what it
    trains to: the search's data, so that the estimate sees what the
    supernet estimates see (the supernet's training subset; the search's
    held-out ``val_dataloader`` and ``evaluator`` where given, else the
    config's), with the rest of the retrain recipe ``retrain``, seeded with
    ``seed``. A pipeline config's values are
    :func:`~mmnas_tricks.engine.pipeline.search_data` and
    :func:`~mmnas_tricks.engine.pipeline.retrain_recipe`."""
    source = cfg.copy()
    retrain = dict(retrain or {})
    # the search's data, put in before the export so that a chosen input
    # size is written into these pipelines too (the retrain recipe's
    # training data would replace the supernet's)
    retrain.pop('train_dataloader', None)
    if val_dataloader:
        source['val_dataloader'] = val_dataloader
        retrain.pop('val_dataloader', None)
    if evaluator:
        source['val_evaluator'] = evaluator
        retrain.pop('val_evaluator', None)
    static = standalone_config(source, subnet, seed, retrain)
    static.train_cfg = dict(
        type='EpochBasedTrainLoop', max_epochs=epochs, val_interval=epochs)
    static.optim_wrapper.optimizer.lr = lr
    static.param_scheduler = [
        dict(
            type='CosineAnnealingLR',
            T_max=epochs,
            eta_min=0.0,
            by_epoch=True,
            begin=0,
            end=epochs,
            convert_to_iter_based=True)
    ]
    static.default_hooks.checkpoint = dict(
        type='CheckpointHook', interval=1, max_keep_ckpts=1)
    static.load_from = weights
    return static


#: the config keys that decide how mmengine's Runner trains and evaluates
#: (what a fingerprint covers; a helper variable of a config, such as
#: ``EPOCHS = 2`` or a dataloader kept for another stage, does not count)
TRAINING_KEYS = ('model', 'data_preprocessor', 'train_dataloader', 'train_cfg',
                 'optim_wrapper', 'param_scheduler', 'auto_scale_lr',
                 'val_dataloader', 'val_cfg', 'val_evaluator',
                 'test_dataloader', 'test_cfg', 'test_evaluator',
                 'default_hooks', 'custom_hooks', 'randomness', 'env_cfg',
                 'default_scope', 'load_from')


def _backend_free(node):
    """``node`` with the COCO backend of its metrics left out: a metric
    that only changes the library computing the same statistics does not
    change a result (``FastCocoMetric`` counts as mmdet's ``CocoMetric``:
    faster-coco-eval's statistics equal pycocotools', tested)."""
    if isinstance(node, dict):
        node = {k: _backend_free(v) for k, v in node.items()}
        kind = str(node.get('type', '')).rsplit('.', 1)[-1]
        if kind in ('FastCocoMetric', 'PreciseCocoMetric'):
            node.pop('backend', None)
        if kind == 'FastCocoMetric':
            node['type'] = 'CocoMetric'
        return node
    if isinstance(node, (list, tuple)):
        return type(node)(_backend_free(v) for v in node)
    return node


def config_fingerprint(cfg: Config) -> str:
    """A short digest of the :data:`TRAINING_KEYS` of ``cfg``: two configs
    with the same fingerprint train the same way, so a result of one stands
    for the other (a resumed study keeps a stand-alone score only while its
    config's fingerprint is unchanged). The COCO backend of a metric does
    not count (the same statistics either way)."""
    import hashlib
    import json
    used = {
        k: _backend_free(v)
        for k, v in cfg.to_dict().items() if k in TRAINING_KEYS
    }
    text = json.dumps(used, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class SupernetScorer:
    """Scores subnets of a trained supernet the way the search does: on the
    search's held-out data and evaluator (``val_dataloader`` /
    ``evaluator``, a pipeline config's ``nas.search`` ones from
    :func:`~mmnas_tricks.engine.pipeline.search_data`; else the config's
    ``val_dataloader`` / ``val_evaluator``), each
    from the supernet's own weights and statistics, optionally after BN
    calibration on the same ``num_calib`` training batches for every
    subnet (seeded), optionally routed to a few-shot sub-supernet.

    Args:
        cfg (Config): The supernet or pipeline config.
        checkpoint (str): The trained supernet.
        work_dir (str): Where the scoring Runner logs.
        score_key (str): The metric returned.
        num_calib (int): BN calibration batches. Defaults to 10.
        seed (int): Seed of the calibration batches. Defaults to 0.
        val_dataloader (dict, optional): The held-out data. Defaults to
            None (the config's ``val_dataloader``).
        evaluator (dict, optional): Its evaluator. Defaults to None (the
            config's ``val_evaluator``).
    """

    def __init__(self,
                 cfg: Config,
                 checkpoint: str,
                 work_dir: str,
                 score_key: str,
                 num_calib: int = 10,
                 seed: int = 0,
                 val_dataloader: Optional[dict] = None,
                 evaluator: Optional[dict] = None) -> None:
        import numpy as np
        import torch
        from mmengine.runner import Runner, load_checkpoint

        from mmnas_tricks.models.mutables import set_mode
        from mmnas_tricks.utils import explain_unsafe_checkpoint
        run_cfg = cfg.copy()
        run_cfg.pop('nas', None)
        run_cfg.custom_hooks = []
        run_cfg.work_dir = work_dir
        run_cfg.experiment_name = f'supernet_scorer_{time.time_ns()}'
        runner = Runner.from_cfg(run_cfg)
        self.model = runner.model
        with explain_unsafe_checkpoint():
            load_checkpoint(
                self.model,
                checkpoint,
                map_location='cpu',
                strict=True,
                logger='current')
        set_mode(self.model, 'sampled')
        self.loader = runner.build_dataloader(val_dataloader
                                              or run_cfg.val_dataloader)
        self.evaluator = runner.build_evaluator(evaluator
                                                or run_cfg.val_evaluator)
        self.evaluator.dataset_meta = self.loader.dataset.metainfo
        self.score_key = score_key
        self.num_calib = int(num_calib)
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        train_loader = runner.build_dataloader(
            run_cfg.train_dataloader, seed=seed)
        self.calib = []
        for data in train_loader:
            if len(self.calib) >= self.num_calib:
                break
            self.calib.append(data)
        self.state = {k: v.clone() for k, v in self.model.state_dict().items()}

    def score(self, subnet: dict, calibrate: bool, router=None) -> float:
        """``score_key`` of ``subnet``; with ``router`` (a
        :class:`~mmnas_tricks.engine.few_shot.FewShotRouter`) from the
        sub-supernet that matches it."""
        from .scoring import score_subnet
        if router is not None:
            router.load_for(self.model, subnet)
        else:
            self.model.load_state_dict(self.state)
        metrics = score_subnet(self.model, subnet, self.loader, self.evaluator,
                               self.calib, self.num_calib if calibrate else 0,
                               self.score_key)
        return float(metrics[self.score_key])
