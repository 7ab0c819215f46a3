from .evolution_search_loop import (EvolutionSearchLoop, RandomSearchLoop,
                                    subnet_key)

__all__ = ['EvolutionSearchLoop', 'RandomSearchLoop', 'subnet_key']
