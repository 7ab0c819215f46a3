import os.path as osp

import pytest

from mmnas_tricks.datasets import DigitsSpec, build_digits

TINY_SPEC = dict(num_train=48, num_val=16, seed=3)


@pytest.fixture(scope='session')
def tiny_digits(tmp_path_factory):
    """A small digits build shared by the tests (48 train / 16 val)."""
    root = tmp_path_factory.mktemp('digits') / 'digits'
    build_digits(str(root), DigitsSpec(**TINY_SPEC), progress=False)
    return str(root)


@pytest.fixture(scope='session')
def repo_root():
    return osp.dirname(osp.dirname(osp.abspath(__file__)))
