"""The searchable-module contract (models/contract.py): every registered
type with a ``fixed_subnet`` argument is checked at build; a class is
checked once, after its outermost ``__init__``."""
import inspect

import pytest
import torch.nn as nn
from mmengine.model import BaseModule

from mmnas_tricks.models import SearchableModuleError, searchable
from mmnas_tricks.models.contract import is_searchable
from mmnas_tricks.models.mutables import KernelSizeChoice, fix_in_place
from mmnas_tricks.registry import MODELS


def test_every_registered_type_with_fixed_subnet_is_checked():
    takes = {
        name
        for name, obj in MODELS.module_dict.items()
        if 'fixed_subnet' in inspect.signature(obj).parameters
    }
    assert {
        'SearchableFCOSHead', 'NASFCOSSearchFPN', 'SearchableResNet',
        'SearchableDetDataPreprocessor'
    } <= takes
    assert {n for n in takes if not is_searchable(MODELS.get(n))} == set()


@searchable
class Neck(BaseModule):

    def __init__(self, channels=4, fixed_subnet=None, fix=True):
        super().__init__()
        self.conv = KernelSizeChoice(channels, channels, (3, 5))
        if fixed_subnet is not None and fix:
            fix_in_place(self, fixed_subnet)


def test_a_class_is_checked_after_its_outermost_init():
    assert is_searchable(Neck)
    assert isinstance(Neck().conv, KernelSizeChoice)
    assert isinstance(Neck(fixed_subnet={'conv': 5}).conv, nn.Conv2d)
    with pytest.raises(
            SearchableModuleError,
            match=r"Neck\(fixed_subnet=...\) left .*\['conv'\]"):
        Neck(fixed_subnet={'conv': 5}, fix=False)

    class Wider(Neck):  # checked by Neck's __init__ only once it returns

        def __init__(self, fixed_subnet=None):
            super().__init__(8, fixed_subnet=fixed_subnet, fix=False)
            self.extra = KernelSizeChoice(8, 8, (3, 5))
            if fixed_subnet is not None:
                fix_in_place(self, fixed_subnet)

    # not decorated itself: built without a false alarm from Neck's check
    assert isinstance(
        Wider(fixed_subnet={
            'conv': 3,
            'extra': 5
        }).extra, nn.Conv2d)


def test_a_signature_without_a_none_default_is_refused():
    with pytest.raises(SearchableModuleError, match='fixed_subnet=None'):

        @searchable
        def required(fixed_subnet):
            return nn.Identity()

    with pytest.raises(SearchableModuleError, match='not an nn.Module'):

        @searchable
        def not_a_module(fixed_subnet=None):
            return 'a head'

        not_a_module()
