from .darts_hook import DartsHook
from .sample_subnet_hook import SampleSubnetHook

__all__ = ['DartsHook', 'SampleSubnetHook']
