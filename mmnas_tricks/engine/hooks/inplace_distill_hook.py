"""In-place distillation: the largest subnet teaches the sampled one."""
from typing import List, Optional

import torch
import torch.nn.functional as F
from mmengine.hooks import Hook

from mmnas_tricks.models.mutables import (extreme_subnet, get_subnet,
                                          named_mutables, set_subnet)
from mmnas_tricks.registry import HOOKS
from .utils import unwrap_model


def _levels(out) -> List[torch.Tensor]:
    """The per-level tensors of a neck's or head's output."""
    if torch.is_tensor(out):
        return [out]
    return [t for t in out if torch.is_tensor(t)]


def _logits(out) -> List[torch.Tensor]:
    """The classification logits per level of a head's output: a dense
    head's first output (one tensor per level), a decode head's tensor."""
    return _levels(out[0] if isinstance(out, (tuple, list)) else out)


@HOOKS.register_module()
class InplaceDistillHook(Hook):
    """In-place distillation (Yu et al., "BigNAS", ECCV 2020; the knowledge
    distillation of Once-for-All, Cai et al., ICLR 2020): at every training
    iteration the largest subnet runs on the same batch without gradients
    and the sampled subnet's loss gains

    - ``cls_weight`` x the binary cross-entropy of its classification
      logits (the head's first output, per level) against the largest
      subnet's sigmoid probabilities (a dense detector's sigmoid
      classifier); for a segmentor (one tensor of logits) the KL divergence
      of the softmax;
    - ``feat_weight`` x the mean squared error of its neck features against
      the largest subnet's, on the channels they share (elastic widths use
      the first channels).

    The teacher keeps the student's input size (an input-size choice is not
    maximised: the feature maps must align) and every ``fixed`` mutable's
    choice. Nothing is added when the sampled subnet is the teacher (the
    first iteration of each sandwich triple). Use with
    ``SampleSubnetHook(strategy='sandwich')``, which trains the largest
    subnet every third iteration (BigNAS's sandwich rule).

    Priority ``'LOW'``: after :class:`SampleSubnetHook` (``'NORMAL'``) has
    set the iteration's subnet. The teacher's forward runs in train mode
    (BatchNorm on batch statistics, as the student's), so it costs one more
    forward pass per iteration. The loss is extended through the model's
    ``loss`` method, wrapped for the run and restored after it; the teacher
    outputs live on the hook.

    Args:
        cls_weight (float): Weight of the logit distillation. Defaults to
            1.0.
        feat_weight (float): Weight of the neck-feature distillation.
            Defaults to 0.0.

    Example:
        >>> custom_hooks = [
        ...     dict(type='mmnas_tricks.SampleSubnetHook',
        ...          strategy='sandwich'),
        ...     dict(type='mmnas_tricks.InplaceDistillHook', cls_weight=1.0)]
    """

    priority = 'LOW'
    search_only = True  # dropped from exported configs

    def __init__(self, cls_weight: float = 1.0, feat_weight: float = 0.0):
        for name, value in (('cls_weight', cls_weight), ('feat_weight',
                                                         feat_weight)):
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f'{name}={value!r} must be a number >= 0')
        if cls_weight == 0 and feat_weight == 0:
            raise ValueError('cls_weight and feat_weight are both 0: nothing '
                             'to distil')
        self.cls_weight = float(cls_weight)
        self.feat_weight = float(feat_weight)
        self._teacher: Optional[dict] = None
        self._model = None
        self._softmax = False

    # -- the run ------------------------------------------------------------
    def before_train(self, runner) -> None:
        model = unwrap_model(runner)
        if self.feat_weight > 0 and getattr(model, 'neck', None) is None:
            raise ValueError('feat_weight > 0 needs a model with a neck')
        if self._head(model) is None:
            raise ValueError('InplaceDistillHook needs a bbox_head or a '
                             'decode_head')
        self._model = model
        self._softmax = getattr(model, 'bbox_head', None) is None
        original = model.loss

        def loss(*args, **kwargs):
            return self._loss(original, *args, **kwargs)

        model.loss = loss  # an instance attribute: restored after training

    def after_train(self, runner) -> None:
        model = unwrap_model(runner)
        model.__dict__.pop('loss', None)
        self._teacher = None

    @staticmethod
    def _head(model):
        return getattr(model, 'bbox_head', None) or getattr(
            model, 'decode_head', None)

    def teacher_subnet(self, model) -> dict:
        """The largest subnet at the current input size and fixed
        choices."""
        teacher = extreme_subnet(model, 'max')
        for name, m in named_mutables(model).items():
            if m.mode == 'fixed' or name.startswith('data_preprocessor.'):
                teacher[name] = m.current_choice
        return teacher

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch=None) -> None:
        model = unwrap_model(runner)
        student = get_subnet(model)
        teacher = self.teacher_subnet(model)
        self._teacher = None
        if teacher == student or data_batch is None:
            return
        set_subnet(model, teacher)
        try:
            with torch.no_grad():
                data = model.data_preprocessor(data_batch, True)
                feats, outs = self._forward(model, data['inputs'])
        finally:
            set_subnet(model, student)
        self._teacher = dict(feats=feats, logits=outs)

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None) -> None:
        self._teacher = None

    def _forward(self, model, inputs):
        feats = model.extract_feat(inputs)
        logits = _logits(self._head(model)(feats))
        return [t.detach() for t in _levels(feats)], \
            [t.detach() for t in logits]

    # -- the loss -----------------------------------------------------------
    def _loss(self, original, *args, **kwargs):
        if self._teacher is None:
            return original(*args, **kwargs)
        model = self._model
        captured = {}

        def keep(name):

            def hook(module, inputs, output):
                captured[name] = output

            return hook

        handles = [self._head(model).register_forward_hook(keep('head'))]
        if self.feat_weight > 0:
            handles.append(model.neck.register_forward_hook(keep('neck')))
        try:
            losses = original(*args, **kwargs)
        finally:
            for h in handles:
                h.remove()
        if self.cls_weight > 0 and 'head' in captured:
            losses['loss_distill_cls'] = self.cls_weight * self._logit_loss(
                _logits(captured['head']), self._teacher['logits'])
        if self.feat_weight > 0 and 'neck' in captured:
            losses['loss_distill_feat'] = self.feat_weight * \
                self._feat_loss(_levels(captured['neck']),
                                self._teacher['feats'])
        return losses

    def _logit_loss(self, student: List[torch.Tensor],
                    teacher: List[torch.Tensor]) -> torch.Tensor:
        total = 0.0
        for s, t in zip(student, teacher, strict=True):
            if self._softmax:  # a segmentor's per-pixel classes
                total = total + F.kl_div(
                    F.log_softmax(s, 1),
                    F.log_softmax(t, 1),
                    reduction='sum',
                    log_target=True) / (
                        s.shape[0] * s.shape[2] * s.shape[3])
            else:  # a dense detector's sigmoid classifiers
                total = total + F.binary_cross_entropy_with_logits(
                    s, torch.sigmoid(t))
        return total / len(student)

    @staticmethod
    def _feat_loss(student: List[torch.Tensor],
                   teacher: List[torch.Tensor]) -> torch.Tensor:
        total = 0.0
        for s, t in zip(student, teacher, strict=True):
            c = min(s.shape[1], t.shape[1])
            total = total + F.mse_loss(s[:, :c], t[:, :c])
        return total / len(student)
