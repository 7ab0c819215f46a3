from .sample_subnet_hook import SampleSubnetHook

__all__ = ['SampleSubnetHook']
