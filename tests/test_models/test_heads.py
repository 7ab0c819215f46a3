"""The known architecture inside the head spaces: the subnet conv3x3 at full
depth is mmdet's plain tower (parameter count, names, weights)."""
import copy
import os.path as osp
import subprocess
import sys
import textwrap

import pytest
import torch
from mmengine.registry import DefaultScope

from mmnas_tricks.models import inherit_weights
from mmnas_tricks.models.mutables import (export_static, named_mutables,
                                          set_subnet, subnet_param_count)
from mmnas_tricks.testing import config_dir, demo_det_batch
from mmnas_tricks.utils import build_model, load_config

HEAD_ARGS = dict(
    num_classes=10,
    in_channels=32,
    feat_channels=32,
    stacked_convs=4,
    strides=[8, 16, 32],
    norm_cfg=dict(type='GN', num_groups=8, requires_grad=True))


def plain_subnet(head):
    """conv3x3 in every layer, full depth."""
    return {
        n: ('conv3x3' if 'conv3x3' in m.choices else max(m.choices))
        for n, m in named_mutables(head).items()
    }


def build_pair(kind):
    from mmdet.registry import MODELS
    args = copy.deepcopy(HEAD_ARGS)
    if kind == 'RetinaHead':
        args.pop('strides')
        args['anchor_generator'] = dict(
            type='AnchorGenerator',
            octave_base_scale=4,
            scales_per_octave=3,
            ratios=[0.5, 1.0, 2.0],
            strides=[8, 16, 32])
    with DefaultScope.overwrite_default_scope('mmdet'):
        plain = MODELS.build(dict(type=kind, **args))
        searchable = MODELS.build(
            dict(
                type=f'mmnas_tricks.Searchable{kind}',
                tower_depths=(2, 3, 4),
                **args))
    return plain, searchable


@pytest.mark.parametrize('kind', ['FCOSHead', 'RetinaHead'])
def test_plain_subnet_is_the_mmdet_head(kind):
    plain, searchable = build_pair(kind)
    assert type(searchable) is type(plain)  # composition: still mmdet's class
    subnet = plain_subnet(searchable)
    n_plain = sum(p.numel() for p in plain.parameters())
    assert subnet_param_count(searchable, subnet) == n_plain
    static = export_static(searchable, subnet)
    assert {k: v.shape for k, v in static.state_dict().items()} == \
        {k: v.shape for k, v in plain.state_dict().items()}
    # weight inheritance: the plain head's weights, loaded strictly into the
    # supernet's chosen candidates, reproduce the plain head's outputs
    torch.manual_seed(0)
    for p in plain.parameters():
        torch.nn.init.normal_(p, std=0.1)
    inherit_weights(searchable, plain.state_dict(), subnet, strict=True)
    set_subnet(searchable, subnet)
    feats = [torch.randn(2, 32, s, s) for s in (16, 8, 4)]
    plain.eval(), searchable.eval()
    with torch.no_grad():
        for want, got in zip(plain(feats), searchable(feats), strict=True):
            for w, g in zip(want, got, strict=True):
                assert (w - g).abs().max().item() <= 1e-5


def test_zoo_detector_checkpoint_seeds_the_supernet(tmp_path):
    """A whole plain FCOS detector checkpoint (as the model zoo ships) loads
    into a supernet with a searchable head, strictly, through the subnet that
    reproduces it."""
    cfg = load_config(
        osp.join(config_dir(), 'baselines',
                 'fcos_r18w16_fpn_gn-head_12e_digits.py'))
    torch.manual_seed(0)
    plain = build_model(cfg).eval()
    path = tmp_path / 'zoo.pth'
    torch.save(dict(state_dict=plain.state_dict(), meta={}), path)
    cfg.model.bbox_head.type = 'mmnas_tricks.SearchableFCOSHead'
    cfg.model.bbox_head.tower_depths = (2, 3, 4)
    supernet = build_model(cfg)
    subnet = {
        f'bbox_head.{n}': c
        for n, c in plain_subnet(supernet.bbox_head).items()
    }
    state = torch.load(path)['state_dict']
    inherit_weights(supernet, state, subnet, strict=True)
    set_subnet(supernet, subnet)
    supernet.eval()
    data = demo_det_batch(plain, training=False)
    with torch.no_grad():
        want, got = plain._forward(data['inputs']), supernet._forward(
            data['inputs'])
    for w_level, g_level in zip(want, got, strict=True):
        for w, g in zip(w_level, g_level, strict=True):
            assert (w - g).abs().max().item() <= 1e-5


ZOO_CASES = [
    ('retinanet/retinanet_r50_fpn_1x_coco.py', 'bbox_head',
     'SearchableRetinaHead'),
    ('retinanet/retinanet_r50_fpn_1x_coco.py', 'neck', 'SearchableFPN'),
    ('fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py', 'bbox_head',
     'SearchableFCOSHead'),
]


@pytest.fixture(scope='module')
def zoo_interpreters(tmp_path_factory):
    """One fresh interpreter per case, all started at once (each spends
    most of its ~7 s importing; side by side they overlap)."""
    procs = {}
    for i, (base, part, searchable) in enumerate(ZOO_CASES):
        cfg_path = tmp_path_factory.mktemp(f'zoo{i}') / 'user_cfg.py'
        cfg_path.write_text(
            textwrap.dedent(f"""\
            _base_ = 'mmdet::{base}'
            custom_imports = dict(imports=['mmnas_tricks'],
                                  allow_failed_imports=False)
            model = dict({part}=dict(type='mmnas_tricks.{searchable}'))
        """))
        code = textwrap.dedent(f"""\
            from mmengine.config import Config
            from mmengine.registry import init_default_scope
            from mmdet.registry import MODELS
            cfg = Config.fromfile({str(cfg_path)!r})
            init_default_scope('mmdet')
            model = MODELS.build(cfg.model)
            from mmnas_tricks.models.mutables import named_mutables
            print('mutables', len(named_mutables(model.{part})))
        """)
        procs[(base, part,
               searchable)] = subprocess.Popen([sys.executable, '-c', code],
                                               stdout=subprocess.PIPE,
                                               stderr=subprocess.PIPE,
                                               text=True)
    yield procs
    for proc in procs.values():
        if proc.poll() is None:
            proc.kill()


@pytest.mark.xdist_group('zoo_interpreters')
@pytest.mark.heavy
@pytest.mark.parametrize('base,part,searchable', ZOO_CASES)
def test_builds_from_a_zoo_config_with_only_the_documented_line(
        zoo_interpreters, base, part, searchable):
    """A fresh interpreter that never imported mmnas_tricks: the config's
    custom_imports line is all it takes."""
    proc = zoo_interpreters[(base, part, searchable)]
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-2000:]
    count = int(stdout.split('mutables')[-1])
    assert count > 0
