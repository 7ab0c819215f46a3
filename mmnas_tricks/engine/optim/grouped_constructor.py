"""An optimizer constructor whose parameter groups cost one group per set
of options instead of one per tensor."""
from mmengine.optim import DefaultOptimWrapperConstructor

from mmnas_tricks.registry import OPTIM_WRAPPER_CONSTRUCTORS


def merge_param_groups(optimizer) -> int:
    """Merge the parameter groups of ``optimizer`` that have the same
    options (lr, weight decay, momentum, ...) into one plain-dict group
    each, in order of first appearance; returns the number of groups.

    mmengine's default constructor with a ``paramwise_cfg`` (every mmdet
    detection config: ``bias_lr_mult``, ``norm_decay_mult``) makes one group
    per parameter tensor, stored as ``ConfigDict`` (a slow ``__getitem__``),
    and the optimizer pays Python overhead per group at every step. A
    supernet holds the tensors of every candidate: on digits (FCOS, 2 CPU
    cores) that made the SGD step a third of the supernet's overhead over
    the static subnet. Updates are unchanged (the options of a parameter are
    the same); only the group structure of the optimizer's state dict
    differs, so a checkpoint's optimizer state saved with per-tensor groups
    does not load into merged ones. Call before any step (the state is
    keyed by parameter and kept).
    """
    merged = {}
    for group in optimizer.param_groups:
        options = {k: v for k, v in group.items() if k != 'params'}
        key = repr(sorted(options.items()))
        if key not in merged:
            merged[key] = dict(options, params=[])
        merged[key]['params'].extend(group['params'])
    optimizer.param_groups = list(merged.values())
    return len(optimizer.param_groups)


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class GroupedOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """mmengine's ``DefaultOptimWrapperConstructor`` (same ``paramwise_cfg``
    semantics), then :func:`merge_param_groups`: one group per distinct set
    of options. The digits recipe uses it
    (``configs/_base_/schedules/digits_cosine.py``), so baselines,
    supernets and exported subnets train with the same groups.

    Example:
        >>> optim_wrapper = dict(
        ...     constructor='mmnas_tricks.GroupedOptimWrapperConstructor',
        ...     optimizer=dict(type='SGD', lr=0.01, momentum=0.9),
        ...     paramwise_cfg=dict(bias_lr_mult=2., bias_decay_mult=0.))
    """

    def __call__(self, model):
        wrapper = super().__call__(model)
        merge_param_groups(wrapper.optimizer)
        return wrapper
