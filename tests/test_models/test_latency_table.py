"""LatencyTable: a search's latency per candidate from a per-choice table
where the space is additive and the table predicts, measured everywhere
else (here with a deterministic stand-in for the clock)."""
import random

import pytest

from mmnas_tricks.models.mutables import named_mutables, sample_subnet
from mmnas_tricks.models.resources import LatencyTable
from .test_mutables import Toy
from .test_resource_table import Chain

#: milliseconds each choice costs in the stand-in clock
COST = dict(conv=2.0, skip=0.25)


class Clock:
    """``measure(subnet)``: 1 ms plus each choice's cost, summed (additive)
    or multiplied (not); counts its calls."""

    def __init__(self, additive=True):
        self.additive = additive
        self.calls = 0

    def __call__(self, subnet):
        self.calls += 1
        costs = [COST.get(str(c), 1.0) for c in subnet.values()]
        if self.additive:
            return 1.0 + sum(costs)
        out = 1.0
        for c in costs:
            out *= 1.0 + c
        return out


def _subnets(model, num=6, seed=0):
    rng = random.Random(seed)
    return [sample_subnet(model, rng, apply=False) for _ in range(num)]


def test_an_additive_space_takes_two_measurements_per_choice():
    model = Chain()
    clock = Clock()
    table = LatencyTable(model, clock, check=2)
    choices = sum(m.num_choices - 1 for m in named_mutables(model).values())
    assert table.why_not is None
    # a paired base measurement per entry (and the discarded warm-up)
    assert table.measurements == 2 * choices
    assert clock.calls == table.measurements + LatencyTable.WARMUP
    for subnet in _subnets(model):
        assert table(subnet) == pytest.approx(clock(subnet))
    # two checked predictions were measured too, then none
    assert table.measurements == 2 * choices + 2
    assert table.errors == [0.0, 0.0] and table.deltas is not None


def test_a_table_that_does_not_predict_is_dropped():
    model = Chain()
    clock = Clock(additive=False)
    table = LatencyTable(model, clock, check=4, tolerance=0.15)
    subnets = _subnets(model, num=12)
    # the first subnet off the base in two mutables shows the interaction
    got = [table(s) for s in subnets]
    assert table.deltas is None and 'relative error' in table.why_not
    assert got == [clock(s) for s in subnets]  # measured, every one


def test_spaces_that_are_not_additive_are_measured_each():
    model = Toy()  # an input choice picks which outputs are used
    clock = Clock()
    table = LatencyTable(model, clock)
    assert 'pick is a InputChoice' in table.why_not
    assert clock.calls == 0 and table.predict({}) is None
    subnets = _subnets(model, num=3)
    for s in subnets:
        table(s)
    assert table.measurements == 3


def test_a_table_resumes_from_its_state_without_measuring():
    model = Chain()
    table = LatencyTable(model, Clock(), check=1)
    subnets = _subnets(model)
    first = [table(s) for s in subnets]
    clock = Clock()
    again = LatencyTable(model, clock, state=table.state_dict())
    assert [again(s) for s in subnets] == first and clock.calls == 0
    with pytest.raises(ValueError, match='tolerance'):
        LatencyTable(model, clock, tolerance=0)
