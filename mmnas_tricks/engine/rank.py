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
