from .evolution_search_loop import (EvolutionSearchLoop, RandomSearchLoop,
                                    subnet_key)
from .perturbation_selection_loop import PerturbationSelectionLoop

__all__ = [
    'EvolutionSearchLoop', 'RandomSearchLoop', 'PerturbationSelectionLoop',
    'subnet_key'
]
