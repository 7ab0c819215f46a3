"""Evolutionary (and random) search over a trained supernet: strategies
on the :class:`SearchLoop` skeleton."""
from typing import List

from mmnas_tricks.registry import LOOPS
from .search_loop import SearchLoop


@LOOPS.register_module()
class EvolutionSearchLoop(SearchLoop):
    """Evolutionary architecture search over a trained one-shot supernet
    (SPOS, Guo et al., ECCV 2020; DetNAS; docs/tricks.md, T1.4;
    docs/search_spaces/detnas_shufflenet_v2.md), used as ``train_cfg``
    with ``load_from`` the supernet checkpoint.

    Generation 0 is ``population_size`` random subnets; every later one
    ``num_mutation`` mutants (each searchable choice resampled with
    ``mutate_prob``) and ``num_crossover`` children (each choice from one of
    two parents) of the global top ``top_k``, filled up with random subnets.
    Scoring, constraints, the reference subnet, state and resume, results
    and export: :class:`SearchLoop`, whose arguments it takes too.

    Args:
        top_k (int): Parents kept. Defaults to 10.
        num_mutation (int): Mutants per generation. Defaults to 25.
        num_crossover (int): Crossover children per generation. Defaults
            to 25.
        mutate_prob (float): Per-choice mutation probability. Defaults to
            0.1.
    """

    def __init__(self,
                 runner,
                 dataloader,
                 *args,
                 top_k: int = 10,
                 num_mutation: int = 25,
                 num_crossover: int = 25,
                 mutate_prob: float = 0.1,
                 **kwargs) -> None:
        super().__init__(runner, dataloader, *args, **kwargs)
        if top_k < 1:
            raise ValueError(f'top_k={top_k} must be >= 1')
        if num_mutation < 0 or num_crossover < 0:
            raise ValueError(f'num_mutation={num_mutation} and num_crossover='
                             f'{num_crossover} must be >= 0')
        if not 0 <= mutate_prob <= 1:
            raise ValueError(f'mutate_prob={mutate_prob} is not in [0, 1]')
        self.top_k = top_k
        self.num_mutation = num_mutation
        self.num_crossover = num_crossover
        self.mutate_prob = mutate_prob
        self.top: List[str] = []

    def propose(self) -> None:
        parents = [self.subnet_of(k) for k in self.top]
        if not parents:
            return
        self.take(
            lambda: self.mutate(self.rng.choice(parents), self.mutate_prob),
            self.num_mutation)
        self.take(
            lambda: self.crossover(
                self.rng.choice(parents), self.rng.choice(parents)),
            self.num_crossover)

    def update(self) -> None:
        self.top = self.ranked()[:self.top_k]

    def strategy_state(self) -> dict:
        return dict(top=self.top)


@LOOPS.register_module()
class RandomSearchLoop(SearchLoop):
    """Random search (the baseline of every strategy): every generation is
    ``population_size`` new random subnets; same scoring, constraints,
    resume and results as :class:`SearchLoop`."""
