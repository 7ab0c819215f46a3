"""Pareto ranks and crowding distances (NSGA-II, Deb et al., IEEE TEC
2002) of points whose every objective is minimised."""
from typing import List, Sequence

import numpy as np


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """``a`` is no worse than ``b`` in every objective and better in one."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return bool(np.all(a <= b) and np.any(a < b))


def non_dominated_ranks(points: Sequence[Sequence[float]]) -> List[int]:
    """The front each point lies on: 0 for the non-dominated ones, 1 for
    those dominated only by front 0, ... (fast non-dominated sorting)."""
    if len(points) == 0:
        return []
    pts = np.asarray(points, dtype=float).reshape(len(points), -1)
    n = len(pts)
    # better[i, j]: i dominates j
    no_worse = np.all(pts[:, None, :] <= pts[None, :, :], axis=2)
    better = no_worse & np.any(pts[:, None, :] < pts[None, :, :], axis=2)
    count = better.sum(axis=0)  # how many dominate each point
    ranks = np.full(n, -1)
    front = np.flatnonzero(count == 0)
    rank = 0
    while front.size:
        ranks[front] = rank
        count = count - better[front].sum(axis=0)
        count[ranks >= 0] = -1
        front = np.flatnonzero(count == 0)
        rank += 1
    return ranks.tolist()


def crowding_distances(points: Sequence[Sequence[float]]) -> List[float]:
    """NSGA-II's crowding distance of each point within its set (infinite
    at the ends of every objective): the larger, the less crowded."""
    n = len(points)
    if n <= 2:
        return [float('inf')] * n
    pts = np.asarray(points, dtype=float).reshape(n, -1)
    dist = np.zeros(n)
    for k in range(pts.shape[1]):
        order = np.argsort(pts[:, k], kind='stable')
        low, high = pts[order[0], k], pts[order[-1], k]
        dist[order[0]] = dist[order[-1]] = np.inf
        if high > low:
            dist[order[1:-1]] += (pts[order[2:], k] - pts[order[:-2], k]) / (
                high - low)
    return dist.tolist()
