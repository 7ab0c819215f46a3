"""Mutables, candidate ops and searchable backbones / necks / heads."""
from .backbones import *  # noqa: F401,F403
from .data_preprocessors import *  # noqa: F401,F403
from .export import export_config  # noqa: F401
from .export import inherit_weights  # noqa: F401
from .export import save_static_checkpoint  # noqa: F401
from .heads import *  # noqa: F401,F403
from .mutables import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403
from .ops import *  # noqa: F401,F403
from .resources import ResourceTable, subnet_resources  # noqa: F401
