"""A toy supernet and a mock runner for the trick hooks' tests."""
from types import SimpleNamespace

import torch
import torch.nn as nn
from mmengine.logging import MessageHub
from mmengine.model import BaseModel

from mmnas_tricks.models.mutables import OpChoice

CANDIDATES = dict(
    conv3x3=dict(type='ConvOp', kernel_size=3),
    conv1x1=dict(type='ConvOp', kernel_size=1),
    skip=dict(type='Identity'))


class Toy(nn.Module):

    def __init__(self, c=4):
        super().__init__()
        self.a = OpChoice(CANDIDATES, c, c)
        self.b = OpChoice(dict(CANDIDATES, sep=dict(type='SepConv')), c, c)
        self.down = OpChoice(CANDIDATES, c, 2 * c, stride=2)

    def forward(self, x):
        return self.down(self.b(self.a(x)))


def mock_runner(model, hooks=(), epochs=4, iters_per_epoch=5, name='t'):
    return SimpleNamespace(
        model=model,
        hooks=list(hooks),
        epoch=0,
        iter=0,
        max_epochs=epochs,
        max_iters=epochs * iters_per_epoch,
        message_hub=MessageHub.get_instance(f'trick_hooks_{name}'))


def walk(hook, runner, fn, epochs=4, iters_per_epoch=5):
    """Call before_train_iter at every iteration; collect fn(runner)."""
    seen = []
    for e in range(epochs):
        for i in range(iters_per_epoch):
            runner.epoch, runner.iter = e, e * iters_per_epoch + i
            hook.before_train_iter(runner, i)
            seen.append(fn(runner))
    return seen


def scalar(runner, key):
    return runner.message_hub.get_scalar(key).current()


class LossToy(BaseModel):
    """:class:`Toy` behind mmengine's model interface (a batch
    ``dict(inputs=..., data_samples=targets)``, ``mode='loss'``): the loss
    is the squared error of the pooled output (after a BatchNorm) to the
    targets. For the tricks that differentiate a batch's loss."""

    def __init__(self, c=4):
        super().__init__()
        self.net = Toy(c)
        self.bn = nn.BatchNorm2d(2 * c)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.bn(self.net(inputs))
        if mode == 'loss':
            return dict(loss=((out.mean(dim=(2, 3)) - data_samples)**2).mean())
        return out


def toy_batch(seed=0, n=4, c=4):
    gen = torch.Generator().manual_seed(seed)
    return dict(
        inputs=torch.randn(n, c, 8, 8, generator=gen),
        data_samples=torch.randn(n, 2 * c, generator=gen))
