"""SearchableResNet and ResBasicBlockChoice: the first subnet is mmdet's
ResNet-18 (its trained weights load and give the same outputs), a smaller
kernel is the centre of the largest, depth runs the first blocks, and the
static export computes what the supernet computes."""
import random

import pytest
import torch
from mmdet.models.backbones import ResNet

from mmnas_tricks.models.backbones import SearchableResNet
from mmnas_tricks.models.inherit import inherit_plain
from mmnas_tricks.models.mutables import (ResBasicBlockChoice, export_static,
                                          named_mutables, sample_subnet,
                                          set_subnet, subnet_param_count)
from mmnas_tricks.models.ops import ResBasicBlock
from mmnas_tricks.testing import trained_looking


@pytest.mark.parametrize('width_ratios', [None, (1.0, 0.5, 0.75, 1.25, 1.5)])
def test_first_subnet_is_mmdets_resnet18_with_its_weights(width_ratios):
    resnet = trained_looking(
        ResNet(18, base_channels=16, out_indices=(1, 2, 3)))
    resnet.eval()  # (mmdet's ResNet.train returns None)
    supernet = SearchableResNet(base_channels=16, width_ratios=width_ratios)
    # mmdet's checkpoint loads by name into the first subnet (what
    # InheritWeightsHook does with a trained baseline), every key used
    report = inherit_plain(supernet, resnet.state_dict())
    assert report['unused'] == [] and report['left_at_init'] == []
    assert set(report['loaded']) == set(resnet.state_dict())
    assert all(c == m.choices[0]
               for c, m in zip(report['into'].values(),
                               named_mutables(supernet).values()))
    supernet.eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        for got, want in zip(supernet(x), resnet(x), strict=True):
            assert got.shape == want.shape
            assert torch.allclose(got, want, atol=1e-5)
    # the exported static backbone of that subnet holds the same weights
    static = export_static(supernet).eval()
    with torch.no_grad():
        for got, want in zip(static(x), resnet(x), strict=True):
            assert torch.allclose(got, want, atol=1e-5)
    assert sum(p.numel() for p in static.parameters()) == \
        sum(p.numel() for p in resnet.parameters())
    assert set(static.state_dict()) == set(resnet.state_dict())
    # and a single block of it through import_module
    block = SearchableResNet(base_channels=16).layer2.blocks[0]
    block.import_module(resnet.layer2[0])
    x = torch.rand(2, 16, 8, 8)
    block.eval()
    with torch.no_grad():
        assert torch.allclose(block(x), resnet.layer2[0](x), atol=1e-5)


def test_smaller_kernel_is_the_centre_and_depth_runs_the_first_blocks():
    supernet = SearchableResNet(base_channels=8, depths=((1, 2), ) * 4)
    names = named_mutables(supernet)
    subnet = {n: (3 if '.' in n else 1) for n in names}  # depth 1, k 3
    set_subnet(supernet, subnet)
    supernet.train()
    supernet(torch.rand(2, 3, 32, 32))[-1].sum().backward()
    block = supernet.stages[2].blocks[0]
    g = block.conv1_weight.grad.abs().sum(dim=(0, 1))
    assert g[1:4, 1:4].gt(0).all()
    g[1:4, 1:4] = 0
    assert g.eq(0).all()  # only the centre 3x3 of the 5x5
    unused = supernet.stages[2].blocks[1]
    assert all(p.grad is None for p in unused.parameters())
    # BN statistics of the block past the depth did not move
    assert unused.bn1.running_mean.eq(0).all()
    assert subnet_param_count(supernet, subnet) < subnet_param_count(
        supernet, {n: (5 if '.' in n else 2)
                   for n in names})


@pytest.mark.parametrize('width_ratios', [None, (1.0, 0.5, 1.5)])
@pytest.mark.parametrize('seed', [0, 1, 2])
def test_static_export_of_random_subnets(seed, width_ratios):
    torch.manual_seed(seed)
    supernet = trained_looking(
        SearchableResNet(base_channels=8, width_ratios=width_ratios), seed)
    subnet = sample_subnet(supernet, random.Random(seed))
    supernet.eval()
    x = torch.rand(2, 3, 48, 48)
    with torch.no_grad():
        want = supernet(x)
    static = export_static(supernet).eval()
    rebuilt = SearchableResNet(
        base_channels=8, width_ratios=width_ratios,
        fixed_subnet=subnet).eval()
    rebuilt.load_state_dict(static.state_dict(), strict=True)
    assert not named_mutables(rebuilt)
    assert sum(p.numel() for p in rebuilt.parameters()) == \
        subnet_param_count(supernet, subnet)
    with torch.no_grad():
        for module in (static, rebuilt):
            for got, ref in zip(module(x), want, strict=True):
                assert torch.allclose(got, ref, atol=1e-5)


def test_block_choice_modes_and_import_checks():
    block = ResBasicBlockChoice(4, 8, stride=2, kernel_sizes=(3, 5))
    x = torch.rand(3, 4, 8, 8)
    block.set_mode('differentiable')
    block.arch_alpha.data = torch.tensor([0.3, -0.2])
    w = block.arch_weights()
    outs = []
    for k in (3, 5):
        block.set_mode('sampled')
        block.current_choice = k
        outs.append(block._run(x, k))
    block.set_mode('differentiable')
    mixed = torch.relu(w[0] * outs[0] + w[1] * outs[1] + block._shortcut(x))
    assert torch.allclose(block(x), mixed, atol=1e-6)
    # a block without the projection does not load into one with it
    with pytest.raises(ValueError, match='no projection shortcut'):
        block.import_module(ResBasicBlock(8, 8))
    block.set_mode('sampled')
    block.current_choice = 5
    with pytest.raises(ValueError, match='kernel 5'):
        block.import_module(ResBasicBlock(4, 8, stride=2, kernel_size=3))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r'odd ints, got \[3, 4\]'):
        ResBasicBlockChoice(4, 4, kernel_sizes=(3, 4))
    with pytest.raises(ValueError, match='BatchNorm only'):
        ResBasicBlockChoice(4, 4, norm_cfg=dict(type='GN', num_groups=2))
    with pytest.raises(ValueError, match=r'depths=\[\[2\], \[\]\]'):
        SearchableResNet(depths=((2, ), ()), out_indices=(0, 1))
    with pytest.raises(ValueError, match='odd'):
        ResBasicBlock(4, 4, kernel_size=2)


@pytest.mark.parametrize('width_ratios', [None, (1.0, 0.5, 1.5)])
def test_deep_stem_first_subnet_is_mmsegs_resnet_v1c(width_ratios):
    """With deep_stem the first subnet is mmseg's ResNetV1c-18 (Semantic
    FPN's backbone): its weights load by name and give its outputs, the
    export has its keys, and seeded alike both initialise equally."""
    from mmseg.models.backbones import ResNetV1c
    kwargs = dict(
        depth=18, stem_channels=16, base_channels=16, out_indices=(0, 1, 2, 3))
    resnet = trained_looking(ResNetV1c(**kwargs))
    resnet.eval()  # (mmseg's ResNet.train returns None)
    supernet = SearchableResNet(
        base_channels=16,
        width_ratios=width_ratios,
        deep_stem=True,
        out_indices=(0, 1, 2, 3))
    if width_ratios:
        assert named_mutables(supernet)['widths.stem'].choices == [8, 4, 12]
    report = inherit_plain(supernet, resnet.state_dict())
    assert report['unused'] == [] and report['left_at_init'] == []
    supernet.eval()
    x = torch.rand(2, 3, 64, 64)
    static = export_static(supernet).eval()
    assert set(static.state_dict()) == set(resnet.state_dict())
    with torch.no_grad():
        for model in (supernet, static):
            for got, want in zip(model(x), resnet(x), strict=True):
                assert torch.allclose(got, want, atol=1e-5)
    static = export_static(
        SearchableResNet(
            base_channels=16,
            width_ratios=width_ratios,
            deep_stem=True,
            out_indices=(0, 1, 2, 3)))
    fresh = ResNetV1c(**kwargs)
    for model in (static, fresh):
        torch.manual_seed(0)
        model.init_weights()
    got, want = static.state_dict(), fresh.state_dict()
    assert [k for k in want if not torch.equal(got[k], want[k])] == []
