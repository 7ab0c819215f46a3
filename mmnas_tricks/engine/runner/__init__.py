from .evolution_search_loop import EvolutionSearchLoop, RandomSearchLoop
from .nsga2_search_loop import NSGA2SearchLoop
from .perturbation_selection_loop import PerturbationSelectionLoop
from .search_loop import SearchLoop, subnet_key

__all__ = [
    'SearchLoop', 'EvolutionSearchLoop', 'RandomSearchLoop', 'NSGA2SearchLoop',
    'PerturbationSelectionLoop', 'subnet_key'
]
