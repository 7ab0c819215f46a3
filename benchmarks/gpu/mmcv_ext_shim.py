"""A stand-in for mmcv's compiled ``mmcv._ext``, for the GPU benchmark run.

mmcv 2.1.0 has no wheel for the GPU machine's torch, and building its CUDA
ops there would spend most of the device time. ``benchmarks/gpu/run.sh``
installs mmcv's pure-Python build (``MMCV_WITH_OPS=0``) and copies this file
to ``mmcv/_ext.py``. It implements, in plain torch (and torchvision's NMS),
the only compiled ops the benchmarked models call: ``nms`` (mmdet's
``batched_nms`` in every detector's predict) and the sigmoid focal loss
(mmdet's ``FocalLoss`` on CUDA tensors). Any other op raises, naming itself,
so a benchmark that needs one fails instead of measuring something else.

Checked against mmdet's pure-torch focal loss and mmcv's CPU NMS by
``tests/test_benchmarks.py``.
"""
import torch


def nms(boxes, scores, iou_threshold: float, offset: int = 0):
    """Indices kept by NMS, highest score first (mmcv's ``nms`` op)."""
    if offset not in (0, 1):
        raise ValueError(f'offset={offset} is not one of [0, 1]')
    if boxes.numel() == 0:
        return boxes.new_zeros(0, dtype=torch.long)
    if offset == 1:  # mmcv's legacy "+1" box widths
        boxes = torch.cat([boxes[:, :2], boxes[:, 2:] + 1], dim=1)
    try:
        import torchvision
        return torchvision.ops.nms(boxes.float(), scores.float(),
                                   float(iou_threshold))
    except ImportError:  # no torchvision (the CPU machine): greedy NMS
        return _greedy_nms(boxes.float(), scores.float(), float(iou_threshold))


def _greedy_nms(boxes, scores, iou_threshold: float):
    """NMS from the pairwise IoU matrix, suppressed greedily on the CPU (as
    mmcv's CUDA kernel finishes its bit masks)."""
    import numpy as np
    order = torch.argsort(scores, descending=True, stable=True)
    b = boxes[order]
    area = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    lt = torch.maximum(b[:, None, :2], b[None, :, :2])
    rb = torch.minimum(b[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=2)
    iou = inter / (area[:, None] + area[None, :] - inter).clamp(min=1e-12)
    over = (iou > iou_threshold).cpu().numpy()
    removed = np.zeros(len(b), dtype=bool)
    keep = []
    for i in range(len(b)):
        if not removed[i]:
            keep.append(i)
            removed |= over[i]
    return order[torch.as_tensor(keep, dtype=torch.long, device=order.device)]


def _focal(input, target, weight, gamma, alpha):
    """Per-element sigmoid focal loss (N, C) of class indices ``target``
    (``C`` = background), as mmcv's kernel computes it."""
    num_classes = input.size(1)
    onehot = torch.zeros_like(input)
    fg = target < num_classes
    onehot[fg, target[fg]] = 1
    p = input.sigmoid()
    log_p = torch.nn.functional.logsigmoid(input)
    log_1mp = torch.nn.functional.logsigmoid(-input)
    loss = onehot * (-alpha * (1 - p).pow(gamma) * log_p) + \
        (1 - onehot) * (-(1 - alpha) * p.pow(gamma) * log_1mp)
    if weight is not None and weight.numel() > 0:
        w = torch.ones(input.size(0), dtype=input.dtype, device=input.device)
        w[fg] = weight[target[fg]]
        loss = loss * w[:, None]
    return loss


def sigmoid_focal_loss_forward(input,
                               target,
                               weight,
                               output,
                               gamma=2.0,
                               alpha=0.25):
    output.copy_(_focal(input, target, weight, gamma, alpha))


def sigmoid_focal_loss_backward(input,
                                target,
                                weight,
                                grad_input,
                                gamma=2.0,
                                alpha=0.25):
    with torch.enable_grad():
        x = input.detach().requires_grad_(True)
        loss = _focal(x, target, weight, gamma, alpha)
        grad, = torch.autograd.grad(loss.sum(), x)
    grad_input.copy_(grad)


def __getattr__(name):
    if name.startswith('__'):
        raise AttributeError(name)

    def missing(*args, **kwargs):
        raise NotImplementedError(
            f'mmcv op {name!r} is not in the benchmark shim '
            '(benchmarks/gpu/mmcv_ext_shim.py implements nms and '
            'sigmoid_focal_loss_forward/backward)')

    missing.__name__ = name
    return missing
