import pytest
import torch

from mmnas_tricks.registry import MODELS

# prefixed: other tests may leave mmdet's or mmseg's default scope behind
OPS = [
    dict(type='mmnas_tricks.ConvOp', kernel_size=1),
    dict(type='mmnas_tricks.ConvOp', kernel_size=3, dilation=2),
    dict(type='mmnas_tricks.SepConv', kernel_size=3),
    dict(type='mmnas_tricks.SepConv', kernel_size=5, dilation=6),
    dict(type='mmnas_tricks.DeformConvOp'),
    dict(type='mmnas_tricks.Identity'),
    dict(type='mmnas_tricks.Zero'),
    dict(
        type='mmnas_tricks.MBConv',
        kernel_size=5,
        expand_ratio=3,
        se_ratio=0.25),
    dict(type='mmnas_tricks.MBConv', kernel_size=3, expand_ratio=1),
    dict(type='mmnas_tricks.ShuffleBlock', kernel_size=7),
    dict(type='mmnas_tricks.ShuffleBlock', xception=True),
]


@pytest.mark.parametrize('cfg', OPS, ids=lambda c: str(sorted(c.items())))
@pytest.mark.parametrize('in_c,out_c,stride', [(8, 8, 1), (8, 16, 2)])
def test_shapes_and_backward(cfg, in_c, out_c, stride):
    op = MODELS.build(
        dict(cfg, in_channels=in_c, out_channels=out_c, stride=stride))
    x = torch.randn(2, in_c, 9, 9, requires_grad=True)
    y = op(x)
    assert y.shape == (2, out_c, 5 if stride == 2 else 9,
                       5 if stride == 2 else 9)
    if cfg['type'] != 'mmnas_tricks.Zero':
        y.sum().backward()
        assert x.grad is not None


def test_norm_and_act_cfg_are_honoured():
    op = MODELS.build(
        dict(
            type='mmnas_tricks.SepConv',
            in_channels=8,
            out_channels=8,
            norm_cfg=dict(type='GN', num_groups=4),
            act_cfg=dict(type='SiLU')))
    kinds = {type(m).__name__ for m in op.modules()}
    assert ('GroupNorm' in kinds and 'SiLU' in kinds
            and 'BatchNorm2d' not in kinds)


def test_identity_is_exact_without_projection():
    x = torch.randn(1, 4, 3, 3)
    op = MODELS.build(
        dict(type='mmnas_tricks.Identity', in_channels=4, out_channels=4))
    assert op.proj is None and torch.equal(op(x), x)


def test_mbconv_residual_and_bad_args():
    op = MODELS.build(
        dict(type='mmnas_tricks.MBConv', in_channels=4, out_channels=4))
    assert op.use_residual
    with pytest.raises(ValueError, match='expand_ratio=0.5'):
        MODELS.build(
            dict(
                type='mmnas_tricks.MBConv',
                in_channels=4,
                out_channels=4,
                expand_ratio=0.5))


@pytest.mark.parametrize('agg', ['ParamSum', 'ConcatReduce'])
def test_aggregations_resize_to_the_larger_map(agg):
    op = MODELS.build(
        dict(type=f'mmnas_tricks.{agg}', in_channels=4, out_channels=4))
    x, y = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 4, 4)
    assert op([x, y]).shape == (2, 4, 8, 8) == op([y, x]).shape


def test_param_sum_starts_as_a_plain_sum():
    op = MODELS.build(
        dict(type='mmnas_tricks.ParamSum', in_channels=3, out_channels=3))
    x, y = torch.randn(1, 3, 5, 5), torch.randn(1, 3, 5, 5)
    assert torch.allclose(op([x, y]), x + y)


def test_shuffle_block_keeps_half_the_input_at_stride_1():
    from mmnas_tricks.models.ops import channel_shuffle
    op = MODELS.build(
        dict(type='mmnas_tricks.ShuffleBlock', in_channels=8, out_channels=8))
    x = torch.randn(1, 8, 6, 6)
    out = op(x)
    # channel_shuffle interleaves: the untouched half sits at even channels
    assert torch.equal(out[:, 0::2], x[:, :4])
    assert torch.equal(
        channel_shuffle(torch.arange(4.).view(1, 4, 1, 1)).flatten(),
        torch.tensor([0., 2., 1., 3.]))
    with pytest.raises(ValueError, match='keeps the channels'):
        MODELS.build(
            dict(
                type='mmnas_tricks.ShuffleBlock',
                in_channels=8,
                out_channels=16))


@pytest.mark.parametrize('stride,padding,dilation,groups,deform_groups',
                         [(1, 1, 1, 1, 1), (2, 2, 2, 1, 2), (1, 1, 1, 2, 1)])
def test_cpu_dcn_matches_mmcv(stride, padding, dilation, groups,
                              deform_groups):
    """The pure-PyTorch DCNv2 path computes what mmcv's CPU kernel does,
    forward and backward, with fractional offsets reaching off the map."""
    from mmcv.ops import ModulatedDeformConv2dPack

    from mmnas_tricks.models.ops import TorchCPUDCNv2
    torch.manual_seed(0)
    args = (8, 6, 3)
    kwargs = dict(
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        deform_groups=deform_groups)
    ref, ours = ModulatedDeformConv2dPack(*args, **kwargs), TorchCPUDCNv2(
        *args, **kwargs)
    torch.nn.init.normal_(ref.conv_offset.weight, std=0.5)
    torch.nn.init.normal_(ref.conv_offset.bias, std=1.5)
    ours.load_state_dict(ref.state_dict(), strict=True)
    x1 = torch.randn(2, 8, 9, 7, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    y1, y2 = ref(x1), ours(x2)
    assert (y1 - y2).abs().max().item() <= 1e-5
    y1.pow(2).sum().backward()
    y2.pow(2).sum().backward()
    assert (x1.grad - x2.grad).abs().max().item() <= 1e-4
    for a, b in zip(ref.parameters(), ours.parameters()):
        assert (a.grad - b.grad).abs().max().item() <= 1e-4
