"""Weight inheritance from a plain checkpoint trained by mmdet's own,
unmodified tools/train.py (from its wheel) into supernets: the supernet with
the plain subnet predicts what the plain detector predicts, other
candidates are seeded where they match, and the report says what went
where (the model zoo cannot be downloaded here)."""
import json
import os.path as osp

import pytest
import torch
from mmengine.runner import Runner
from mmengine.utils import get_installed_path

from mmnas_tricks.testing import config_dir, tiny_supernet_cfg
from mmnas_tricks.utils import build_model, load_config
from ...conftest import TINY_SPEC
from ...test_tools.test_train_test import FCOS, _run, _tiny_config

ELASTIC = osp.join(config_dir(), 'supernets',
                   'fcos_r18w16_fpn-elastic_gn-head-elastic_12e_digits.py')
OPS = osp.join(config_dir(), 'supernets',
               'fcos_r18w16_fpn-search_gn-head-search_12e_digits.py')


@pytest.fixture(scope='module')
def plain_checkpoint(repo_root, tiny_digits, tmp_path_factory):
    """A tiny FCOS trained one epoch by mmdet's own tools/train.py."""
    tmp = tmp_path_factory.mktemp('inherit_plain')
    path, work = _tiny_config(repo_root, tiny_digits, tmp, FCOS,
                              'inherit_plain')
    mmdet_train = osp.join(
        get_installed_path('mmdet'), '.mim', 'tools', 'train.py')
    _run(repo_root, mmdet_train, path, '--work-dir', work)
    return path, osp.join(work, 'epoch_1.pth')


def _predict(runner, batch):
    runner.load_or_resume()
    model = runner.model
    # the supernet validates its plain (first) subnet, as SampleSubnetHook
    # sets it before validation
    for hook in runner.hooks:
        if type(hook).__name__ == 'SampleSubnetHook':
            hook._enter_eval(runner)
    model.eval()
    with torch.no_grad():
        return runner, model.val_step(batch)


@pytest.mark.xdist_group('inherit_plain_checkpoint')
@pytest.mark.heavy
@pytest.mark.parametrize('supernet', [ELASTIC, OPS])
def test_supernet_from_a_plain_mmdet_checkpoint_predicts_the_same(
        plain_checkpoint, tiny_digits, tmp_path, supernet):
    plain_path, ckpt = plain_checkpoint
    plain = load_config(plain_path)
    plain.load_from = ckpt
    plain.work_dir = str(tmp_path / 'plain')
    plain.experiment_name = f'inherit_plain_val_{osp.basename(supernet)}'
    cfg = tiny_supernet_cfg(
        supernet,
        tiny_digits,
        TINY_SPEC,
        str(tmp_path / 'supernet'),
        f'inherit_{osp.basename(supernet)}',
        tower_depths=None)
    cfg.model.test_cfg = plain.model.test_cfg
    cfg.model.bbox_head.stacked_convs = plain.model.bbox_head.stacked_convs
    cfg.load_from = ckpt
    cfg.custom_hooks.append(dict(type='mmnas_tricks.InheritWeightsHook'))

    plain_runner = Runner.from_cfg(plain)
    batch = next(iter(plain_runner.build_dataloader(plain.val_dataloader)))
    _, want = _predict(plain_runner, batch)
    runner, got = _predict(Runner.from_cfg(cfg), batch)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert torch.allclose(
            g.pred_instances.bboxes, w.pred_instances.bboxes, atol=1e-4)
        assert torch.allclose(
            g.pred_instances.scores, w.pred_instances.scores, atol=1e-5)
    # so the same mAP: both validate through mmengine
    for c in (cfg, plain):
        c.experiment_name += '_val'
        c.default_hooks.checkpoint = None  # save_best needs a training
    assert Runner.from_cfg(cfg).val() == pytest.approx(
        Runner.from_cfg(plain).val())

    report = json.load(
        open(osp.join(str(tmp_path / 'supernet'), 'inherit_report.json')))
    plain_keys = set(torch.load(ckpt)['state_dict'])
    assert set(report['loaded']) == plain_keys
    assert report['unused'] == []
    assert not [
        x
        for x in report['left_at_init'] if x['why'] == 'not in the checkpoint'
    ]
    state = torch.load(ckpt)['state_dict']
    model = runner.model
    if supernet == OPS:
        # the dilated 3x3 candidates take the plain 3x3 conv, separable and
        # deformable convs keep their init (said why), and so does the 3x3
        # candidate of a lateral conv whose plain choice is 1x1
        how = {(s['mutable'], s['candidate']): s['how']
               for s in report['spread']}
        assert how[('bbox_head.cls_convs.0', 'dil_conv_3x3')] == 'copy'
        head = model.bbox_head.cls_convs[0].candidates
        assert torch.equal(head['dil_conv_3x3'].conv.weight,
                           state['bbox_head.cls_convs.0.conv.weight'])
        why = {x['where']: x['why'] for x in report['left_at_init']}
        assert 'SepConv' in why[
            'bbox_head.cls_convs.0.candidates.sep_conv_3x3']
        assert '(3, 3)' in why['neck.lateral_convs.0.candidates.conv3x3'] or \
            '3, 3' in why['neck.lateral_convs.0.candidates.conv3x3']
    else:
        assert all('shared weights' in s['how'] for s in report['spread'])


def test_a_supernet_checkpoint_is_left_alone(tmp_path):
    from mmnas_tricks.engine.hooks import InheritWeightsHook

    class FakeRunner:
        work_dir = str(tmp_path)

        def __init__(self, model):
            self.model = model

    model = build_model(load_config(ELASTIC))
    own = {k: v.clone() for k, v in model.state_dict().items()}
    checkpoint = dict(state_dict=dict(own))
    hook = InheritWeightsHook()
    hook.after_load_checkpoint(FakeRunner(model), checkpoint)
    assert hook.report is None and checkpoint['state_dict'].keys() == own.keys(
    )
    assert not osp.isfile(osp.join(str(tmp_path), 'inherit_report.json'))
