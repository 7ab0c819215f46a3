from .arch_warmup_hook import ArchWarmupHook
from .darts_hook import DartsHook
from .sample_subnet_hook import SampleSubnetHook

__all__ = ['ArchWarmupHook', 'DartsHook', 'SampleSubnetHook']
