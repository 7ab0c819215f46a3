"""Multi-objective search (NSGA-II) over a trained supernet: a strategy on
the :class:`SearchLoop` skeleton that returns the Pareto front."""
import json
from typing import Dict, List, Sequence, Tuple

from mmnas_tricks.registry import LOOPS
from ..pareto import crowding_distances, non_dominated_ranks
from .search_loop import RESOURCES, SearchLoop


@LOOPS.register_module()
class NSGA2SearchLoop(SearchLoop):
    """NSGA-II (Deb et al., IEEE TEC 2002) over score and cost: the
    population is the best ``population_size`` of every subnet scored so
    far by Pareto rank, then crowding distance (elitist, as NSGA-II's
    (mu + lambda) selection); each generation breeds ``num_offspring``
    children of parents drawn by binary tournament (lower rank, then larger
    crowding distance), by uniform crossover (with ``crossover_prob``) and
    per-choice mutation (``mutate_prob``), filled up with random subnets.
    With ``islands`` (:class:`SearchLoop`) each island keeps its share of
    the population, ranked by Pareto rank within the island, and a child's
    parents come from one island (drawn at random).

    The result is the Pareto front over ``objectives``
    (``pareto_front.json``, the plot); with ``export_flops`` the best
    subnet at each FLOPs budget is exported, ready to retrain. Scoring,
    constraints, the reference subnet, state and resume: :class:`SearchLoop`,
    whose arguments it takes too.

    Args:
        objectives (Sequence[str]): ``'score'`` (after ``rule``) and the
            costs it is traded against, each minimised: ``'flops'``,
            ``'params'``, ``'latency'`` (measured, :func:`measure_latency`).
            Defaults to ``('score', 'flops')``.
        num_offspring (int, optional): Children per generation. Defaults to
            None (``population_size``).
        mutate_prob (float): Per-choice mutation probability. Defaults to
            0.1.
        crossover_prob (float): Probability that a child is a crossover of
            its two parents (else a copy of the first, then mutated).
            Defaults to 0.9.
    """

    def __init__(self,
                 runner,
                 dataloader,
                 *args,
                 objectives: Sequence[str] = ('score', 'flops'),
                 num_offspring=None,
                 mutate_prob: float = 0.1,
                 crossover_prob: float = 0.9,
                 **kwargs) -> None:
        objectives = tuple(objectives)
        valid = ('score', ) + RESOURCES
        if 'score' not in objectives or len(objectives) < 2 or \
                len(set(objectives)) != len(objectives) or \
                any(o not in valid for o in objectives):
            raise ValueError(
                f'objectives={list(objectives)} must be \'score\' and at '
                f'least one of {list(RESOURCES)}, each once')
        self.objectives = objectives
        super().__init__(runner, dataloader, *args, **kwargs)
        if num_offspring is None:
            num_offspring = self.population_size
        if num_offspring < 1:
            raise ValueError(f'num_offspring={num_offspring} must be >= 1')
        for name, p in (('mutate_prob', mutate_prob), ('crossover_prob',
                                                       crossover_prob)):
            if not 0 <= p <= 1:
                raise ValueError(f'{name}={p} is not in [0, 1]')
        self.num_offspring = num_offspring
        self.mutate_prob = mutate_prob
        self.crossover_prob = crossover_prob
        self.population: List[str] = []
        self._fitness: Dict[str, Tuple[int, float]] = {}

    def update(self) -> None:
        """Population: the best ``population_size`` scored subnets by
        (rank, -crowding distance within the rank, key); with ``islands``
        the best of each island's share, ranked within the island."""
        self._fitness, self.population = {}, []
        for island, share in self.island_shares():
            keys = sorted(
                k for k in self.records if self._in_island(k, island))
            if not keys:
                continue
            values = [self.objective_values(k) for k in keys]
            ranks = non_dominated_ranks(values)
            fitness = {}
            for rank in set(ranks):
                members = [i for i, r in enumerate(ranks) if r == rank]
                dists = crowding_distances([values[i] for i in members])
                for i, d in zip(members, dists):
                    fitness[keys[i]] = (rank, d)
            self._fitness.update(fitness)
            self.population += sorted(
                keys, key=lambda k: (fitness[k][0], -fitness[k][1], k))[:share]

    def _in_island(self, key: str, island) -> bool:
        return json.dumps(self.island_of(json.loads(key))) == \
            json.dumps(island)

    def _better(self, a: str, b: str) -> str:
        fa, fb = self._fitness[a], self._fitness[b]
        return a if (fa[0], -fa[1], a) <= (fb[0], -fb[1], b) else b

    def _tournament(self, population: List[str]) -> dict:
        if len(population) == 1:
            return self.subnet_of(population[0])
        a, b = self.rng.sample(population, 2)
        return self.subnet_of(self._better(a, b))

    def _child(self) -> dict:
        population = self.population
        if self.islands is not None:  # both parents of one island
            islands = sorted({
                json.dumps(self.island_of(json.loads(k)))
                for k in self.population
            })
            island = json.loads(self.rng.choice(islands))
            population = [
                k for k in self.population if self._in_island(k, island)
            ]
        first, second = self._tournament(population), self._tournament(
            population)
        child = self.crossover(first, second) if \
            self.rng.random() < self.crossover_prob else first
        return self.mutate(child, self.mutate_prob)

    def propose(self) -> None:
        if not self.population:
            self.update()
        self.take(self._child, self.num_offspring)

    def strategy_state(self) -> dict:
        return dict(population=self.population)
