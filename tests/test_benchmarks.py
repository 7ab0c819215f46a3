"""The benchmark run on the GPU machine replaces mmcv's compiled ops by
``benchmarks/gpu/mmcv_ext_shim.py``: it must compute what mmcv computes."""
import importlib.util
import os.path as osp

import pytest
import torch


@pytest.fixture(scope='module')
def shim(repo_root):
    path = osp.join(repo_root, 'benchmarks', 'gpu', 'mmcv_ext_shim.py')
    spec = importlib.util.spec_from_file_location('mmcv_ext_shim', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _boxes(n, seed):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 100
    wh = torch.rand(n, 2, generator=g) * 40 + 1
    return torch.cat([xy, xy + wh], 1), torch.rand(n, generator=g)


@pytest.mark.parametrize('seed', [0, 1])
def test_shim_nms_keeps_what_mmcv_keeps(shim, seed):
    from mmcv.utils import ext_loader
    mmcv_ext = ext_loader.load_ext('_ext', ['nms'])
    boxes, scores = _boxes(300, seed)
    for thr in (0.3, 0.6):
        expected = mmcv_ext.nms(boxes, scores, iou_threshold=thr, offset=0)
        got = shim.nms(boxes, scores, iou_threshold=thr, offset=0)
        assert got.tolist() == expected.tolist()
        assert 0 < len(got) < len(boxes)
    assert shim.nms(boxes[:0], scores[:0], 0.5, 0).numel() == 0


def test_shim_focal_loss_equals_mmdets_pure_torch_one(shim):
    from mmdet.models.losses.focal_loss import py_sigmoid_focal_loss
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 10, generator=g)
    target = torch.randint(0, 11, (64, ), generator=g)  # 10 = background
    onehot = torch.nn.functional.one_hot(target, 11)[:, :10].float()
    x = logits.clone().requires_grad_(True)
    expected = py_sigmoid_focal_loss(
        x, onehot, gamma=2.0, alpha=0.25, reduction='none')
    expected.sum().backward()
    out = torch.zeros_like(logits)
    shim.sigmoid_focal_loss_forward(
        logits, target, logits.new_empty(0), out, gamma=2.0, alpha=0.25)
    grad = torch.zeros_like(logits)
    shim.sigmoid_focal_loss_backward(
        logits, target, logits.new_empty(0), grad, gamma=2.0, alpha=0.25)
    assert torch.allclose(out, expected.detach(), atol=1e-6)
    assert torch.allclose(grad, x.grad, atol=1e-6)


def test_shim_names_an_op_it_lacks(shim):
    with pytest.raises(NotImplementedError, match='roi_align_forward'):
        shim.roi_align_forward(None)
