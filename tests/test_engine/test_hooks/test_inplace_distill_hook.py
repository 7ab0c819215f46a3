"""InplaceDistillHook: the largest subnet (at the student's input size)
teaches the sampled one through extra loss terms, nothing is added when the
student is the teacher, the model's loss is restored after training; and in
a real tiny Runner with the sandwich rule."""
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from mmdet.testing import demo_mm_inputs
from mmengine.runner import Runner

from mmnas_tricks.engine.hooks import InplaceDistillHook
from mmnas_tricks.models.mutables import extreme_subnet, get_subnet, set_subnet
from mmnas_tricks.testing import config_dir, tiny_supernet_cfg
from mmnas_tricks.utils import build_model, load_config
from ...conftest import TINY_SPEC

SPACE = osp.join(config_dir(), 'supernets',
                 'fcos_whole-elastic_r18w16_fpn_gn-head_12e_digits.py')


def _model():
    cfg = load_config(SPACE)
    cfg.model.bbox_head.stacked_convs = 2
    cfg.model.bbox_head.tower_depths = (2, 1)
    torch.manual_seed(0)
    return build_model(cfg)


def _batch():
    return demo_mm_inputs(2, [[3, 128, 128]] * 2, num_classes=10)


def test_student_learns_from_the_largest_subnet_at_its_size():
    model = _model().train()
    runner = SimpleNamespace(model=model, iter=0)
    hook = InplaceDistillHook(cls_weight=1.0, feat_weight=0.5)
    hook.before_train(runner)
    student = extreme_subnet(model, 'min')
    set_subnet(model, student)
    batch = _batch()
    hook.before_train_iter(runner, 0, batch)
    assert get_subnet(model) == student  # the student is set back
    teacher = hook.teacher_subnet(model)
    assert teacher['data_preprocessor.size'] == \
        student['data_preprocessor.size']
    assert teacher == dict(
        extreme_subnet(model, 'max'),
        **{'data_preprocessor.size': student['data_preprocessor.size']})
    data = model.data_preprocessor(batch, True)
    losses = model.loss(data['inputs'], data['data_samples'])
    for key in ('loss_distill_cls', 'loss_distill_feat'):
        assert torch.isfinite(losses[key]) and losses[key] > 0
    model.zero_grad(set_to_none=True)
    losses['loss_distill_cls'].backward()
    grads = [p.grad for p in model.bbox_head.parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    # the teacher's outputs were taken without gradients
    assert all(not t.requires_grad for t in hook._teacher['logits'])
    hook.after_train_iter(runner, 0, batch)
    # a student that is the teacher learns from nobody
    set_subnet(model, teacher)
    hook.before_train_iter(runner, 1, batch)
    data = model.data_preprocessor(batch, True)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert 'loss_distill_cls' not in losses
    hook.after_train(runner)
    assert 'loss' not in model.__dict__  # the class's method again


def test_bad_weights_are_named():
    with pytest.raises(ValueError, match='cls_weight=-1'):
        InplaceDistillHook(cls_weight=-1)
    with pytest.raises(ValueError, match='both 0'):
        InplaceDistillHook(cls_weight=0, feat_weight=0)


@pytest.mark.heavy
def test_sandwich_with_distillation_in_a_real_runner(tiny_digits, tmp_path):
    cfg = tiny_supernet_cfg(SPACE, tiny_digits, TINY_SPEC,
                            str(tmp_path / 'distill'), 'inplace_distill', 1)
    cfg.custom_hooks = [
        dict(type='mmnas_tricks.SampleSubnetHook', strategy='sandwich'),
        dict(type='mmnas_tricks.InplaceDistillHook', cls_weight=1.0)
    ]
    runner = Runner.from_cfg(cfg)
    runner.train()
    iters = runner.iter
    assert iters >= 3
    values, _ = runner.message_hub.get_scalar('train/loss_distill_cls').data
    # every iteration but the largest subnet's (every third) is taught
    assert len(values) == len([t for t in range(iters) if t % 3 != 0])
    assert all(v > 0 for v in values)
    assert 'loss' not in runner.model.__dict__
