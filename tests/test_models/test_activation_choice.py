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
