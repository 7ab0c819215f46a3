"""Re-ranking a search's best subnets by a short fine-tune.

A weight-sharing supernet scores subnets near the weights it inherited too
well and re-allocations (a higher input size with narrower layers, say) too
badly; a short fine-tune of each subnet from its supernet weights (as
Once-for-All deploys a subnet) estimates what it trains to much better
(docs/benchmarks.md, "Rank quality of the whole-detector supernet"), at the
cost of a training epoch per subnet. So a search re-ranks a few: for each
FLOPs budget of its exports, the best ``topk`` scored subnets within it
(with ``group_by``: the best ``topk`` of each value of that mutable, e.g.
each input size, so that the fine-tune sees the re-allocations the supernet
under-rates), each fine-tuned once (a subnet within several budgets serves
each), and each budget's pick is the best fine-tuned one within it.

``SearchLoop`` exports the candidates (:func:`select_candidates`),
``tools/nas.py``'s ``rerank`` stage fine-tunes them and :func:`choose`
picks.
"""
import json
from typing import Dict, List, Optional, Sequence

#: the keys of a pipeline's ``nas.rerank`` (and their defaults)
RERANK_DEFAULTS = dict(topk=1, group_by=None, epochs=1, lr=None)


def check_rerank(rerank: Optional[dict], where: str) -> Optional[dict]:
    """``rerank`` with its defaults filled in (None stays None).

    Raises:
        KeyError: a key not among :data:`RERANK_DEFAULTS`.
        ValueError: ``topk`` or ``epochs`` below 1, ``lr`` not positive.
    """
    if rerank is None:
        return None
    unknown = sorted(set(rerank) - set(RERANK_DEFAULTS))
    if unknown:
        raise KeyError(f'{where}: rerank keys {unknown} are not among '
                       f'{list(RERANK_DEFAULTS)}')
    out = dict(RERANK_DEFAULTS, **rerank)
    for key in ('topk', 'epochs'):
        if not isinstance(out[key], int) or out[key] < 1:
            raise ValueError(f'{where}: rerank.{key}={out[key]!r} must be an '
                             'int >= 1')
    if out['lr'] is not None and not (isinstance(out['lr'], (int, float))
                                      and out['lr'] > 0):
        raise ValueError(f'{where}: rerank.lr={out["lr"]!r} must be a '
                         'positive number or None (the supernet\'s lr)')
    return out


def select_candidates(ranked: Sequence[str],
                      flops: Dict[str, float],
                      budgets: Dict[str, float],
                      topk: int = 1,
                      group_by: Optional[str] = None) -> List[dict]:
    """The subnets to re-rank.

    Args:
        ranked: Scored subnet keys (JSON of the subnet), best first.
        flops: FLOPs by subnet key.
        budgets: Budget name (e.g. ``'1x'``) -> most FLOPs.
        topk: Subnets per budget (per group with ``group_by``).
        group_by: A mutable name: the best ``topk`` of each of its chosen
            values within each budget. None: of the whole budget.

    Returns:
        list[dict]: ``key`` and ``budgets`` (the budget names it is a
        candidate of), in order of first appearance in ``ranked``.
    """
    out: Dict[str, List[str]] = {}
    for budget, most in budgets.items():
        taken: Dict[str, int] = {}
        for key in ranked:
            if flops[key] > most:
                continue
            group = 'all'
            if group_by is not None:
                subnet = json.loads(key)
                if group_by not in subnet:
                    raise KeyError(f'rerank group_by={group_by!r} is not a '
                                   f'searched mutable; the subnet has '
                                   f'{sorted(subnet)}')
                group = json.dumps(subnet[group_by])
            if taken.get(group, 0) >= topk:
                continue
            taken[group] = taken.get(group, 0) + 1
            out.setdefault(key, []).append(budget)
    order = {k: i for i, k in enumerate(ranked)}
    return [
        dict(key=k, budgets=b)
        for k, b in sorted(out.items(), key=lambda kv: order[kv[0]])
    ]


def choose(candidates: Sequence[dict], scores: Dict[str, float],
           budgets: Sequence[str]) -> Dict[str, str]:
    """Each budget's pick: the candidate (``name``) of the best fine-tuned
    score (``scores`` by name, greater is better) among those of that
    budget; ties go to the earlier candidate (the better supernet score)."""
    picks = {}
    for budget in budgets:
        mine = [c['name'] for c in candidates if budget in c['budgets']]
        if mine:
            picks[budget] = max(
                mine, key=lambda n: (scores[n], -mine.index(n)))
    return picks
