from .all_ops_warmup_hook import AllOpsWarmupHook
from .arch_perturb_hook import ArchPerturbHook, project_to_simplex
from .arch_warmup_hook import ArchWarmupHook
from .aux_skip_hook import AuxSkipHook
from .bn_calibration_hook import BNCalibrationHook
from .convert_norm_hook import ConvertNormHook
from .darts_hook import DartsHook
from .drop_path_hook import DropPathHook
from .feature_cache_hook import FeatureCacheHook, random_transforms
from .hessian_eigenvalue_hook import HessianEigenvalueHook, dominant_eigenvalue
from .inherit_weights_hook import InheritWeightsHook
from .inplace_distill_hook import InplaceDistillHook
from .path_dropout_hook import PathDropoutHook
from .random_state_hook import RandomStateHook
from .sample_subnet_hook import SampleSubnetHook
from .sequential_search_hook import SequentialSearchHook

__all__ = [
    'AllOpsWarmupHook', 'ArchPerturbHook', 'ArchWarmupHook', 'AuxSkipHook',
    'BNCalibrationHook', 'ConvertNormHook', 'DartsHook', 'DropPathHook',
    'FeatureCacheHook', 'random_transforms', 'HessianEigenvalueHook',
    'dominant_eigenvalue', 'InheritWeightsHook', 'InplaceDistillHook',
    'PathDropoutHook', 'RandomStateHook', 'SampleSubnetHook',
    'SequentialSearchHook', 'project_to_simplex'
]
