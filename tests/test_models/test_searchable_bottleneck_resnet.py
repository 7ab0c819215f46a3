"""SearchableBottleneckResNet and ResBottleneckChoice: the first subnet is
mmdet's ResNet-50 / 101 (pytorch and caffe styles), whose weights inherit
with every key used and give its outputs; the exported first subnet is
mmdet's ResNet config and loads its state dict strictly; random subnets
export to static backbones that compute what the supernet computes; the
bottleneck and output widths are chosen apart."""
import random

import pytest
import torch
from mmdet.models.backbones import ResNet

from mmnas_tricks.models.backbones import SearchableBottleneckResNet
from mmnas_tricks.models.inherit import inherit_plain
from mmnas_tricks.models.mutables import (ResBottleneckChoice, export_static,
                                          named_mutables, sample_subnet,
                                          set_subnet, subnet_param_count)
from mmnas_tricks.models.ops import ResBottleneck
from mmnas_tricks.testing import trained_looking

ELASTIC = dict(
    kernel_sizes=(3, 5), width_ratios=(1.0, 0.5, 1.25), mid_ratios=(1.0, 0.5))


def _depths(depth):
    from mmnas_tricks.models.backbones import BOTTLENECK_ARCHS
    return [(n, max(1, n // 2)) for n in BOTTLENECK_ARCHS[depth]]


@pytest.mark.parametrize('depth,style', [(50, 'pytorch'), (50, 'caffe'),
                                         (101, 'pytorch')])
def test_first_subnet_is_mmdets_resnet_with_its_weights(depth, style):
    resnet = trained_looking(
        ResNet(depth, base_channels=8, style=style, out_indices=(0, 1, 2, 3)))
    resnet.eval()
    supernet = SearchableBottleneckResNet(
        depth, base_channels=8, style=style, depths=_depths(depth), **ELASTIC)
    report = inherit_plain(supernet, resnet.state_dict())
    assert report['unused'] == [] and report['left_at_init'] == []
    assert set(report['loaded']) == set(resnet.state_dict())
    assert all(c == m.choices[0]
               for c, m in zip(report['into'].values(),
                               named_mutables(supernet).values()))
    supernet.eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        want = resnet(x)
        for got, ref in zip(supernet(x), want, strict=True):
            assert torch.allclose(got, ref, atol=1e-4)
    # the exported first subnet: mmdet's keys, parameters and outputs
    static = export_static(supernet).eval()
    assert set(static.state_dict()) == set(resnet.state_dict())
    static.load_state_dict(resnet.state_dict(), strict=True)
    with torch.no_grad():
        for got, ref in zip(static(x), want, strict=True):
            assert torch.allclose(got, ref, atol=1e-4)
    assert sum(p.numel() for p in static.parameters()) == \
        sum(p.numel() for p in resnet.parameters())


def _export_part(subnet, **kwargs):
    from mmengine.config import Config, ConfigDict
    part = ConfigDict(
        type='mmnas_tricks.SearchableBottleneckResNet',
        depth=50,
        base_channels=8,
        style='caffe',
        depths=_depths(50),
        out_indices=(0, 1, 2, 3),
        norm_eval=True,
        frozen_stages=1,
        fixed_subnet=subnet,
        **ELASTIC,
        **kwargs)
    SearchableBottleneckResNet.to_plain_config(Config(), part, subnet)
    return part


def test_exports_as_mmdets_resnet_where_mmdet_can_build_it():
    from mmengine.registry import MODELS
    supernet = SearchableBottleneckResNet(
        50, base_channels=8, depths=_depths(50), **ELASTIC)
    first = {n: m.choices[0] for n, m in named_mutables(supernet).items()}
    part = _export_part(first)
    assert part.type == 'ResNet' and part.depth == 50
    assert (part.base_channels, part.stem_channels, part.style) == (8, 8,
                                                                    'caffe')
    assert part.norm_eval and part.frozen_stages == 1
    assert 'fixed_subnet' not in part and 'depths' not in part
    plain = MODELS.build(dict(part, type='mmdet.ResNet'))
    assert set(plain.state_dict()) == set(
        ResNet(50, base_channels=8).state_dict())
    # every width at 0.5 with the bottleneck a quarter: mmdet's ResNet at
    # base 4
    half = dict(first)
    for name in named_mutables(supernet):
        if name.startswith('widths.'):
            half[name] = supernet.widths[name[len('widths.'):]].choices[1]
        if name.startswith('mid_widths.'):
            half[name] = supernet.mid_widths[
                name[len('mid_widths.'):]].choices[1]
    part = _export_part(half)
    assert part.type == 'ResNet'
    assert (part.base_channels, part.stem_channels) == (4, 4)
    # what mmdet's ResNet cannot build stays our static backbone
    for change in ({'layer3': 3}, {'layer1.0': 5}, {'mid_widths.1': 8}):
        part = _export_part(dict(first, **change))
        assert part.type == 'mmnas_tricks.SearchableBottleneckResNet', change
        assert part.fixed_subnet == dict(first, **change)


@pytest.mark.parametrize('seed', [0, 1])
def test_static_export_of_random_subnets(seed):
    torch.manual_seed(seed)
    kwargs = dict(base_channels=8, depths=_depths(50), **ELASTIC)
    supernet = trained_looking(SearchableBottleneckResNet(**kwargs), seed)
    subnet = sample_subnet(supernet, random.Random(seed))
    supernet.eval()
    x = torch.rand(2, 3, 48, 48)
    with torch.no_grad():
        want = supernet(x)
    static = export_static(supernet).eval()
    rebuilt = SearchableBottleneckResNet(**kwargs, fixed_subnet=subnet).eval()
    rebuilt.load_state_dict(static.state_dict(), strict=True)
    assert not named_mutables(rebuilt)
    assert sum(p.numel() for p in rebuilt.parameters()) == \
        subnet_param_count(supernet, subnet)
    with torch.no_grad():
        for module in (static, rebuilt):
            for got, ref in zip(module(x), want, strict=True):
                assert torch.allclose(got, ref, atol=1e-4)


def test_bottleneck_and_output_widths_are_chosen_apart():
    supernet = SearchableBottleneckResNet(
        base_channels=8, depths=_depths(50), **ELASTIC)
    first = {n: m.choices[0] for n, m in named_mutables(supernet).items()}
    set_subnet(supernet, dict(first, **{'mid_widths.2': 16}))
    supernet.train()
    supernet(torch.rand(2, 3, 32, 32))[-1].sum().backward()
    block = supernet.layer3.blocks[0]
    # 16 of the 32 bottleneck channels, the default 128 of stage 2's 160
    # outputs (its largest width, x1.25)
    g = block.conv2_weight.grad.abs().sum(dim=(1, 2, 3))
    assert g[:16].gt(0).all() and g[16:].eq(0).all()
    g = block.conv3_weight.grad.abs().sum(dim=(1, 2, 3))
    assert g.shape[0] == 160 and g[:128].gt(0).all() and g[128:].eq(0).all()
    assert block.conv3_weight.grad[:, 16:].eq(0).all()
    # a kernel of 5 trains the centre 3x3 only at kernel 3
    g = block.conv2_weight.grad.abs().sum(dim=(0, 1))
    assert g[1:4, 1:4].gt(0).all()
    g[1:4, 1:4] = 0
    assert g.eq(0).all()
    # caffe: the stride on the first 1x1 conv, pytorch on the 3x3
    for style, strides in (('pytorch', (1, 2)), ('caffe', (2, 1))):
        block = ResBottleneckChoice(8, 4, 16, stride=2, style=style)
        assert block.strides == strides
        plain = ResBottleneck(8, 4, 16, stride=2, style=style)
        assert (plain.conv1.stride[0], plain.conv2.stride[0]) == strides


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match='depth 34 is not among'):
        SearchableBottleneckResNet(34)
    with pytest.raises(ValueError, match='the full count first'):
        SearchableBottleneckResNet(50, depths=((2, 3), (4, ), (6, ), (3, )))
    with pytest.raises(ValueError, match='must start with 1.0'):
        SearchableBottleneckResNet(50, width_ratios=(0.5, 1.0))
    with pytest.raises(ValueError, match="style 'tf'"):
        ResBottleneck(8, 4, 16, style='tf')
    with pytest.raises(ValueError, match='no projection shortcut'):
        ResBottleneckChoice(
            8, 4, 16, stride=2).import_module(ResBottleneck(16, 4, 16))


def test_a_zoo_init_cfg_loads_into_the_first_subnet(tmp_path):
    """mmdet's zoo configs give the backbone init_cfg=dict(type='Pretrained',
    checkpoint=...): init_weights loads it into the first subnet (a
    detector's checkpoint with prefix='backbone.' too)."""
    resnet = trained_looking(ResNet(50, base_channels=8))
    resnet.eval()  # (mmdet's ResNet.train returns None)
    path = str(tmp_path / 'r50.pth')
    torch.save(
        dict(state_dict={
            f'backbone.{k}': v
            for k, v in resnet.state_dict().items()
        }), path)
    supernet = SearchableBottleneckResNet(
        base_channels=8,
        depths=_depths(50),
        init_cfg=dict(type='Pretrained', checkpoint=path, prefix='backbone.'),
        **ELASTIC)
    supernet.init_weights()
    supernet.eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        for got, ref in zip(supernet(x), resnet(x), strict=True):
            assert torch.allclose(got, ref, atol=1e-4)
