from .grouped_constructor import (GroupedOptimWrapperConstructor,
                                  merge_param_groups)
from .sam_optim_wrapper import SAMOptimWrapper

__all__ = [
    'GroupedOptimWrapperConstructor', 'SAMOptimWrapper', 'merge_param_groups'
]
