"""The whole-segmentor elastic space (configs/supernets/
fpn_whole-elastic_r18w16_12e_digits-seg.py): its first subnet is the
trained Semantic FPN baseline, its FLOPs span 0.3x to 2x the baseline's,
and its exported first subnet starts where the baseline starts."""
import os.path as osp

import pytest
import torch

from mmnas_tricks.models import export_config
from mmnas_tricks.models.inherit import inherit_plain
from mmnas_tricks.models.mutables import (extreme_subnet, named_mutables,
                                          set_subnet)
from mmnas_tricks.models.resources import subnet_resources
from mmnas_tricks.testing import config_dir, trained_looking
from mmnas_tricks.utils import build_model, load_config

SPACE = osp.join(config_dir(), 'supernets',
                 'fpn_whole-elastic_r18w16_12e_digits-seg.py')
BASELINE = osp.join(config_dir(), 'baselines', 'fpn_r18w16_12e_digits-seg.py')
AT_128 = (3, 128, 128)


def test_first_subnet_is_the_trained_segmentation_baseline():
    torch.manual_seed(0)
    space = build_model(load_config(SPACE))
    baseline = trained_looking(
        build_model(load_config(BASELINE)), spread=0.2).eval()
    first = {n: m.choices[0] for n, m in named_mutables(space).items()}
    set_subnet(space, first)
    report = inherit_plain(space, baseline.state_dict())
    assert report['unused'] == []
    assert set(report['loaded']) == set(baseline.state_dict())
    space.eval()
    x = torch.rand(2, 3, 128, 128)
    with torch.no_grad():
        assert torch.allclose(
            space._forward(x), baseline._forward(x), atol=1e-4)
    base = subnet_resources(baseline, input_shape=AT_128)
    assert subnet_resources(space, first, AT_128) == base
    low, high = (
        subnet_resources(space, extreme_subnet(space, k), AT_128)['flops']
        for k in ('min', 'max'))
    assert low <= 0.3 * base['flops'] and high >= 2 * base['flops']
    # exported, seeded alike, it starts where mmseg's baseline starts
    rebuilt = build_model(export_config(load_config(SPACE), first))
    fresh = build_model(load_config(BASELINE))
    for model in (rebuilt, fresh):
        torch.manual_seed(0)
        model.init_weights()
    got, want = rebuilt.state_dict(), fresh.state_dict()
    assert list(got) == list(want)
    # mmseg's scale-head convs keep their construction draws (no parent
    # initialises them again): those match in distribution, the rest
    # exactly
    drawn = [k for k in got if 'scale_heads' in k and 'conv.weight' in k]
    assert len(drawn) == 7
    assert [
        k for k in got if k not in drawn and not torch.equal(got[k], want[k])
    ] == []
    for k in drawn:
        assert got[k].std().item() == pytest.approx(
            want[k].std().item(), rel=0.15), k
