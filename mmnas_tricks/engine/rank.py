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


def train_standalone(cfg: Config, work_dir: str, name: str,
                     score_key: str) -> float:
    """Train ``cfg`` from scratch in this process (mmengine Runner) and
    return ``score_key`` of its last validation."""
    from mmengine.runner import Runner

    from mmnas_tricks.utils import explain_unsafe_checkpoint, last_val_metrics
    cfg = cfg.copy()
    cfg.work_dir = work_dir
    cfg.experiment_name = f'{name}_{time.time_ns()}'
    runner = Runner.from_cfg(cfg)
    with explain_unsafe_checkpoint():
        runner.train()
    metrics = last_val_metrics(runner)
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
    tmp = path + '.tmp.png'
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)


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
