"""A toy supernet and a mock runner for the trick hooks' tests."""
from types import SimpleNamespace

import torch.nn as nn
from mmengine.logging import MessageHub

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
