"""ActivationChoice (models/mutables/activation_choice.py): one choice of
activation shared by a part's layers, exported as the plain module of
that act_cfg (equal outputs, strict loading)."""
import pytest
import torch
from mmengine.registry import DefaultScope
from mmseg.models.decode_heads import FCNHead

from mmnas_tricks.models.mutables import (ActivationChoice, activation_choices,
                                          export_static, get_subnet,
                                          named_mutables, set_subnet)

HEAD = dict(
    in_channels=8,
    channels=8,
    num_convs=2,
    num_classes=3,
    concat_input=True,
    act_cfg=dict(type='ReLU'))


def _head(**kwargs):
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmseg'):
        return FCNHead(**dict(HEAD, **kwargs))


def _searchable():
    head = _head()
    made = activation_choices(
        head, dict(convs=['convs.0', 'convs.1'], fuse=['conv_cat']),
        ('SiLU', 'GELU', 'HSwish', 'ReLU'))
    return head, made


def test_one_choice_per_group_the_plain_activation_first():
    head, made = _searchable()
    assert list(
        named_mutables(head)) == ['convs.0.activate', 'conv_cat.activate']
    assert made['convs'] is head.convs[1].activate  # shared by the group
    assert made['convs'].choices == ['ReLU', 'SiLU', 'GELU', 'HSwish']
    assert get_subnet(head) == {
        'convs.0.activate': 'ReLU',
        'conv_cat.activate': 'ReLU'
    }
    # the default subnet is mmseg's head
    x = [torch.randn(2, 8, 16, 16)]
    head.eval()
    plain = _head().eval()
    with torch.no_grad():
        assert torch.allclose(head(x), plain(x), atol=1e-6)


@pytest.mark.parametrize('act', ['SiLU', 'GELU', 'HSwish'])
def test_export_is_the_plain_head_of_that_act_cfg(act):
    head, _ = _searchable()
    set_subnet(head, {'convs.0.activate': act, 'conv_cat.activate': 'ReLU'})
    head.eval()
    x = [torch.randn(2, 8, 16, 16)]
    static = export_static(head).eval()
    assert not list(named_mutables(static))
    assert static.convs[0].act_cfg == static.convs[1].act_cfg == dict(type=act)
    assert static.conv_cat.act_cfg == dict(type='ReLU')
    assert head.convs[0].act_cfg == dict(type='ReLU')  # supernet untouched
    with torch.no_grad():
        want = head(x)
        assert torch.allclose(static(x), want, atol=1e-6)
        # mmseg's own head of that act_cfg takes the weights strictly and
        # computes the same (its fuse conv keeps ReLU: that group's choice)
        plain = _head(act_cfg=dict(type=act))
        plain.conv_cat = _head().conv_cat
        plain.load_state_dict(static.state_dict(), strict=True)
        assert torch.allclose(plain.eval()(x), want, atol=1e-6)


def test_differentiable_mix_and_all_on():
    choice = ActivationChoice(['ReLU', 'SiLU'])
    x = torch.randn(4, 3, 5, 5)
    choice.set_mode('differentiable')
    with torch.no_grad():
        choice.arch_alpha.copy_(torch.tensor([0.0, 0.0]))
    want = 0.5 * torch.relu(x) + 0.5 * torch.nn.functional.silu(x)
    assert torch.allclose(choice(x), want, atol=1e-6)
    out = choice(x)
    out.sum().backward()  # alpha learns through the mix
    assert choice.arch_alpha.grad is not None
    choice.set_mode('all_on')
    choice.eval()  # nothing dropped in eval mode: the sum
    assert torch.allclose(
        choice(x), torch.relu(x) + torch.nn.functional.silu(x), atol=1e-6)


def test_bad_layers_are_named():
    head = _head()
    with pytest.raises(TypeError, match="'convs' is a Sequential"):
        activation_choices(head, ['convs'])
    mixed = _head()
    mixed.convs[1].act_cfg = dict(type='SiLU')
    with pytest.raises(
            ValueError,
            match=r"group 'convs' have different activations "
            r"\['ReLU', 'SiLU'\]"):
        activation_choices(mixed, dict(convs=['convs.0', 'convs.1']))


def test_fcos_towers_choose_their_activation_and_export_it():
    """SearchableFCOSHead(act_choices=...): one choice per tower; the
    exported config's head (fixed_subnet) is the static export: the
    towers' ConvModules carry the chosen act_cfg, equal outputs."""
    from mmengine.config import Config

    from mmnas_tricks.models import export_config
    from mmnas_tricks.registry import MODELS
    head_cfg = dict(
        type='mmnas_tricks.SearchableFCOSHead',
        num_classes=3,
        in_channels=16,
        feat_channels=16,
        stacked_convs=2,
        strides=[8, 16],
        norm_cfg=dict(type='GN', num_groups=4),
        tower_ops=[(3, 1), (5, 1)],
        act_choices=('ReLU', 'SiLU', 'HSwish'))
    torch.manual_seed(0)
    head = MODELS.build(head_cfg)
    acts = {
        n: m.choices
        for n, m in named_mutables(head).items()
        if isinstance(m, ActivationChoice)
    }
    assert acts == {
        'cls_convs.0.layer.activate': ['ReLU', 'SiLU', 'HSwish'],
        'reg_convs.0.layer.activate': ['ReLU', 'SiLU', 'HSwish']
    }
    subnet = dict(
        get_subnet(head), **{
            'cls_convs.0.layer.activate': 'SiLU',
            'reg_convs.0.layer.activate': 'HSwish',
            'cls_convs.1': (5, 1)
        })
    set_subnet(head, subnet)
    head.eval()
    feats = [torch.randn(1, 16, 8, 8), torch.randn(1, 16, 4, 4)]
    static = export_static(head).eval()
    assert [c.act_cfg for c in static.cls_convs] == [dict(type='SiLU')] * 2
    assert [c.act_cfg for c in static.reg_convs] == [dict(type='HSwish')] * 2
    cfg = export_config(
        Config(dict(model=dict(type='FCOS', bbox_head=head_cfg))),
        {f'bbox_head.{k}': v
         for k, v in subnet.items()})
    fixed = MODELS.build(cfg.model.bbox_head)
    fixed.load_state_dict(static.state_dict(), strict=True)
    fixed.eval()
    assert type(fixed.cls_convs[0].activate).__name__ == 'SiLU'
    with torch.no_grad():
        for ours, theirs, plain in zip(
                head(feats), static(feats), fixed(feats)):
            for a, b, c in zip(ours, theirs, plain):
                assert torch.allclose(a, b, atol=1e-5)
                assert torch.allclose(a, c, atol=1e-5)
    with pytest.raises(ValueError, match='act_choices needs tower_ops as'):
        MODELS.build(dict(head_cfg, tower_ops=None))


def test_the_whole_detector_space_with_tower_activations():
    """The activation ablation's supernet: the baseline still loads into
    its first subnet (function preserved), and a subnet with other
    activations exports to a config whose model computes what the
    supernet computes, its FLOPs counted."""
    import os.path as osp
    import random

    from mmnas_tricks.engine.pipeline import stage_configs
    from mmnas_tricks.models import export_config
    from mmnas_tricks.models.inherit import inherit_plain
    from mmnas_tricks.models.mutables import sample_subnet
    from mmnas_tricks.models.resources import subnet_resources
    from mmnas_tricks.testing import (config_dir, demo_det_batch,
                                      trained_looking)
    from mmnas_tricks.utils import build_model, load_config
    path = osp.join(config_dir(), 'nas',
                    'ablation_nsga2_fcos_whole-elastic_act_digits.py')
    supernet_cfg = stage_configs(load_config(path), path)['supernet']
    torch.manual_seed(0)
    space = build_model(supernet_cfg)
    baseline = trained_looking(
        build_model(
            load_config(
                osp.join(config_dir(), 'baselines',
                         'fcos_r18w16_fpn_gn-head_12e_digits.py'))),
        spread=0.2).eval()
    first = {n: m.choices[0] for n, m in named_mutables(space).items()}
    set_subnet(space, first)
    report = inherit_plain(
        space, baseline.state_dict(), preserve_function=True)
    assert report['unused'] == []
    space.eval()
    data = demo_det_batch(space, training=False, size=128)
    with torch.no_grad():
        for a_level, b_level in zip(
                space(data['inputs'], mode='tensor'),
                baseline(data['inputs'], mode='tensor')):
            for a, b in zip(a_level, b_level):
                assert (a - b).abs().max().item() <= 1e-4
    subnet = sample_subnet(space, random.Random(3))
    subnet.update({
        'data_preprocessor.size': 128,
        'bbox_head.cls_convs.0.layer.activate': 'GELU',
        'bbox_head.reg_convs.0.layer.activate': 'SiLU'
    })
    set_subnet(space, subnet)
    static = build_model(export_config(supernet_cfg, subnet, space))
    exported = export_static(space)
    static.load_state_dict(exported.state_dict(), strict=True)
    static.eval()
    with torch.no_grad():
        for a_level, b_level in zip(
                space(data['inputs'], mode='tensor'),
                static(data['inputs'], mode='tensor')):
            for a, b in zip(a_level, b_level):
                assert (a - b).abs().max().item() <= 1e-4
    assert all(c.act_cfg == dict(type='GELU')
               for c in static.bbox_head.cls_convs)
    assert subnet_resources(space, subnet, (3, 128, 128))['flops'] == \
        subnet_resources(static, input_shape=(3, 128, 128))['flops']
