"""One-shot hyperparameter tuning: the supernet recipe of a pipeline config
tuned for rank quality, with Optuna.

Each trial trains the pipeline's supernet stage with one recipe (learning
rate, epochs, warm-up, sampling rule, distillation weight, channel sorting
at inheritance, progressive shrinking), scores a fixed set of subnets with
it (BN-calibrated, as the search does) and returns the Kendall tau of those
estimates against their recorded stand-alone scores (a ``--truth`` file of
``tools/rank_correlation.py``): no stand-alone training is repeated per
trial. The study lives in an SQLite file (Optuna's RDB storage), so a killed
study continues where it stopped: a trial that was running is failed and
retried with the same recipe, whose supernet training resumes from its last
checkpoint (its work dir is named by the recipe). Proposals come from
Optuna's TPE sampler, seeded by the study's seed and the number of finished
trials, so a resumed study proposes what the uninterrupted one would.
With ``prune_epochs``, a trial reports its tau after those epochs of its
supernet training (the same estimates, on that epoch's checkpoint) and
Optuna's median pruner stops a trial whose tau falls below the median of
the earlier trials at the same epoch.
"""
import copy
import hashlib
import json
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence

from mmengine.config import Config
from mmengine.hooks import Hook

#: name -> (kind, choices or (low, high[, step]), log); the tunable recipe
PARAMS: Dict[str, tuple] = {
    'lr': ('float', (3e-4, 1e-2), True),
    'epochs': ('int', (4, 12, 1), False),
    'warmup_iters': ('int', (0, 300, 50), False),
    'strategy': ('categorical', ('sandwich', 'uniform'), False),
    'distill_weight': ('categorical', (0.0, 0.5, 1.0), False),
    'sort_channels': ('categorical', (False, True), False),
    'progressive': ('categorical', (False, True), False),
}

#: what progressive shrinking makes elastic, in order (Once-for-All's)
PROGRESSIVE_STAGES = (
    ('size_kernel',
     ['InputSizeChoice', 'ResBasicBlockChoice', 'ConvShapeChoice']),
    ('depth', ['DepthChoice']),
    ('width', ['ChannelChoice']),
)


def _hook(hooks: list, name: str) -> Optional[dict]:
    """The first hook config of type ``name`` in ``hooks``, or None."""
    from .hooks.utils import hook_configs
    return next(iter(hook_configs(hooks, name)), None)


def default_recipe(cfg: Config) -> dict:
    """The recipe ``cfg`` (a pipeline config) trains its supernet with, in
    the terms of :data:`PARAMS`."""
    hooks = list(cfg.get('custom_hooks', []))
    warmup = 0
    for s in cfg.get('param_scheduler') or []:
        if s.get('type') == 'LinearLR' and not s.get('by_epoch', True):
            warmup = int(s.get('end', 0))
    inherit = _hook(hooks, 'InheritWeightsHook') or {}
    sampler = _hook(hooks, 'SampleSubnetHook') or {}
    distill = _hook(hooks, 'InplaceDistillHook')
    return dict(
        lr=float(cfg.optim_wrapper.optimizer.lr),
        epochs=int(cfg.train_cfg.max_epochs),
        warmup_iters=warmup,
        strategy=sampler.get('strategy', 'uniform'),
        distill_weight=float(distill.get('cls_weight', 1.0))
        if distill else 0.0,
        sort_channels=bool(inherit.get('sort_channels', False)),
        progressive=_hook(hooks, 'SequentialSearchHook') is not None)


def _schedulers(schedulers: list, old_epochs: int, epochs: int,
                warmup: int) -> list:
    """``schedulers`` for ``epochs`` instead of ``old_epochs``: an
    iteration-based LinearLR is the warm-up (``warmup`` iterations, dropped
    at 0), epoch-based ones are stretched."""
    out = []
    for s in copy.deepcopy(schedulers):
        if s.get('type') == 'LinearLR' and not s.get('by_epoch', True):
            if warmup > 0:
                s['end'] = warmup
                out.append(s)
            continue
        if s.get('by_epoch', True):
            for key in ('begin', 'end', 'T_max'):
                if key in s:
                    s[key] = round(s[key] * epochs / old_epochs)
        out.append(s)
    if warmup > 0 and not any(
            s.get('type') == 'LinearLR' and not s.get('by_epoch', True)
            for s in out):
        out.insert(
            0,
            dict(
                type='LinearLR',
                start_factor=0.01,
                by_epoch=False,
                begin=0,
                end=warmup))
    return out


def apply_recipe(cfg: Config, recipe: dict, source: str = 'the config') -> \
        Config:
    """A copy of the pipeline config ``cfg`` whose supernet trains with
    ``recipe`` (keys of :data:`PARAMS`; missing ones keep ``cfg``'s).

    Raises:
        KeyError: an unknown recipe key (the valid ones named).
        ValueError: a key needs a hook ``cfg`` lacks (e.g. ``strategy``
            without a ``SampleSubnetHook``), naming ``source``.
    """
    unknown = sorted(set(recipe) - set(PARAMS))
    if unknown:
        raise KeyError(f'recipe keys {unknown} are not among {list(PARAMS)}')
    cfg = copy.deepcopy(cfg)
    old = default_recipe(cfg)
    new = dict(old, **recipe)
    hooks = copy.deepcopy(list(cfg.get('custom_hooks', [])))

    def need(name, key):
        hook = _hook(hooks, name)
        if hook is None:
            raise ValueError(f'{source}: recipe key {key!r} needs a {name} '
                             'in custom_hooks')
        return hook

    cfg.optim_wrapper.optimizer.lr = float(new['lr'])
    epochs = int(new['epochs'])
    cfg.train_cfg.max_epochs = epochs
    if 'val_interval' in cfg.train_cfg:
        cfg.train_cfg.val_interval = epochs
    cfg.param_scheduler = _schedulers(
        list(cfg.get('param_scheduler') or []), old['epochs'], epochs,
        int(new['warmup_iters']))
    if new['strategy'] != old['strategy']:
        need('SampleSubnetHook', 'strategy')['strategy'] = new['strategy']
    if new['sort_channels'] != old['sort_channels']:
        need('InheritWeightsHook',
             'sort_channels')['sort_channels'] = bool(new['sort_channels'])
    if new['distill_weight'] != old['distill_weight']:
        distill = _hook(hooks, 'InplaceDistillHook')
        if float(new['distill_weight']) == 0.0:
            hooks.remove(distill)
        elif distill is None:
            hooks.append(
                dict(
                    type='mmnas_tricks.InplaceDistillHook',
                    cls_weight=float(new['distill_weight'])))
        else:
            distill['cls_weight'] = float(new['distill_weight'])
    progressive = _hook(hooks, 'SequentialSearchHook')
    if progressive is not None and (not new['progressive']
                                    or new['epochs'] != old['epochs']):
        hooks.remove(progressive)
        progressive = None
    if new['progressive'] and progressive is None:
        sampler = need('SampleSubnetHook', 'progressive')
        if epochs < len(PROGRESSIVE_STAGES):
            raise ValueError(
                f'{source}: progressive shrinking has '
                f'{len(PROGRESSIVE_STAGES)} stages, one epoch each at '
                f'least; epochs={epochs}')
        hooks.insert(
            hooks.index(sampler) + 1,
            dict(
                type='mmnas_tricks.SequentialSearchHook',
                stages=[
                    dict(
                        name=name,
                        begin_epoch=i * epochs // len(PROGRESSIVE_STAGES),
                        types=list(types),
                        select=None)
                    for i, (name, types) in enumerate(PROGRESSIVE_STAGES)
                ]))
    cfg.custom_hooks = hooks
    return cfg


def recipe_digest(recipe: dict) -> str:
    """A short name of ``recipe``: a retried trial finds its work dir."""
    text = json.dumps(recipe, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def read_truth(path: str, held_out: bool = False) -> List[dict]:
    """The subnets of a truth file that have a stand-alone score:
    ``{'name', 'subnet', 'flops_ratio', 'standalone', 'index'}`` each (plus
    ``input_size`` and ``set`` where the file has them), in the study's
    order. The file is a ``tools/rank_correlation.py`` state (one score
    per subnet) or a ``benchmarks/rank_truth.py`` results file: there the
    score is the mean over its seeds (every seed finished), and only the
    sets that are not held out are read (``held_out=True``: only the held-
    out ones, for a report), so that nothing is tuned on a held-out set.

    Raises:
        ValueError: fewer than 3 such subnets (naming the file).
    """
    with open(path) as f:
        state = json.load(f)
    records = state.get('records') or {}
    if isinstance(records, list):  # benchmarks/rank_truth.py
        rows = [
            dict(
                name=r['name'],
                subnet=r['subnet'],
                flops_ratio=r['flops_ratio'],
                standalone=sum(r['scores']) / len(r['scores']),
                index=i,
                input_size=r.get('input_size'),
                set=r.get('set')) for i, r in enumerate(records)
            if None not in r['scores'] and bool(r.get('held_out')) == held_out
        ]
    else:
        rows = [
            dict(
                name=r.get('name', str(r.get('index'))),
                subnet=r['subnet'],
                flops_ratio=r['flops_ratio'],
                standalone=r['standalone'],
                index=r.get('index', i))
            for i, r in enumerate(records.values()) if 'standalone' in r
        ]
    if len(rows) < 3:
        raise ValueError(f'{path}: {len(rows)} subnets have a stand-alone '
                         'score; a rank objective needs at least 3')
    return sorted(rows, key=lambda r: r['index'])


def rank_objectives(estimates: Sequence[float],
                    truth: List[dict],
                    window: Optional[Sequence[float]] = None) -> dict:
    """Kendall tau of ``estimates`` against the stand-alone scores of
    ``truth`` over all its subnets (``tau_all``) and those within
    ``window`` x the baseline's FLOPs (``tau_window``), with FLOPs alone's
    taus beside them."""
    from mmnas_tricks.utils import rank_consistency
    scores = [r['standalone'] for r in truth]
    flops = [r['flops_ratio'] for r in truth]
    out = dict(
        tau_all=rank_consistency(estimates, scores)['kendall_tau'],
        flops_tau_all=rank_consistency(flops, scores)['kendall_tau'])
    if window is not None:
        inside = [
            i for i, r in enumerate(truth)
            if window[0] <= r['flops_ratio'] <= window[1]
        ]
        if len(inside) >= 2:
            out['tau_window'] = rank_consistency(
                [estimates[i] for i in inside],
                [scores[i] for i in inside])['kendall_tau']
            out['flops_tau_window'] = rank_consistency(
                [flops[i] for i in inside],
                [scores[i] for i in inside])['kendall_tau']
    return out


OBJECTIVES = ('all', 'window', 'mean')


def objective_value(taus: dict, objective: str) -> float:
    """The number the study maximises: ``tau_all``, ``tau_window`` or their
    mean."""
    if objective == 'all':
        return taus['tau_all']
    if 'tau_window' not in taus:
        raise ValueError(f'objective {objective!r} needs a FLOPs window '
                         'with at least 2 subnets')
    if objective == 'window':
        return taus['tau_window']
    return (taus['tau_all'] + taus['tau_window']) / 2


def suggest(trial, names: Sequence[str], fixed: dict) -> dict:
    """The recipe of an Optuna ``trial``: ``names`` suggested from
    :data:`PARAMS`, the rest from ``fixed``."""
    recipe = dict(fixed)
    for name in names:
        kind, space, log = PARAMS[name]
        if kind == 'float':
            recipe[name] = trial.suggest_float(name, *space, log=log)
        elif kind == 'int':
            low, high, step = space
            recipe[name] = trial.suggest_int(name, low, high, step=step)
        else:
            recipe[name] = trial.suggest_categorical(name, list(space))
    return recipe


def run_study(study_name: str,
              storage: str,
              names: Sequence[str],
              fixed: dict,
              evaluate: Callable[..., dict],
              num_trials: int,
              objective: str = 'all',
              seed: int = 0,
              first: Optional[dict] = None,
              log: Callable[[str], None] = print,
              after_trial: Optional[Callable] = None,
              pruner=None):
    """Run (or continue) the study until ``num_trials`` trials are complete.

    Args:
        study_name (str): The study's name in ``storage``.
        storage (str): An Optuna storage URL (``sqlite:///...``).
        names (Sequence[str]): The tuned keys of :data:`PARAMS`.
        fixed (dict): The other recipe keys' values.
        evaluate (Callable): recipe -> dict of taus
            (:func:`rank_objectives`), plus anything to record. With
            ``pruner``, ``evaluate(recipe, report)``: ``report(taus,
            epoch)`` reports intermediate taus and raises
            ``optuna.TrialPruned`` when the pruner stops the trial.
        num_trials (int): Complete trials wanted in all.
        objective (str): One of :data:`OBJECTIVES`. Defaults to ``'all'``.
        seed (int): Seed of the proposals. Defaults to 0.
        first (dict, optional): A recipe tried first (the config's own, to
            compare with). Defaults to None.
        log (Callable): Progress lines. Defaults to ``print``.
        after_trial (Callable, optional): Called with the study after every
            trial (e.g. to write the results so far). Defaults to None.
        pruner (optuna.pruners.BasePruner, optional): Stops trials whose
            reported taus fall behind (e.g. ``MedianPruner``). A pruned
            trial is finished but not complete: the study runs until
            ``num_trials`` trials are complete. Defaults to None (no
            pruning).

    Returns:
        optuna.Study: The study.
    """
    import optuna
    from optuna.trial import TrialState
    if objective not in OBJECTIVES:
        raise ValueError(f'objective={objective!r} is not one of '
                         f'{list(OBJECTIVES)}')
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=study_name,
        storage=storage,
        direction='maximize',
        load_if_exists=True,
        pruner=pruner)
    trials = study.get_trials(deepcopy=False)
    if not trials and first is not None:
        study.enqueue_trial({n: first[n] for n in names})
    # one process per study: a trial still running was killed with it
    done = {
        recipe_digest(t.params)
        for t in trials if t.state in (TrialState.COMPLETE, TrialState.WAITING)
    }
    for t in trials:
        killed = t.state == TrialState.RUNNING
        if killed:
            study.tell(t.number, state=TrialState.FAIL)
        interrupted = killed or t.user_attrs.get('interrupted')
        if interrupted and t.params and recipe_digest(t.params) not in done:
            log(f'trial {t.number} was interrupted: retried with the same '
                f'recipe {t.params}')
            study.enqueue_trial(t.params)
            done.add(recipe_digest(t.params))

    def complete():
        return len(study.get_trials(states=(TrialState.COMPLETE, )))

    def finished():
        return len(
            study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED)))

    def run(trial):
        recipe = suggest(trial, names, fixed)
        log(f'trial {trial.number}: {recipe}')

        def report(taus: dict, epoch: int) -> None:
            value = objective_value(taus, objective)
            trial.report(value, epoch)
            log(f'trial {trial.number}: epoch {epoch}: {objective} tau '
                f'{value:.3f}')
            if trial.should_prune():
                log(f'trial {trial.number}: pruned at epoch {epoch}')
                raise optuna.TrialPruned()

        try:
            result = evaluate(recipe) if pruner is None else evaluate(
                recipe, report)
        except KeyboardInterrupt:
            trial.set_user_attr('interrupted', True)
            raise
        for key, value in result.items():
            trial.set_user_attr(key, value)
        value = objective_value(result, objective)
        log(f'trial {trial.number}: {objective} tau {value:.3f} ' +
            ', '.join(f'{k} {v:.3f}'
                      for k, v in result.items() if isinstance(v, float)))
        return value

    while complete() < num_trials:
        # the proposal depends on the finished trials only: a resumed study
        # proposes what the uninterrupted one would
        study.sampler = optuna.samplers.TPESampler(seed=seed + finished())
        study.optimize(run, n_trials=1, catch=())
        if after_trial is not None:
            after_trial(study)
    return study


def study_rows(study) -> List[dict]:
    """One row per complete trial: number, objective value, recipe and the
    recorded taus."""
    from optuna.trial import TrialState
    rows = []
    for t in study.get_trials(states=(TrialState.COMPLETE, )):
        row = dict(number=t.number, value=t.value, **t.params)
        row.update({
            k: v
            for k, v in t.user_attrs.items()
            if not isinstance(v, (list, dict))
        })
        rows.append(row)
    return rows


def trial_work_dir(work_dir: str, recipe: dict) -> str:
    return osp.join(work_dir, 'trials', recipe_digest(recipe))


def estimate_taus(cfg: Config,
                  checkpoint: str,
                  truth: List[dict],
                  work_dir: str,
                  score_key: str,
                  seed: int,
                  calibrate_bn: int,
                  window: Optional[Sequence[float]] = None) -> dict:
    """:func:`rank_objectives` of the supernet ``checkpoint`` of the
    pipeline config ``cfg``: every subnet of ``truth`` estimated the way the
    search does (BN calibration on ``calibrate_bn`` training batches, the
    search's held-out data), with the estimates. A mutable of ``cfg``'s
    space that the truth's subnets do not name (a space grown by a choice,
    e.g. an activation choice) is taken at its first choice, the one the
    truth's space had."""
    from mmnas_tricks.models.inherit import plain_subnet
    from .pipeline import search_data
    from .rank import SupernetScorer
    scorer = SupernetScorer(cfg, checkpoint, work_dir, score_key, calibrate_bn,
                            seed, **search_data(cfg))
    first = plain_subnet(scorer.model)
    estimates = [
        scorer.score(dict(first, **r['subnet']), calibrate=calibrate_bn > 0)
        for r in truth
    ]
    out = rank_objectives(estimates, truth, window)
    out['estimates'] = [round(e, 4) for e in estimates]
    return out


class ReportHook(Hook):
    """After the epochs ``epochs`` of a trial's supernet training (run after
    the CheckpointHook, so on that epoch's checkpoint): its taus, passed to
    ``report`` (which raises ``optuna.TrialPruned`` to stop the trial)."""

    priority = 'LOWEST'

    def __init__(self, epochs: Sequence[int], taus: Callable[[str], dict],
                 report: Callable[[dict, int], None]) -> None:
        self.epochs = set(int(e) for e in epochs)
        self.taus = taus
        self.report = report

    def after_train_epoch(self, runner) -> None:
        epoch = runner.epoch + 1
        if epoch not in self.epochs:
            return
        checkpoint = osp.join(runner.work_dir, f'epoch_{epoch}.pth')
        if osp.isfile(checkpoint):
            self.report(self.taus(checkpoint), epoch)


def evaluate_recipe(
    config_path: str,
    recipe: dict,
    truth: List[dict],
    work_dir: str,
    baseline_checkpoint: Optional[str],
    score_key: str,
    seed: int = 0,
    calibrate_bn: int = 10,
    window: Optional[Sequence[float]] = None,
    report: Optional[Callable[[dict, int], None]] = None,
    prune_epochs: Sequence[int] = ()
) -> dict:
    """:func:`evaluate_supernet` of the supernet stage of the pipeline
    config at ``config_path`` with ``recipe``, in
    ``<work_dir>/trials/<digest>/`` (resumed if an earlier run of the same
    recipe was interrupted). With ``report``, the taus after each of
    ``prune_epochs`` go to ``report(taus, epoch)`` (a pruner may stop the
    trial there: ``optuna.TrialPruned``)."""
    from mmnas_tricks.utils import load_config
    from .pipeline import stage_configs
    cfg = apply_recipe(load_config(config_path), recipe, config_path)
    stages = stage_configs(cfg, config_path)
    return evaluate_supernet(
        cfg,
        stages['supernet'],
        truth,
        trial_work_dir(work_dir, recipe),
        baseline_checkpoint if stages['inherit'] == 'baseline' else False,
        score_key,
        seed,
        calibrate_bn,
        window,
        report,
        prune_epochs,
        config_path=config_path)


def evaluate_supernet(cfg: Config,
                      supernet: Config,
                      truth: List[dict],
                      work: str,
                      baseline_checkpoint,
                      score_key: str,
                      seed: int = 0,
                      calibrate_bn: int = 10,
                      window: Optional[Sequence[float]] = None,
                      report: Optional[Callable[[dict, int], None]] = None,
                      prune_epochs: Sequence[int] = (),
                      config_path: str = 'the config') -> dict:
    """Train the supernet stage config ``supernet`` of the pipeline config
    ``cfg`` in ``work`` (resumed from its last checkpoint if an earlier run
    was interrupted; seeded by ``seed``, its subnet sequence too; from
    ``baseline_checkpoint``, the trained baseline the pipeline inherits, or
    ``False`` where it inherits none: a missing or absent checkpoint is an
    error), estimate
    every subnet of ``truth`` with it the way the search does
    (:func:`estimate_taus`) and return :func:`rank_objectives` with the
    estimates, the first subnet's validation score and the training
    time."""
    import time

    from .rank import train_resumable
    supernet = supernet.copy()
    supernet.randomness = dict(seed=seed)
    supernet.custom_hooks = [  # the subnet sequence follows the seed too
        dict(h, seed=seed) if _hook([h], 'SampleSubnetHook') else h
        for h in supernet.get('custom_hooks', []) or []
    ]
    if baseline_checkpoint is not False:
        if not baseline_checkpoint or not osp.isfile(baseline_checkpoint):
            raise FileNotFoundError(
                f'{config_path} inherits the trained baseline '
                f"(nas.inherit='baseline'): its checkpoint "
                f'{baseline_checkpoint!r} does not exist; train it first '
                f'(tools/nas.py {config_path} --stages baseline)')
        supernet.load_from = baseline_checkpoint
    if _hook(supernet.custom_hooks, 'RandomStateHook') is None:
        supernet.custom_hooks = list(supernet.custom_hooks) + [
            dict(type='mmnas_tricks.RandomStateHook')
        ]

    def taus(checkpoint: str) -> dict:
        return estimate_taus(cfg, checkpoint, truth,
                             osp.join(work, 'estimate'), score_key, seed,
                             calibrate_bn, window)

    hooks = [] if report is None or not prune_epochs else [
        ReportHook(prune_epochs, taus, report)
    ]
    start = time.time()
    checkpoint, metrics = train_resumable(supernet, work, 'tune_supernet',
                                          hooks)
    seconds = time.time() - start
    out = taus(checkpoint)
    out.update(
        first_subnet=float(metrics.get(score_key, float('nan'))),
        supernet_seconds=round(seconds, 1))
    return out
