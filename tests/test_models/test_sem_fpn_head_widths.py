"""SearchableSemFPNHead with elastic width: its first subnet is mmseg's
Semantic FPN head (weights load by name, same logits, same keys), a
narrower width exports to the head built at that width, and bad ops are
named."""
import random

import pytest
import torch
from mmseg.models.decode_heads import FPNHead

from mmnas_tricks.models.heads import searchable_sem_fpn_head
from mmnas_tricks.models.inherit import inherit_plain
from mmnas_tricks.models.mutables import (export_static, named_mutables,
                                          sample_subnet, set_subnet)
from mmnas_tricks.testing import trained_looking


@pytest.fixture(autouse=True)
def mmseg_scope():
    """mmseg's head builds its loss in the default scope's registry: run
    under mmseg's, whatever scope an earlier test of this process left
    (under mmnas_tricks' the loss is not found)."""
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


HEAD = dict(
    in_channels=[32, 32, 32, 32],
    in_index=[0, 1, 2, 3],
    feature_strides=[4, 8, 16, 32],
    channels=32,
    dropout_ratio=0.1,
    num_classes=11,
    norm_cfg=dict(type='BN', requires_grad=True),
    align_corners=False)


def _inputs(c=32, size=32):
    return [torch.rand(2, c, size // 2**i, size // 2**i) for i in range(4)]


def test_first_subnet_is_mmsegs_head_and_widths_export():
    plain = trained_looking(FPNHead(**HEAD)).eval()
    head = searchable_sem_fpn_head(
        widths=[32, 16, 24], ops=[(3, 1), (5, 1)], **HEAD)
    mutables = named_mutables(head)
    assert mutables['width'].choices == [32, 16, 24]
    report = inherit_plain(head, plain.state_dict())
    assert report['unused'] == [] and report['left_at_init'] == []
    head.eval()
    x = _inputs()
    with torch.no_grad():
        assert torch.allclose(head(x), plain(x), atol=1e-5)
    static = export_static(head).eval()
    assert set(static.state_dict()) == set(plain.state_dict())
    # a narrower, larger-kernel subnet: the export computes what the
    # supernet computes, with the chosen channels only
    subnet = sample_subnet(head, random.Random(1), apply=False)
    subnet['width'] = 16
    set_subnet(head, subnet)
    static = export_static(head).eval()
    assert static.conv_seg.in_channels == 16
    with torch.no_grad():
        assert torch.allclose(static(x), head(x), atol=1e-5)


def test_widths_need_conv_shapes():
    with pytest.raises(ValueError, match='list of .kernel_size, dilation.'):
        searchable_sem_fpn_head(
            widths=[32, 16], ops=dict(conv3x3=dict(type='ConvOp')), **HEAD)
    with pytest.raises(ValueError, match='top out'):
        searchable_sem_fpn_head(widths=[16, 24], **HEAD)
