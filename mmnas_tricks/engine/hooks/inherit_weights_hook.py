"""Start a supernet from a plain (model-zoo) checkpoint given as
``load_from``."""
import os.path as osp
from typing import Optional, Union

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log

from mmnas_tricks.models.channel_sort import sort_plain_checkpoint
from mmnas_tricks.models.inherit import (inherit_plain, report_lines,
                                         strip_module_prefix)
from mmnas_tricks.registry import HOOKS
from mmnas_tricks.utils.io import dump_json_atomic
from .utils import unwrap_model


@HOOKS.register_module()
class InheritWeightsHook(Hook):
    """Turn a plain checkpoint given as ``load_from`` (e.g. an mmdet model
    zoo FCOS) into the supernet's weights while mmengine loads it: each
    plain weight lands in the plain subnet's candidate and, in mutables
    with separate candidates, in every candidate of the same op type and
    shape (a smaller kernel takes the centre); see
    :func:`mmnas_tricks.models.inherit.inherit_plain`. The report (what
    mapped, what was left at init and why, what was unused) is logged and
    written to ``<work_dir>/inherit_report.json``.

    A checkpoint whose keys are the supernet's own (``--resume``, or a
    supernet checkpoint as ``load_from``) is left alone.

    Args:
        subnet (str | dict): The subnet that is the plain architecture:
            ``'first'`` (every first choice; the plain model in this
            package's searchable parts), a subnet file or a dict. Defaults
            to ``'first'``.
        spread (bool): Seed the other candidates too. Defaults to True.
        preserve_function (bool): Zero what reads beyond the inherited
            weights and start added blocks as the identity, so that every
            subnet that only grows the plain network (wider, deeper, larger
            kernels) starts as the plain network
            (:func:`~mmnas_tricks.models.inherit.inherit_plain`). Defaults
            to False.
        sort_channels (bool): Before inheriting, sort every channel space
            of the plain checkpoint by importance, most important first,
            without changing its function
            (:func:`~mmnas_tricks.models.channel_sort.sort_plain_checkpoint`,
            Once-for-All's channel re-organisation): a narrower width, which
            takes the first channels, then takes the ones that matter most.
            FCOS or Semantic FPN with a ResNet of basic blocks only.
            Defaults to False.

    Example:
        >>> load_from = 'fcos_r50-caffe_fpn_gn-head_1x_coco.pth'
        >>> custom_hooks = [dict(type='mmnas_tricks.InheritWeightsHook')]
    """

    priority = 'VERY_HIGH'
    search_only = True  # dropped from exported configs

    def __init__(self,
                 subnet: Union[str, dict] = 'first',
                 spread: bool = True,
                 preserve_function: bool = False,
                 sort_channels: bool = False) -> None:
        self.subnet = subnet
        self.spread = spread
        self.preserve_function = preserve_function
        self.sort_channels = sort_channels
        self.report: Optional[dict] = None

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = strip_module_prefix(checkpoint.get('state_dict', checkpoint))
        model = unwrap_model(runner)
        if set(state) == set(model.state_dict()):
            return  # the supernet's own checkpoint
        sorted_spaces = None
        if self.sort_channels:
            orders = sort_plain_checkpoint(state, model)
            sorted_spaces = sum(o != sorted(o) for o in orders.values())
            print_log(
                f'channel sorting: {sorted_spaces} of {len(orders)} channel '
                'spaces of the plain checkpoint reordered by importance',
                logger='current')
        self.report = inherit_plain(model, state, self.subnet, self.spread,
                                    self.preserve_function)
        if sorted_spaces is not None:
            self.report['sorted_channel_spaces'] = sorted_spaces
        for line in report_lines(self.report):
            print_log(line, logger='current')
        if is_main_process():
            dump_json_atomic(self.report,
                             osp.join(runner.work_dir, 'inherit_report.json'))
        # what mmengine loads next: the supernet as it is now
        new = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if 'state_dict' in checkpoint:
            checkpoint['state_dict'] = new
        else:
            checkpoint.clear()
            checkpoint.update(new)
