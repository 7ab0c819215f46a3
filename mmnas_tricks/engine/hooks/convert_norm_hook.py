"""Replace BatchNorm by GroupNorm, Ghost BN or SyncBN, by config."""
from typing import Optional, Sequence, Union

from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log

from mmnas_tricks.models.ops import NORM_TARGETS, convert_batchnorms
from mmnas_tricks.registry import HOOKS
from .utils import unwrap_model


@HOOKS.register_module()
class ConvertNormHook(Hook):
    """Replace the BatchNorms of the model (or of some of its parts) by a
    normalisation that suits small detection / segmentation batches and
    sampled supernets (docs/tricks.md, T3.3-T3.5):

    - ``'GN'``: GroupNorm, batch independent, no running statistics, no
      calibration needed (NAS-FCOS's searched head; Wu & He, ECCV 2018);
    - ``'GhostBN'``: BatchNorm over virtual batches of
      ``virtual_batch_size`` (Hoffer et al., NeurIPS 2017);
    - ``'SyncBN'``: statistics over the global batch of a distributed run
      (``torch.nn.SyncBatchNorm``; needs GPUs).

    The conversion happens in ``before_run``, i.e. before the weights are
    initialised and before ``--resume`` / ``load_from`` loads a checkpoint,
    in training, validation and testing alike, so checkpoints of the
    converted model load back. Each new norm takes the old one's weight and
    bias objects (GroupNorm's affine parameters have the BatchNorm's shape):
    the optimizer, already built, and the DDP wrapper, already built, hold
    exactly the new model's parameters, and a BatchNorm checkpoint (e.g.
    inherited weights) still maps weight to weight. Ghost BN / SyncBN keep
    the running statistics too. The converted module paths are logged.

    Args:
        to (str): ``'GN'``, ``'GhostBN'`` or ``'SyncBN'``.
        include (str | Sequence[str], optional): Module paths (``'neck'``
            covers everything under it) or fnmatch patterns. Defaults to
            None (the whole model).
        num_groups (int): GroupNorm groups, a divisor of every converted
            norm's channels. Defaults to 32 (mmdet's GN heads).
        virtual_batch_size (int): Ghost BN's virtual batch. Defaults to 32.

    Example:
        >>> custom_hooks = [dict(type='mmnas_tricks.ConvertNormHook',
        ...                      to='GN', num_groups=16,
        ...                      include=['neck', 'bbox_head'])]
    """

    priority = 'VERY_HIGH'  # before any hook that touches the modules

    def __init__(self,
                 to: str = 'GN',
                 include: Optional[Union[str, Sequence[str]]] = None,
                 num_groups: int = 32,
                 virtual_batch_size: int = 32) -> None:
        if to not in NORM_TARGETS:
            raise ValueError(f'to={to!r} is not one of {list(NORM_TARGETS)}')
        if num_groups < 1 or virtual_batch_size < 1:
            raise ValueError(f'num_groups={num_groups} and virtual_batch_size'
                             f'={virtual_batch_size} must be >= 1')
        self.to = to
        self.include = include
        self.num_groups = int(num_groups)
        self.virtual_batch_size = int(virtual_batch_size)

    def before_run(self, runner) -> None:
        model = unwrap_model(runner)
        if self.to == 'SyncBN' and get_world_size() > 1:
            device = next(model.parameters()).device
            if device.type == 'cpu':
                raise ValueError(
                    'ConvertNormHook(to="SyncBN") needs GPUs: torch\'s '
                    'SyncBatchNorm has no CPU kernel; on CPU use to="GN" '
                    'or to="GhostBN"')
        names = convert_batchnorms(model, self.to, self.include,
                                   self.num_groups, self.virtual_batch_size)
        if names:
            print_log(
                f'ConvertNormHook: {len(names)} BatchNorm(s) -> '
                f'{self.to}: {names}',
                logger='current')
