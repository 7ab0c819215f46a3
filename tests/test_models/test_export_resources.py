import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from mmengine.analysis import FlopAnalyzer

from mmnas_tricks.models import subnet_resources
from mmnas_tricks.models.mutables import (BaseMutable, export_static,
                                          get_subnet, named_mutables,
                                          sample_subnet, set_subnet,
                                          subnet_param_count)
from mmnas_tricks.registry import MODELS
from .test_mutables import Toy


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_static_export_equals_supernet_and_loads_strictly(seed):
    torch.manual_seed(seed % 1000)
    model = Toy()
    subnet = sample_subnet(model, random.Random(seed))
    model.eval()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        expected = model(x)
    static = export_static(model).eval()
    assert not any(isinstance(m, BaseMutable) for m in static.modules())
    assert not any('arch_alpha' in k for k in static.state_dict())
    with torch.no_grad():
        assert (static(x) - expected).abs().max().item() <= 1e-5
    # the same structure from another supernet loads these weights strictly
    other = export_static(Toy(), subnet)
    other.load_state_dict(static.state_dict(), strict=True)
    with torch.no_grad():
        assert (other.eval()(x) - expected).abs().max().item() <= 1e-5
    n_static = sum(p.numel() for p in static.parameters())
    assert subnet_param_count(model) == n_static
    assert get_subnet(model) == subnet  # the supernet is unchanged
    assert any(isinstance(m, BaseMutable) for m in model.modules())


def test_export_cfg_builds_the_same_module():
    model = Toy()
    set_subnet(model, dict(block1='sep3x3', block2='conv', pick=1))
    for name, mutable in named_mutables(model).items():
        built = MODELS.build(mutable.export_cfg())
        built.load_state_dict(
            mutable.export_module().state_dict(), strict=True)
    assert model.block1.export_cfg()['type'] == 'mmnas_tricks.SepConv'
    assert model.pick.export_cfg() == dict(
        type='mmnas_tricks.SelectInputs', indices=1)


def test_resources_count_only_the_subnet():
    model = Toy()
    model.train()
    big = dict(block1='conv3x3', block2='conv', pick=2)
    small = dict(block1='skip', block2='zero', pick=0)
    r_big = subnet_resources(model, big, input_shape=(3, 16, 16))
    r_small = subnet_resources(model, small, input_shape=(3, 16, 16))
    assert r_big['flops'] > r_small['flops'] > 0
    for subnet, res in ((big, r_big), (small, r_small)):
        static = export_static(model, subnet).eval()
        flops = FlopAnalyzer(static, (torch.zeros(1, 3, 16, 16), )).total()
        assert res['flops'] == flops
        assert res['params'] == sum(p.numel() for p in static.parameters())
    assert model.training  # state restored
    model.block1.set_mode('differentiable')
    subnet_resources(model, big, input_shape=(3, 16, 16))
    assert model.block1.mode == 'differentiable'


def test_static_checkpoint_holds_only_the_chosen_weights(tmp_path):
    from mmengine.runner import load_checkpoint

    from mmnas_tricks.models import save_static_checkpoint
    torch.manual_seed(0)
    model = Toy().eval()
    subnet = dict(block1='sep3x3', block2='skip', pick=2)
    path = str(tmp_path / 'static.pth')
    static = save_static_checkpoint(model, path, subnet, meta=dict(score=1.5))
    raw = torch.load(path)  # weights_only=True
    assert raw['meta'] == dict(score=1.5, subnet=subnet)
    assert set(raw['state_dict']) == set(static.state_dict())
    assert not any('candidates' in k or 'arch_alpha' in k
                   for k in raw['state_dict'])
    fresh = export_static(Toy(), subnet).eval()
    load_checkpoint(fresh, path, strict=True)
    x = torch.randn(1, 3, 8, 8)
    set_subnet(model, subnet)
    with torch.no_grad():
        assert (fresh(x) - model(x)).abs().max().item() <= 1e-5
    assert [p.name for p in tmp_path.iterdir()] == ['static.pth']


def test_resources_of_a_two_stage_detector():
    """Faster R-CNN's tensor mode predicts proposals from the image shape:
    FLOPs are traced with it bound, and the backbone choice shows in them."""
    import os.path as osp

    from mmnas_tricks.models import subnet_resources
    from mmnas_tricks.models.mutables import named_mutables
    from mmnas_tricks.testing import config_dir
    from mmnas_tricks.utils import build_model, load_config
    model = build_model(
        load_config(
            osp.join(config_dir(), 'supernets',
                     'faster-rcnn_detnas-shufflenetv2_fpn_1x_coco.py')))
    names = list(named_mutables(model))
    small = {n: 'shuffle_3x3' for n in names}
    large = {n: 'xception_3x3' for n in names}
    a = subnet_resources(model, small, (3, 128, 128))
    b = subnet_resources(model, large, (3, 128, 128))
    assert 0 < a['flops'] != b['flops'] and a['params'] < b['params']


def test_config_input_shape_is_the_padded_input():
    """A plain mmdet config's input is its test resize padded up to the
    data preprocessor's pad divisor (112 px pads to 128: what the network
    sees and pays for)."""
    from mmengine.config import Config

    from mmnas_tricks.models.resources import config_input_shape

    def cfg(scale, divisor):
        return Config(
            dict(
                model=dict(data_preprocessor=dict(pad_size_divisor=divisor)),
                test_dataloader=dict(
                    dataset=dict(pipeline=[
                        dict(type='LoadImageFromFile'),
                        dict(type='Resize', scale=scale, keep_ratio=True)
                    ]))))

    assert config_input_shape(cfg((112, 112), 32)) == (3, 128, 128)
    assert config_input_shape(cfg((100, 60), 32)) == (3, 64, 128)
    assert config_input_shape(cfg(96, 32)) == (3, 96, 96)
    assert config_input_shape(cfg((100, 60), 1)) == (3, 60, 100)


def test_one_input_size_rule_names_its_source(tmp_path):
    """Every FLOPs / params / latency figure is counted at one size: an
    explicit one, else the data preprocessor's ``size``, else the test
    (else val) pipeline's resize through dataset wrappers, else an error
    naming the config and asking for a size (no silent 128 x 128 or
    800 x 1333 guess)."""
    from mmengine.config import Config

    from mmnas_tricks.models.resources import input_size

    resize = dict(type='Resize', scale=(160, 96), keep_ratio=True)

    path = tmp_path / 'my_detector.py'  # no 'digits' in its name
    path.write_text('')

    def cfg(pre=None, **loaders):
        return Config(
            dict(model=dict(data_preprocessor=pre or {}), **loaders),
            filename=str(path))

    wrapped = dict(
        dataset=dict(type='RepeatDataset', dataset=dict(pipeline=[resize])))
    got = input_size(cfg(dict(pad_size_divisor=32), val_dataloader=wrapped))
    assert got.shape == (3, 96, 160)
    assert "val_dataloader's Resize scale (160, 96)" in got.source
    assert 'padded to a multiple of 32' in got.source
    assert 'at most' in got.source  # keep_ratio
    assert str(got).startswith('96x160 (') and got.hw == [96, 160]
    got = input_size(cfg(dict(size=(64, 48)), test_dataloader=wrapped))
    assert got == ((3, 64, 48), 'model.data_preprocessor.size')
    assert input_size(cfg(), (40, 50)) == ((3, 40, 50), 'given explicitly')
    with pytest.raises(
            ValueError, match=r'my_detector.py: no input '
            r'size.*--shape H W'):
        input_size(cfg(test_dataloader=dict(dataset=dict(pipeline=[]))))
    with pytest.raises(ValueError, match='positive ints'):
        input_size(cfg(), (0, 5))
