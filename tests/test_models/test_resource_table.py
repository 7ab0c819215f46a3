"""ResourceTable: a search's FLOPs per candidate from a per-choice table
where that is exact, a trace per candidate everywhere else."""
import os.path as osp
import random

import pytest
import torch.nn as nn

from mmnas_tricks.models import ResourceTable, subnet_resources
from mmnas_tricks.models.mutables import OpChoice, sample_subnet
from mmnas_tricks.testing import config_dir
from mmnas_tricks.utils import build_model, load_config
from .test_mutables import CANDIDATES, Toy


class Chain(nn.Module):
    """Two op choices in a row: each choice changes only its own FLOPs."""

    def __init__(self, c=4):
        super().__init__()
        self.stem = nn.Conv2d(3, c, 3, padding=1)
        self.block1 = OpChoice(CANDIDATES, c, c)
        self.block2 = OpChoice(
            dict(conv=dict(type='ConvOp'), skip=dict(type='Identity')), c, c)
        self.tail = nn.Conv2d(c, 2, 1)

    def forward(self, x):
        return self.tail(self.block2(self.block1(self.stem(x))))


class Peeking(Chain):
    """Computes more outside the mutables when block1 runs its first op,
    so the table cannot be exact."""

    def __init__(self, c=4):
        super().__init__(c)
        self.extra = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        x = self.block1(self.stem(x))
        if self.block1.current_choice == list(CANDIDATES)[0]:
            x = self.extra(x)
        return self.tail(self.block2(x))


def _compare(model, table, shape, num=8, seed=0):
    rng = random.Random(seed)
    for _ in range(num):
        subnet = sample_subnet(model, rng, apply=False)
        assert table(subnet) == subnet_resources(model, subnet, shape)


def test_an_op_space_is_counted_from_the_table_exactly():
    model = Chain()
    table = ResourceTable(model, (3, 16, 16))
    assert table.why_not is None
    probes = table.traces
    assert probes == max(len(CANDIDATES), 2)
    _compare(model, table, (3, 16, 16))
    assert table.table is not None
    assert table.traces == probes + 2  # only the checked predictions


@pytest.mark.heavy
@pytest.mark.parametrize('config', [
    'nas/spos_fcos_r18w16_fpn-elastic_gn-head-elastic_digits.py',
    'supernets/fcos_detnas-shufflenetv2_fpn_gn-head_12e_digits.py',
])
def test_real_supernets_get_the_traced_flops(config):
    model = build_model(load_config(osp.join(config_dir(), config)))
    table = ResourceTable(model, (3, 128, 128))
    assert table.why_not is None
    _compare(model, table, (3, 128, 128), num=4)


def test_a_depth_choice_over_searched_layers_is_traced():
    cfg = load_config(
        osp.join(
            config_dir(),
            'supernets/fcos_r18w16_fpn-elastic_gn-head-elastic_12e_digits.py'))
    table = ResourceTable(build_model(cfg), (3, 128, 128))
    assert table.why_not == ('bbox_head.cls_convs.0 is nested in another '
                             'mutable')
    assert table.traces == 0


def test_spaces_where_choices_reach_other_layers_are_traced():
    # an input choice picks which outputs are used
    model = Toy()
    table = ResourceTable(model, (3, 16, 16))
    assert 'pick is a InputChoice' in table.why_not and table.table is None
    _compare(model, table, (3, 16, 16), num=4)
    # the FLOPs outside the mutables follow a choice: found by the probes
    model = Peeking()
    table = ResourceTable(model, (3, 16, 16))
    assert 'outside the mutables changed' in table.why_not
    _compare(model, table, (3, 16, 16), num=6)
