"""NSGA2SearchLoop on the tiny trained segmentation supernet: the Pareto
front it writes is the non-dominated set of what it scored, the reference
subnet is scored and reported, the best subnet per FLOPs budget is exported,
a search killed inside a generation resumes to the identical front, and a
measured-latency objective and constraint work."""
import json
import os.path as osp

import pytest

from mmnas_tricks.engine.pareto import dominates
from mmnas_tricks.engine.runner import NSGA2SearchLoop
from mmnas_tricks.structures import read_subnet_file
from .test_evolution_search_loop import Killed, run, search_cfg


def nsga2_cfg(tiny_digits, ckpt, work_dir, name, generations, **loop):
    cfg = search_cfg(tiny_digits, ckpt, work_dir, name, generations)
    for key in ('top_k', 'num_mutation', 'num_crossover'):
        cfg.train_cfg.pop(key)
    cfg.train_cfg.update(
        type='mmnas_tricks.NSGA2SearchLoop', num_offspring=3, **loop)
    return cfg


@pytest.mark.heavy
def test_nsga2_front_reference_export_and_identical_resume(
        tiny_digits, tiny_seg_supernet, tmp_path, monkeypatch):
    ckpt = tiny_seg_supernet.epoch_2
    full_dir = str(tmp_path / 'full')
    full = run(
        nsga2_cfg(
            tiny_digits,
            ckpt,
            full_dir,
            'nsga_full',
            3,
            export_best=False,
            export_flops=(1.0, )))
    loop = full.train_loop
    out = osp.join(full_dir, 'search')
    rows = json.load(open(osp.join(out, 'candidates.json')))
    assert len(rows) == len(loop.records) >= 8
    assert {r['generation'] for r in rows} == {0, 1, 2}
    # the front: exactly the candidates no other beats in (score, FLOPs)
    front = json.load(open(osp.join(out, 'pareto_front.json')))
    assert front['objectives'] == ['score', 'flops']
    points = {r['subnet']: (-r['score'], r['flops']) for r in rows}
    expected = {
        k
        for k, p in points.items()
        if not any(dominates(q, p) for q in points.values())
    }
    assert {r['subnet'] for r in front['subnets']} == expected
    assert [r['flops'] for r in front['subnets']
            ] == sorted(r['flops'] for r in front['subnets'])
    assert loop.population and len(loop.population) <= loop.population_size
    # the reference (first choices) scored like a candidate, reported apart
    ref = json.load(open(osp.join(out, 'reference.json')))
    first = loop._first()
    assert json.loads(ref['subnet']) == json.loads(
        json.dumps(first)) and ref['score'] > 0
    assert ref['generation'] == 'reference'
    _, meta = read_subnet_file(osp.join(out, 'best_subnet.yaml'))
    assert meta['reference_score'] == ref['score']
    # the best subnet within 1.0x the reference's FLOPs, ready to retrain
    within = [r for r in rows if r['flops'] <= ref['flops']]
    exported = osp.join(out, 'best_subnet_1x.py')
    assert osp.isfile(exported) == bool(within)
    if within:
        best, meta = read_subnet_file(osp.join(out, 'best_subnet_1x.yaml'))
        assert meta['score'] == within[0]['score']  # rows are best first
        assert meta['max_flops_fraction'] == 1.0
        assert osp.isfile(osp.join(out, 'best_subnet_1x.pth'))

    # killed inside generation 1 (after one of its candidates), resumed
    mid_dir = str(tmp_path / 'mid')
    real_score = NSGA2SearchLoop._score
    calls = []

    def dying(self, subnet):
        if self._generation == 1:
            calls.append(1)
            if len(calls) == 2:
                raise Killed()
        return real_score(self, subnet)

    monkeypatch.setattr(NSGA2SearchLoop, '_score', dying)
    with pytest.raises(Killed):
        run(
            nsga2_cfg(
                tiny_digits, ckpt, mid_dir, 'nsga_mid_a', 3,
                export_best=False))
    state = json.load(open(osp.join(mid_dir, 'search', 'state.json')))
    assert state['generation'] == 1 and state['pending']
    monkeypatch.setattr(NSGA2SearchLoop, '_score', real_score)
    again = run(
        nsga2_cfg(
            tiny_digits, ckpt, mid_dir, 'nsga_mid_b', 3, export_best=False),
        resume=True).train_loop
    assert again.records == json.loads(json.dumps(loop.records))
    assert again.pareto_front() == loop.pareto_front()
    assert json.load(open(osp.join(mid_dir, 'search',
                                   'pareto_front.json'))) == front


@pytest.mark.heavy
def test_nsga2_latency_objective_and_constraint(tiny_digits, tiny_seg_supernet,
                                                tmp_path):
    loop = run(
        nsga2_cfg(
            tiny_digits,
            tiny_seg_supernet.epoch_2,
            str(tmp_path / 'lat'),
            'nsga_lat',
            2,
            export_best=False,
            objectives=('score', 'latency'),
            constraints=dict(latency=(None, '3*first')),
            latency=dict(repeats=3, warmup=1))).train_loop
    high = loop.constraints['latency'][1]
    assert high > 0
    assert loop.records and all(0 < r['latency_ms'] <= high
                                for r in loop.records.values())
    assert set(loop.latencies) >= set(loop.records)  # measured once each
    out = osp.join(str(tmp_path / 'lat'), 'search')
    # where the space is additive, the per-choice table (kept in the state)
    # gave every latency but the checked ones; else each was measured
    from mmnas_tricks.models.resources import LatencyTable, not_additive
    state = json.load(open(osp.join(out, 'state.json')))['latency_table']
    assert state['why_not'] == not_additive(loop.model) or \
        'relative error' in state['why_not']
    if state['why_not'] is None:
        table = LatencyTable(loop.model, None, state=state)
        predicted = sum(
            round(table.predict(dict(json.loads(k))), 4) == v
            for k, v in loop.latencies.items())
        assert predicted >= len(loop.latencies) - 4
    with open(osp.join(out, 'candidates.csv')) as f:
        assert 'latency_ms' in f.readline().strip().split(',')
    front = json.load(open(osp.join(out, 'pareto_front.json')))
    assert front['objectives'] == ['score', 'latency']


def test_search_refuses_unknown_latency_keys(tiny_digits, tmp_path):
    with pytest.raises(
            ValueError,
            match=r"latency keys \['speed'\] are "
            r"not among \['repeats', 'warmup', 'table'"):
        run(
            nsga2_cfg(
                tiny_digits,
                None,
                str(tmp_path / 'badlat'),
                'nsga_badlat',
                1,
                latency=dict(speed=1)))


def test_nsga2_bad_objectives(tiny_digits, tmp_path):
    for objectives in (('flops', ), ('score', 'speed'), ('score', 'flops',
                                                         'flops')):
        with pytest.raises(ValueError, match="must be 'score' and"):
            run(
                nsga2_cfg(
                    tiny_digits,
                    None,
                    str(tmp_path / 'bad'),
                    'nsga_bad',
                    1,
                    objectives=objectives))


@pytest.mark.heavy
def test_nsga2_islands_split_the_population_by_a_mutable(
        tiny_digits, tiny_seg_supernet, tmp_path):
    """With ``islands`` the random subnets are drawn in equal numbers for
    each choice of that mutable, mutation and crossover keep a subnet's
    island, and each island keeps its share of the population; a name that
    is not a searched mutable is refused with the valid ones."""
    from collections import Counter

    from mmnas_tricks.models.mutables import named_mutables
    from mmnas_tricks.utils import build_model
    ckpt = tiny_seg_supernet.epoch_2
    cfg = nsga2_cfg(
        tiny_digits,
        ckpt,
        str(tmp_path / 'isl'),
        'nsga_isl',
        2,
        export_best=False)
    name, mutable = next((n, m)
                         for n, m in named_mutables(build_model(cfg)).items()
                         if len(m.choices) >= 2)
    cfg.train_cfg.update(
        islands=name, population_size=2 * len(mutable.choices))
    loop = run(cfg).train_loop

    def island(key):
        return json.dumps(json.loads(key)[name])

    first = Counter(
        island(k) for k, r in loop.records.items() if r['generation'] == 0)
    assert first == {json.dumps(c): 2 for c in mutable.choices}
    later = [k for k, r in loop.records.items() if r['generation'] == 1]
    assert later  # generation 1 bred children (and filled islands up)
    population = Counter(island(k) for k in loop.population)
    assert set(population) <= set(first)
    assert all(n <= 2 for n in population.values())
    a, b = (
        loop.subnet_of(
            next(k for k in loop.records if island(k) == json.dumps(c)))
        for c in mutable.choices[:2])
    assert a[name] != b[name]
    assert loop.mutate(a, 1.0)[name] == a[name]
    assert loop.crossover(a, b)[name] == a[name]
    assert loop.crossover(b, a)[name] == b[name]

    # a budget only the smallest subnets of the island meet: random_within
    # repairs each draw into it
    from mmnas_tricks.models.mutables import extreme_subnet, get_subnet
    island_value = mutable.choices[-1]
    smallest = dict(
        get_subnet(loop.model), **extreme_subnet(loop.model, 'min'))
    smallest[name] = island_value
    budget = loop._resources(smallest, latency=False)['flops']
    loop.constraints = dict(flops=(None, budget))
    loop.rejected = {}
    for _ in range(3):
        subnet = dict(
            get_subnet(loop.model), **loop.random_within(island_value))
        assert subnet[name] == island_value
        assert loop._resources(subnet, latency=False)['flops'] <= budget

    bad = nsga2_cfg(
        tiny_digits,
        ckpt,
        str(tmp_path / 'bad'),
        'nsga_isl_bad',
        1,
        export_best=False,
        islands='no.such')
    with pytest.raises(KeyError, match='valid'):
        run(bad)
