from .base import MODES, BaseMutable
from .input_choice import InputChoice
from .op_choice import OpChoice
from .space import (SubnetError, arch_parameters, argmax_subnet, fix_subnet,
                    get_subnet, iter_subnets, load_subnet, named_mutables, sample_subnet,
                    search_space, set_mode, set_subnet, space_size,
                    validate_subnet)

__all__ = [
    'MODES', 'BaseMutable', 'OpChoice', 'InputChoice', 'SubnetError',
    'arch_parameters', 'argmax_subnet', 'fix_subnet', 'get_subnet',
    'iter_subnets', 'load_subnet', 'named_mutables', 'sample_subnet', 'search_space',
    'set_mode', 'set_subnet', 'space_size', 'validate_subnet'
]
