"""A training killed at a chosen iteration, for resume checks."""
from mmengine.hooks import Hook


class Killed(Exception):
    """Raised by :class:`KillAt`."""


class KillAt(Hook):
    """Raises :class:`Killed` after training iteration ``at`` (1-based): a
    kill at a known point."""

    def __init__(self, at: int):
        self.at = at

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None):
        if runner.iter + 1 == self.at:
            raise Killed()
