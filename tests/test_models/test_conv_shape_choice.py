"""ConvShapeChoice: (kernel size, dilation) choices sharing one weight."""
import pytest
import torch
import torch.nn.functional as F

from mmnas_tricks.models.mutables import ConvShapeChoice, export_static

GN = dict(type='GN', num_groups=2)


def test_every_shape_is_a_centre_crop_at_its_dilation():
    torch.manual_seed(0)
    conv = ConvShapeChoice(
        4,
        6, [(3, 1), (3, 2), (5, 1), (1, 1)],
        stride=2,
        norm_cfg=None,
        act_cfg=None,
        bias=True)
    x = torch.randn(2, 4, 12, 12)
    w = conv.layer.conv.weight
    b = conv.layer.conv.bias
    for (k, d), crop in [((3, 1), w[:, :, 1:4, 1:4]),
                         ((3, 2), w[:, :, 1:4, 1:4]), ((5, 1), w),
                         ((1, 1), w[:, :, 2:3, 2:3])]:
        conv.current_choice = (k, d)
        ref = F.conv2d(x, crop, b, 2, d * (k - 1) // 2, d)
        assert torch.allclose(conv(x), ref, atol=1e-6)
    conv.current_choice = [3, 2]  # as read from YAML
    assert conv.current_choice == (3, 2)
    with pytest.raises(ValueError, match='not a choice'):
        conv.current_choice = (7, 1)


def test_shared_weight_gets_gradients_of_the_chosen_crop_only():
    conv = ConvShapeChoice(2, 2, [(1, 1), (5, 1)], norm_cfg=GN)
    conv.current_choice = (1, 1)
    conv(torch.randn(2, 2, 7, 7)).sum().backward()
    g = conv.layer.conv.weight.grad.abs().sum(dim=(0, 1))
    assert g[2, 2] > 0
    g[2, 2] = 0
    assert g.eq(0).all()
    assert conv.layer.gn.weight.grad is not None  # the norm is shared


@pytest.mark.parametrize('mode', ['differentiable', 'all_on'])
def test_mixing_modes(mode):
    torch.manual_seed(0)
    conv = ConvShapeChoice(2, 4, [(3, 1), (3, 2)], norm_cfg=None, act_cfg=None)
    x = torch.randn(1, 2, 8, 8)
    outs = []
    for s in conv.choices:
        conv.current_choice = s
        outs.append(conv(x))
    conv.set_mode(mode)
    if mode == 'differentiable':
        w = conv.arch_weights()
        assert torch.allclose(
            conv(x), w[0] * outs[0] + w[1] * outs[1], atol=1e-6)
        conv(x).sum().backward()
        assert conv.arch_alpha.grad is not None
    else:
        conv.eval()  # no dropout: every path on
        assert torch.allclose(conv(x), outs[0] + outs[1], atol=1e-6)


def test_export_is_a_conv_module_with_the_same_output_and_names():
    torch.manual_seed(0)
    conv = ConvShapeChoice(4, 8, [(3, 1), (3, 3), (5, 1)], norm_cfg=GN)
    conv.current_choice = (3, 3)
    conv.eval()
    x = torch.randn(2, 4, 9, 9)
    static = export_static(conv).eval()
    assert torch.allclose(static(x), conv(x), atol=1e-6)
    assert static.conv.dilation == (3, 3) and static.conv.kernel_size == (3, 3)
    cfg = conv.export_cfg()
    from mmnas_tricks.registry import MODELS
    built = MODELS.build(cfg)
    built.load_state_dict(static.state_dict(), strict=True)
    # and back: a plain 3x3 ConvModule's weights into the shared weight
    conv.current_choice = (3, 1)
    conv.import_module(built)
    assert torch.equal(conv.cropped_weight(3), built.conv.weight)


def test_bad_shapes():
    for bad in [[(2, 1)], [(3, 0)], [3]]:
        with pytest.raises(ValueError):
            ConvShapeChoice(2, 2, bad)


def test_crop_made_once_per_step_and_exact():
    """A tower conv called on every pyramid level, and by several subnets
    between two optimizer steps, crops its weight once: the same outputs
    and gradients as cropping on every call; a new crop after the weight
    changes in place, in another grad mode, or for another shape."""
    import copy

    from mmnas_tricks.models.mutables.elastic import _VIEWS
    torch.manual_seed(0)
    conv = ConvShapeChoice(4, 4, [(3, 1), (5, 1), (3, 2)], norm_cfg=GN)
    levels = [torch.randn(2, 4, s, s) for s in (16, 8, 4)]
    w = conv.layer.conv.weight

    def reference():  # the crop made on every call, by hand
        k, d = conv.current_choice
        s = (5 - k) // 2
        outs = []
        for x in levels:
            y = F.conv2d(x, w[:, :, s:s + k, s:s + k], conv.layer.conv.bias, 1,
                         d * (k - 1) // 2, d)
            outs.append(F.relu(conv.layer.gn(y)))
        return outs

    opt = torch.optim.SGD(conv.parameters(), lr=0.1)
    for _ in range(2):  # two steps, two subnets in each (the sandwich rule)
        summed, crops = 0, []
        for shape in [(3, 1), (3, 2)]:
            conv.current_choice = shape
            outs = [conv(x) for x in levels]
            crops.append(_VIEWS[conv][('weight', 4, 4, 3)][1])
            sum(o.sum() for o in outs).backward()
            mine, w.grad = w.grad, None
            expected = reference()
            sum(o.sum() for o in expected).backward()
            for a, b in zip(outs, expected):
                assert torch.allclose(a, b, atol=1e-6)
            assert torch.allclose(mine, w.grad, atol=1e-5)
            summed = summed + mine
            w.grad = None
        w.grad = summed  # both subnets' gradients, as a step sums them
        # one crop for the whole step: (3, 1) and (3, 2) share it
        assert crops[0] is crops[1] and len(_VIEWS[conv]) == 1
        before = _VIEWS[conv][('weight', 4, 4, 3)][1]
        opt.step()
        opt.zero_grad()
        conv.current_choice = (3, 1)
        conv(levels[0])
        # the weight moved: a new crop
        assert _VIEWS[conv][('weight', 4, 4, 3)][1] is not before
    with torch.no_grad():
        conv(levels[0])
    assert _VIEWS[conv][('weight', 4, 4, 3)][1].grad_fn is None
    conv.current_choice = (5, 1)  # the whole weight: no crop
    conv(levels[0]).sum().backward()
    assert set(_VIEWS[conv]) == {('weight', 4, 4, 3)}
    copy.deepcopy(conv)  # the kept crops are not the module's attributes
