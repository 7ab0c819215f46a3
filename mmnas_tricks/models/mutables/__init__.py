from .activation_choice import (ACTIVATIONS, ActivationChoice,
                                activation_choices)
from .base import MODES, BaseMutable, drop_path
from .channel_choice import ChannelChoice
from .conv_shape_choice import ConvShapeChoice
from .convert import conv_choices, with_norm_act
from .depth_choice import DepthChoice, SequentialBlocks
from .elastic import (ElasticBatchNorm2d, ElasticConv2d, ElasticGroupNorm,
                      ElasticModule, WidthSources, elastic_conv, elastic_norm,
                      input_channels, link_widths)
from .input_choice import InputChoice, SelectInputs
from .kernel_choice import KernelSizeChoice
from .mbconv_choice import MBConvChoice
from .op_choice import OpChoice
from .res_block_choice import ResBasicBlockChoice
from .res_bottleneck_choice import ResBottleneckChoice
from .size_choice import InputSize, InputSizeChoice
from .space import (Subnet, SubnetError, arch_parameters, argmax_subnet,
                    export_static, extreme_subnet, fix_in_place, fix_subnet,
                    get_subnet, iter_subnets, load_subnet, named_mutables,
                    sample_subnet, search_space, set_mode, set_subnet,
                    space_size, static_copy, subnet_param_count,
                    validate_subnet)

__all__ = [
    'ACTIVATIONS', 'ActivationChoice', 'activation_choices', 'MODES',
    'BaseMutable', 'drop_path', 'ChannelChoice', 'ConvShapeChoice',
    'ElasticBatchNorm2d', 'ElasticConv2d', 'ElasticGroupNorm', 'ElasticModule',
    'WidthSources', 'elastic_conv', 'elastic_norm', 'input_channels',
    'link_widths', 'conv_choices', 'with_norm_act', 'OpChoice', 'InputChoice',
    'SelectInputs', 'KernelSizeChoice', 'DepthChoice', 'SequentialBlocks',
    'MBConvChoice', 'ResBasicBlockChoice', 'ResBottleneckChoice', 'InputSize',
    'InputSizeChoice', 'Subnet', 'SubnetError', 'export_static',
    'extreme_subnet', 'fix_in_place', 'static_copy', 'subnet_param_count',
    'arch_parameters', 'argmax_subnet', 'fix_subnet', 'get_subnet',
    'iter_subnets', 'load_subnet', 'named_mutables', 'sample_subnet',
    'search_space', 'set_mode', 'set_subnet', 'space_size', 'validate_subnet'
]
