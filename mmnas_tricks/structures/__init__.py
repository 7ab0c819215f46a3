from .subnet_file import (FORMAT_VERSION, SubnetFileError, dump_subnet,
                          read_subnet_file, subnet_key)

__all__ = [
    'FORMAT_VERSION', 'SubnetFileError', 'dump_subnet', 'read_subnet_file',
    'subnet_key'
]
