"""Mutables, candidate ops and searchable backbones / necks / heads.

A searchable component is registered in ``MODELS`` and decorated with
:func:`~mmnas_tricks.models.contract.searchable`, which checks the
contract every time one is built:

1. it takes ``fixed_subnet=None``: None builds the supernet component (at
   least one mutable), a subnet dict builds the static component (the
   builder ends with ``fix_in_place(module, fixed_subnet)``, so no mutable
   is left);
2. its mutables are named by module path and it sits in the model under
   its config key (``backbone``, ``neck``, ``bbox_head``, ...);
3. where it replaces the layers of a plain module, every mutable's first
   choice is the plain layer.

The full text, and why there are two ways of writing one (a factory around
an mmdet / mmseg module, or a class for a new architecture), is in
``mmnas_tricks/models/contract.py``; a worked example in
``docs/extending.md``.
"""
from .backbones import *  # noqa: F401,F403
from .contract import SearchableModuleError, searchable  # noqa: F401
from .data_preprocessors import *  # noqa: F401,F403
from .export import export_config  # noqa: F401
from .export import inherit_weights  # noqa: F401
from .export import save_static_checkpoint  # noqa: F401
from .heads import *  # noqa: F401,F403
from .mutables import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403
from .ops import *  # noqa: F401,F403
from .resources import ResourceTable, subnet_resources  # noqa: F401
