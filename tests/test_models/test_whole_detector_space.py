"""The whole-detector elastic space of FCOS on digits: its first subnet is
the baseline FCOS (a trained baseline's weights load into it and it computes
the same), its FLOPs span at least 0.3x to 2x the baseline's, and the input
size is a choice that resizes the batch with its boxes, is counted in the
FLOPs and is written into the exported config's pipelines."""
import os.path as osp

import pytest
import torch

from mmnas_tricks.models import export_config
from mmnas_tricks.models.data_preprocessors import \
    SearchableDetDataPreprocessor
from mmnas_tricks.models.inherit import inherit_plain
from mmnas_tricks.models.mutables import (extreme_subnet, named_mutables,
                                          set_subnet)
from mmnas_tricks.models.resources import input_size, subnet_resources
from mmnas_tricks.testing import config_dir, demo_det_batch, trained_looking
from mmnas_tricks.utils import build_model, load_config

SPACE = osp.join(config_dir(), 'supernets',
                 'fcos_whole-elastic_r18w16_fpn_gn-head_12e_digits.py')
BASELINE = osp.join(config_dir(), 'baselines',
                    'fcos_r18w16_fpn_gn-head_12e_digits.py')

AT_128 = (3, 128, 128)


@pytest.fixture(scope='module')
def space():
    torch.manual_seed(0)
    return build_model(load_config(SPACE))


def _first(model):
    return {n: m.choices[0] for n, m in named_mutables(model).items()}


def test_first_subnet_is_the_trained_baseline(space):
    baseline = trained_looking(
        build_model(load_config(BASELINE)), spread=0.2).eval()
    set_subnet(space, _first(space))
    report = inherit_plain(space, baseline.state_dict())
    assert report['unused'] == []
    assert set(report['loaded']) == set(baseline.state_dict())
    space.eval()
    data = demo_det_batch(space, training=False, size=128)
    with torch.no_grad():
        got, want = space._forward(data['inputs']), baseline._forward(
            data['inputs'])
    for a_level, b_level in zip(got, want, strict=True):
        for a, b in zip(a_level, b_level, strict=True):
            assert a.shape == b.shape
            assert (a - b).abs().max().item() <= 1e-4
    # and its exported config builds the baseline's parameters
    rebuilt = build_model(export_config(load_config(SPACE), _first(space)))
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == \
        {k: v.shape for k, v in baseline.state_dict().items()}
    base = subnet_resources(baseline, input_shape=AT_128)
    assert subnet_resources(space, _first(space), AT_128) == base
    # the FLOPs range of the space (the smallest and largest subnets)
    low = subnet_resources(space, extreme_subnet(space, 'min'),
                           AT_128)['flops']
    high = subnet_resources(space, extreme_subnet(space, 'max'),
                            AT_128)['flops']
    assert low <= 0.3 * base['flops'] and high >= 2 * base['flops']


def test_exported_baseline_subnet_initialises_as_mmdet_baseline(space):
    """Trained alone, the exported baseline subnet must start where mmdet's
    baseline FCOS starts (Kaiming convs, zero-init residual BN, ...), or
    every stand-alone comparison of found and baseline mixes architecture
    with initialisation: seeded alike, their initial weights are equal."""
    rebuilt = build_model(export_config(load_config(SPACE), _first(space)))
    baseline = build_model(load_config(BASELINE))
    for model in (rebuilt, baseline):
        torch.manual_seed(0)
        model.init_weights()
    got, want = rebuilt.state_dict(), baseline.state_dict()
    assert list(got) == list(want)
    assert [k for k in got if not torch.equal(got[k], want[k])] == []
    # the supernet itself: blocks start as the identity, their shared
    # weights at the default kernel's Kaiming scale
    torch.manual_seed(0)
    supernet = build_model(load_config(SPACE)).backbone
    supernet.init_weights()
    block = supernet.layer2.blocks[1]
    assert block.bn2.weight.abs().sum() == 0
    for weight, fan_out in ((block.conv2_weight, 32 * 9),
                            (supernet.conv1.weight, 16 * 49)):
        assert weight.std().item() == pytest.approx(
            (2 / fan_out)**0.5, rel=0.1)


def test_input_size_is_counted_and_written_into_the_pipelines(space):
    subnet = dict(_first(space), **{'data_preprocessor.size': 160})
    assert input_size(load_config(SPACE)).shape == AT_128
    at_128 = subnet_resources(space, _first(space), AT_128)['flops']
    at_160 = subnet_resources(space, subnet, AT_128)['flops']
    assert 1.4 < at_160 / at_128 < 1.7  # (160 / 128) ** 2 = 1.5625
    cfg = export_config(load_config(SPACE), subnet)
    pre = cfg.model.data_preprocessor
    assert pre.type == 'mmdet.DetDataPreprocessor'
    assert 'sizes' not in pre and 'base_size' not in pre
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        resizes = [
            t for t in cfg[loader].dataset.pipeline if t.type == 'Resize'
        ]
        assert [tuple(t.scale) for t in resizes] == [(160, 160)]
    plain = build_model(cfg)
    assert type(plain.data_preprocessor).__name__ == 'DetDataPreprocessor'
    # the one input-size rule reads 160 from the exported pipelines
    size = input_size(cfg)
    assert size.shape == (3, 160, 160) and 'Resize' in size.source
    assert subnet_resources(plain, input_shape=size.shape)['flops'] == at_160
    assert subnet_resources(plain, input_shape=AT_128)['flops'] == at_128


@pytest.mark.parametrize('size', [160, 96])
def test_preprocessor_resizes_the_batch_with_its_boxes(size):
    padded = size
    pre = SearchableDetDataPreprocessor(
        sizes=[128, size], base_size=128, pad_size_divisor=32)
    pre.size.current_choice = size
    from mmdet.testing import demo_mm_inputs
    packed = demo_mm_inputs(2, [[3, 128, 128]] * 2, num_classes=10)
    boxes = [s.gt_instances.bboxes.clone() for s in packed['data_samples']]
    out = pre(packed, training=True)
    assert out['inputs'].shape[-2:] == (padded, padded)
    r = size / 128
    for sample, before in zip(out['data_samples'], boxes):
        after = sample.gt_instances.bboxes
        after = getattr(after, 'tensor', after)
        before = getattr(before, 'tensor', before)
        assert torch.allclose(after, before * r, atol=1e-4)
        assert sample.img_shape == (size, size)
        assert sample.batch_input_shape == (padded, padded)
    packed = demo_mm_inputs(2, [[3, 128, 128]] * 2, num_classes=10)
    factors = [s.scale_factor for s in packed['data_samples']]
    out = pre(packed, training=False)
    for sample, (fx, fy) in zip(out['data_samples'], factors):
        # predictions at the new size map back through the scale factor
        assert sample.scale_factor == pytest.approx((fx * r, fy * r))
    with pytest.raises(ValueError, match='cannot be mixed'):
        pre.size.set_mode('differentiable')


def test_preprocessor_refuses_sizes_the_padding_would_waste():
    # 112 px pads to 128: the cost of 128 with fewer pixels
    with pytest.raises(ValueError, match=r'\[112, 144\].*multiples of 32'):
        SearchableDetDataPreprocessor(
            sizes=[128, 112, 144], base_size=128, pad_size_divisor=32)
    SearchableDetDataPreprocessor(sizes=[128, 112], base_size=128)


def _grown(model, rng=None):
    """A random subnet (``rng`` None: the largest) that only grows the
    baseline: backbone / FPN / tower widths, depths and kernels at or above
    its own, conv shapes its own or a larger undilated kernel, at its input
    size."""
    grown = {}
    for name, m in named_mutables(model).items():
        first = m.choices[0]
        if name == 'data_preprocessor.size':
            bigger = [first]
        elif isinstance(first, tuple):  # (kernel size, dilation)
            bigger = [c for c in m.choices if c[1] == 1 and c[0] >= first[0]]
        else:
            bigger = [c for c in m.choices if c >= first]
        grown[name] = max(bigger) if rng is None else rng.choice(bigger)
    return grown


def test_function_preserving_inheritance_starts_grown_subnets_as_baseline(
        space):
    """With preserve_function, every subnet that only grows the baseline
    (wider, deeper, larger kernels) computes what the trained baseline
    computes before any training; without it, they do not."""
    import random
    baseline = trained_looking(
        build_model(load_config(BASELINE)), seed=1, spread=0.2).eval()
    data = demo_det_batch(space, training=False, size=128)
    with torch.no_grad():
        want = baseline._forward(data['inputs'])
    rng = random.Random(0)
    subnets = [_grown(space)] + [_grown(space, rng) for _ in range(4)]
    assert all(s != _first(space) for s in subnets)

    def max_diff(subnet):
        set_subnet(space, subnet)
        with torch.no_grad():
            got = space._forward(data['inputs'])
        return max((a - b).abs().max().item()
                   for a_level, b_level in zip(got, want, strict=True)
                   for a, b in zip(a_level, b_level, strict=True))

    for preserve in (False, True):
        trained_looking(space, seed=2, spread=0.2)  # init elsewhere
        set_subnet(space, _first(space))
        report = inherit_plain(
            space, baseline.state_dict(), preserve_function=preserve)
        space.eval()
        diffs = [max_diff(s) for s in subnets]
        if preserve:
            assert report['zeroed'] and len(report['identity']) == 4
            assert max(diffs) <= 1e-4, diffs
        else:
            assert 'zeroed' not in report and min(diffs) > 1e-2, diffs
    # the baseline subnet itself is unchanged by it
    assert max_diff(_first(space)) <= 1e-4
