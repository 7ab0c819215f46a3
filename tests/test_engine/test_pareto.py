"""Pareto ranks and crowding distances of NSGA-II on known points and, as
properties, on random ones."""
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from mmnas_tricks.engine.pareto import (crowding_distances, dominates,
                                        non_dominated_ranks)


def test_ranks_and_crowding_of_known_points():
    # (−score, flops): a front of three, one dominated by (1, 1), one by
    # both of the second front
    points = [(0, 3), (1, 1), (3, 0), (2, 2), (3, 3), (1, 1)]
    assert non_dominated_ranks(points) == [0, 0, 0, 1, 2, 0]
    assert dominates((1, 1), (2, 2)) and not dominates((1, 1), (1, 1))
    assert not dominates((0, 3), (3, 0))
    dists = crowding_distances([(0, 3), (1, 1), (3, 0)])
    assert math.isinf(dists[0]) and math.isinf(dists[2])
    # the middle one: (3 - 0) / 3 + (3 - 0) / 3
    assert dists[1] == 2.0
    assert crowding_distances([(1, 2)]) == [math.inf]
    assert non_dominated_ranks([]) == []


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, 5), st.integers(0, 3)),
        min_size=1,
        max_size=25))
def test_every_point_of_a_front_is_beaten_only_by_earlier_fronts(points):
    ranks = non_dominated_ranks(points)
    assert min(ranks) == 0 and sorted(set(ranks)) == list(
        range(max(ranks) + 1))
    for i, p in enumerate(points):
        beaten_by = [ranks[j] for j, q in enumerate(points) if dominates(q, p)]
        assert all(r < ranks[i] for r in beaten_by)
        if ranks[i] > 0:  # something on the front just before beats it
            assert ranks[i] - 1 in beaten_by
    assert len(crowding_distances(points)) == len(points)
