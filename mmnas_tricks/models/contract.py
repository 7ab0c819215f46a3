"""The searchable-module contract, and the decorator that checks it.

A searchable backbone, neck, head or data preprocessor is a type registered
in :data:`mmnas_tricks.registry.MODELS` and decorated with
:func:`searchable`:

1. It takes ``fixed_subnet=None``. With None it builds the supernet
   component, which holds at least one mutable. With a dict (mutable name
   relative to the component -> choice, as
   :func:`~mmnas_tricks.models.export_config` writes it) it builds the
   static component of that subnet, with no mutable or elastic layer left:
   the builder ends with ``fix_in_place(module, fixed_subnet)``.
2. Its mutables' names are their module paths, and the component's own
   config key is its attribute name in the model (``backbone``, ``neck``,
   ``bbox_head``, ``decode_head``, ``data_preprocessor``: mmdet's and
   mmseg's detectors and segmentors keep these), so a model-level subnet
   name ``neck.fpn_convs.0`` belongs to the ``neck`` component.
3. Where the component replaces the layers of a plain module, the first
   choice of every mutable is the plain layer, so that the default subnet
   is the hand-designed model and its model-zoo checkpoint loads through
   weight inheritance (a new architecture with no plain counterpart, e.g.
   the MobileNetV2 backbone, documents its own first choices).

Two ways of writing one, for two reasons:

- **A factory function** when the component *is* an existing mmdet / mmseg
  module whose layers become choices (``SearchableFCOSHead`` builds mmdet's
  ``FCOSHead`` and swaps its tower convs). The exported component is then
  mmdet's own class, so the static model is a plain mmdet model.
- **A class** when the architecture is new (``NASFCOSSearchFPN``, the
  searchable backbones), so that there is no plain class to return.

:func:`searchable` checks items 1 and 2's first half when the type is
decorated and every time it is built, with an error that names the type and
what is missing; item 3 is a property of the weights, checked by each
space's tests (the default subnet's outputs equal the plain module's).
"""
import functools
import inspect
from typing import Any, Callable, List, Optional

import torch.nn as nn

#: Where the contract and a worked example are written.
CONTRACT_DOC = 'docs/extending.md#a-new-searchable-module'


class SearchableModuleError(TypeError):
    """A searchable type or the module it built breaks the contract."""


def is_searchable(obj: Any) -> bool:
    """Whether ``obj`` (a registered class or factory) was decorated with
    :func:`searchable`."""
    return bool(getattr(obj, '__searchable__', False))


def _name(obj: Any) -> str:
    return getattr(obj, '__qualname__', repr(obj))


def _check_signature(obj: Callable) -> inspect.Signature:
    target = obj.__init__ if isinstance(obj, type) else obj
    signature = inspect.signature(target)
    param = signature.parameters.get('fixed_subnet')
    if param is None or param.default is not None or param.kind not in (
            param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
        found = 'no fixed_subnet argument' if param is None else \
            f'fixed_subnet as {param}'
        raise SearchableModuleError(
            f'{_name(obj)} is marked searchable but takes {found}; it must '
            f'take the keyword argument fixed_subnet=None (see '
            f'{CONTRACT_DOC})')
    return signature


def _leftovers(module: nn.Module) -> List[str]:
    from .mutables import BaseMutable, ElasticModule
    return [
        n or '(the module itself)' for n, m in module.named_modules()
        if isinstance(m, (BaseMutable, ElasticModule))
    ]


def check_built(module: Any, fixed_subnet: Optional[dict], owner: str) -> None:
    """Check the module a searchable type ``owner`` built with
    ``fixed_subnet``: an ``nn.Module``; with None, it holds a mutable; with
    a subnet, none is left.

    Raises:
        SearchableModuleError: naming ``owner`` and what is wrong.
    """
    if not isinstance(module, nn.Module):
        raise SearchableModuleError(
            f'{owner} built a {type(module).__name__}, not an nn.Module '
            f'(see {CONTRACT_DOC})')
    left = _leftovers(module)
    if fixed_subnet is None and not left:
        raise SearchableModuleError(
            f'{owner}(fixed_subnet=None) built a {type(module).__name__} '
            'that holds no mutable, so it has nothing to search; replace '
            'the layers to search by mutables (OpChoice, conv_choices, ...) '
            f'(see {CONTRACT_DOC})')
    if fixed_subnet is not None and left:
        raise SearchableModuleError(
            f'{owner}(fixed_subnet=...) left mutables or elastic layers '
            f'{left[:5]} in the static module; end the builder with '
            f'fix_in_place(module, fixed_subnet) (see {CONTRACT_DOC})')


def searchable(obj: Callable) -> Callable:
    """Mark a class or factory function as a searchable component and check
    the contract (see this module's docstring): at decoration, that it
    takes ``fixed_subnet=None``; at every build, what it built.

    Put it under ``@MODELS.register_module()``::

        @MODELS.register_module()
        @searchable
        class MySearchableNeck(BaseModule):
            def __init__(self, ..., fixed_subnet=None):
                ...
                if fixed_subnet is not None:
                    fix_in_place(self, fixed_subnet)

    A class is checked when its own ``__init__`` (or an inherited one)
    returns; a subclass that overrides ``__init__`` is checked only when it
    is decorated too.

    Raises:
        SearchableModuleError: ``obj`` takes no ``fixed_subnet=None``.
    """
    signature = _check_signature(obj)
    owner = _name(obj)

    def fixed_of(args, kwargs) -> Optional[dict]:
        return signature.bind(*args, **kwargs).arguments.get('fixed_subnet')

    if isinstance(obj, type):
        init = obj.__init__

        @functools.wraps(init)
        def __init__(self, *args, **kwargs):
            init(self, *args, **kwargs)
            if type(self).__init__ is __init__:  # the outermost __init__
                check_built(self, fixed_of((self, ) + args, kwargs),
                            type(self).__qualname__)

        obj.__init__ = __init__
        obj.__searchable__ = True
        return obj

    @functools.wraps(obj)
    def build(*args, **kwargs):
        module = obj(*args, **kwargs)
        check_built(module, fixed_of(args, kwargs), owner)
        return module

    build.__searchable__ = True
    return build
