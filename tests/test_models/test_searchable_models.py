"""Every searchable class inside a real mmdet / mmseg model built from our
digits supernet configs (which inherit mmdet:: / mmseg:: configs): loss and
predict for the first, min, max and random subnets with gradients only in the
chosen candidates, and static export (module and config) equal to the
supernet for random subnets."""
import os.path as osp
import random

import pytest
import torch

from mmnas_tricks.models import export_config
from mmnas_tricks.models.mutables import (BaseMutable, export_static,
                                          extreme_subnet, get_subnet,
                                          named_mutables, sample_subnet,
                                          set_subnet, space_size,
                                          subnet_param_count)
from mmnas_tricks.testing import (config_dir, demo_det_batch, demo_seg_batch,
                                  unchosen_gradients)
from mmnas_tricks.utils import build_model, load_config

# config, the searchable parts (module path -> class name), task
CASES = {
    'mbv2-backbone': ('fcos_mbv2-search_fpn_gn-head_12e_digits.py',
                      dict(backbone='SearchableMobileNetV2'), 'det'),
    'detnas-backbone': ('fcos_detnas-shufflenetv2_fpn_gn-head_12e_digits.py',
                        dict(backbone='SearchableShuffleNetV2'), 'det'),
    'resnet-backbone': ('fcos_r18w16-search_fpn_gn-head_12e_digits.py',
                        dict(backbone='SearchableResNet'), 'det'),
    'whole-detector-elastic':
    ('fcos_whole-elastic_r18w16_fpn_gn-head_12e_digits.py',
     dict(
         data_preprocessor='SearchableDetDataPreprocessor',
         backbone='SearchableResNet',
         neck='FPN',
         bbox_head='FCOSHead'), 'det'),
    'nasfcos-neck-fcos-head':
    ('nasfcos_r18w16_fpn-cells-search_gn-head-search_12e_digits.py',
     dict(neck='NASFCOSSearchFPN', bbox_head='FCOSHead'), 'det'),
    'elastic-fpn-neck-fcos-head':
    ('fcos_r18w16_fpn-elastic_gn-head-elastic_12e_digits.py',
     dict(neck='FPN', bbox_head='FCOSHead'), 'det'),
    'fpn-neck-retina-head':
    ('retinanet_r18w16_fpn-search_gn-head-search_12e_digits.py',
     dict(neck='FPN', bbox_head='RetinaHead'), 'det'),
    'fpn-neck-seg-head':
    ('fpn_r18w16_fpn-search_head-search_12e_digits-seg.py',
     dict(neck='FPN', decode_head='FPNHead'), 'seg'),
    'aspp-seg-head': ('fpn_r18w16_aspp-search_12e_digits-seg.py',
                      dict(decode_head='ASPPHead'), 'seg'),
}
_MODELS = {}


def case_cfg(case):
    return load_config(osp.join(config_dir(), 'supernets', CASES[case][0]))


def case_model(case):
    """Built once per session (the DCN / deformable candidates make the
    larger ones take a second or two)."""
    if case not in _MODELS:
        torch.manual_seed(0)
        _MODELS[case] = build_model(case_cfg(case))
    return _MODELS[case]


def batch(model, case, training):
    make = demo_det_batch if CASES[case][2] == 'det' else demo_seg_batch
    return make(model, training)


def subnets(model, seed):
    first = {n: m.choices[0] for n, m in named_mutables(model).items()}
    return dict(
        first=first,  # the plain heads / FPN
        min=extreme_subnet(model, 'min'),
        max=extreme_subnet(model, 'max'),
        random=sample_subnet(model, random.Random(seed), apply=False))


@pytest.mark.parametrize('case', list(CASES))
def test_builds_inside_the_real_model(case):
    model = case_model(case)
    assert type(model).__module__.startswith(('mmdet.', 'mmseg.'))
    for part, cls_name in CASES[case][1].items():
        assert type(getattr(model, part)).__name__ == cls_name
        assert named_mutables(getattr(model, part))
    assert space_size(model) > 1


@pytest.mark.parametrize('which', ['first', 'min', 'max', 'random'])
@pytest.mark.parametrize('case', list(CASES))
def test_loss_and_predict_with_gradients_only_in_chosen(case, which):
    model = case_model(case)
    set_subnet(model, subnets(model, seed=1)[which])
    model.train()
    model.zero_grad(set_to_none=True)
    data = batch(model, case, training=True)
    losses = model.loss(data['inputs'], data['data_samples'])
    total, _ = model.parse_losses(losses)
    assert torch.isfinite(total)
    total.backward()
    assert unchosen_gradients(model) == []
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in model.parameters())
    model.zero_grad(set_to_none=True)
    model.eval()
    data = batch(model, case, training=False)
    with torch.no_grad():
        results = model.predict(data['inputs'], data['data_samples'])
    assert len(results) == 2


@pytest.mark.parametrize('seed', [0, 7])
@pytest.mark.parametrize('case', list(CASES))
def test_static_export_equals_supernet_and_exported_config_loads(case, seed):
    model = case_model(case)
    subnet = sample_subnet(model, random.Random(seed))
    model.eval()
    data = batch(model, case, training=False)
    with torch.no_grad():
        expected = model._forward(data['inputs'])
    static = export_static(model).eval()
    assert not any(isinstance(m, BaseMutable) for m in static.modules())
    # the exported config builds the same static model, loading strictly
    cfg = export_config(case_cfg(case), subnet)
    rebuilt = build_model(cfg).eval()
    assert not any(isinstance(m, BaseMutable) for m in rebuilt.modules())
    rebuilt.load_state_dict(static.state_dict(), strict=True)
    n_static = sum(p.numel() for p in rebuilt.parameters())
    assert n_static == subnet_param_count(model, subnet)
    flat = (lambda out: [out] if torch.is_tensor(out) else [
        t for level in out
        for t in (level if isinstance(level, (list, tuple)) else [level])
    ])
    with torch.no_grad():
        for module in (static, rebuilt):
            outs = flat(module._forward(data['inputs']))
            for got, want in zip(outs, flat(expected), strict=True):
                assert (got - want).abs().max().item() <= 1e-5
    assert get_subnet(model) == subnet  # the supernet is unchanged
