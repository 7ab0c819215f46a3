"""What the rank tools share (tools/proxy_rank.py,
tools/rank_correlation.py): the subnets to compare, stand-alone training of
one subnet, and the scatter plot (TRICKS.md T5.3)."""
import os
import random
import time
from typing import List, Sequence

from mmengine.config import Config

from mmnas_tricks.models.mutables import named_mutables, sample_subnet
from mmnas_tricks.structures import subnet_key


def distinct_subnets(model, num: int, seed: int = 0) -> List[dict]:
    """The baseline (every mutable's first choice) and ``num - 1`` random
    distinct subnets of ``model`` (seeded)."""
    if num < 1:
        raise ValueError(f'num={num} must be >= 1')
    first = {n: m.choices[0] for n, m in named_mutables(model).items()}
    found = {subnet_key(first): first}
    rng = random.Random(seed)
    for _ in range(100 * num):
        if len(found) >= num:
            break
        subnet = sample_subnet(model, rng, apply=False)
        found.setdefault(subnet_key(subnet), subnet)
    return list(found.values())


def train_resumable(cfg: Config, work_dir: str, name: str) -> tuple:
    """Train ``cfg`` in this process (mmengine Runner) in ``work_dir``,
    resuming from its last checkpoint if an earlier run was interrupted;
    returns the final checkpoint and the last validation metrics."""
    from mmengine.runner import Runner

    from mmnas_tricks.utils import explain_unsafe_checkpoint, last_val_metrics
    cfg = cfg.copy()
    cfg.work_dir = work_dir
    cfg.experiment_name = f'{name}_{time.time_ns()}'
    last = os.path.join(work_dir, 'last_checkpoint')
    if os.path.isfile(last):
        with open(last) as f:
            cfg.load_from = f.read().strip()
        cfg.resume = True
    runner = Runner.from_cfg(cfg)
    with explain_unsafe_checkpoint():
        runner.train()
    checkpoint = None
    if os.path.isfile(last):
        with open(last) as f:
            checkpoint = f.read().strip()
    metrics = last_val_metrics(runner)
    if not metrics and cfg.get('resume') and runner.val_loop is not None:
        # killed after the last checkpoint, before its validation
        metrics = {
            k: float(v)
            for k, v in runner.val().items() if isinstance(v, (int, float))
        }
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


def scatter_png(xs: Sequence[float], ys: Sequence[float],
                labels: Sequence[str], xlabel: str, ylabel: str, title: str,
                path: str) -> None:
    """A labelled scatter plot, written atomically."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(xs, ys)
    for x, y, label in zip(xs, ys, labels):
        ax.annotate(str(label), (x, y))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.tight_layout()
    from mmnas_tricks.utils.io import atomic_write
    atomic_write(path, lambda f: fig.savefig(f, format='png'))
    plt.close(fig)


def load_records(path: str) -> dict:
    """The state a rank tool saved at ``path`` (``records`` by subnet key),
    or a fresh one."""
    import json
    import os.path as osp
    if osp.isfile(path):
        with open(path) as f:
            return json.load(f)
    return dict(records={})


def standalone_config(cfg: Config, subnet: dict, **proxy) -> Config:
    """The plain config that trains ``subnet`` of the supernet config
    ``cfg`` alone: exported, with ``cfg.retrain`` applied and the search
    settings stripped, then through :func:`proxy_config` with ``proxy``
    (e.g. ``max_epochs=4``) if given."""
    from mmnas_tricks.models import export_config
    from .export import apply_retrain, strip_search_settings
    from .proxy import proxy_config
    static = apply_retrain(export_config(cfg, subnet))
    strip_search_settings(static)
    return proxy_config(static, **proxy) if proxy else static


class SupernetScorer:
    """Scores subnets of a trained supernet the way the search does: on the
    search stage's held-out data and evaluator (``nas.search`` of a
    pipeline config; else ``val_dataloader`` / ``val_evaluator``), each
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
    """

    def __init__(self,
                 cfg: Config,
                 checkpoint: str,
                 work_dir: str,
                 score_key: str,
                 num_calib: int = 10,
                 seed: int = 0) -> None:
        import numpy as np
        import torch
        from mmengine.runner import Runner, load_checkpoint

        from mmnas_tricks.models.mutables import set_mode
        from mmnas_tricks.utils import explain_unsafe_checkpoint
        search = (cfg.get('nas') or {}).get('search') or {}
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
        self.loader = runner.build_dataloader(
            search.get('val_dataloader') or run_cfg.val_dataloader)
        self.evaluator = runner.build_evaluator(
            search.get('evaluator') or run_cfg.val_evaluator)
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
