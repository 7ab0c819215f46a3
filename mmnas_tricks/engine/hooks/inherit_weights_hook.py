"""Start a supernet from a plain (model-zoo) checkpoint given as
``load_from``."""
import os.path as osp
from typing import Optional, Union

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log

from mmnas_tricks.models.inherit import inherit_plain, report_lines
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

    Example:
        >>> load_from = 'fcos_r50-caffe_fpn_gn-head_1x_coco.pth'
        >>> custom_hooks = [dict(type='mmnas_tricks.InheritWeightsHook')]
    """

    priority = 'VERY_HIGH'
    search_only = True  # dropped from exported configs

    def __init__(self,
                 subnet: Union[str, dict] = 'first',
                 spread: bool = True,
                 preserve_function: bool = False) -> None:
        self.subnet = subnet
        self.spread = spread
        self.preserve_function = preserve_function
        self.report: Optional[dict] = None

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get('state_dict', checkpoint)
        model = unwrap_model(runner)
        own = set(model.state_dict())
        keys = {
            k[len('module.'):] if k.startswith('module.') else k
            for k in state
        }
        if keys == own:
            return  # the supernet's own checkpoint
        self.report = inherit_plain(model, state, self.subnet, self.spread,
                                    self.preserve_function)
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
