"""Choose one of N candidate operations."""
import copy
from typing import Dict, Optional

import torch.nn as nn
from mmengine.registry import DefaultScope

from mmnas_tricks.models.ops import Identity
from mmnas_tricks.registry import MODELS
from .base import BaseMutable


@MODELS.register_module()
class OpChoice(BaseMutable):
    """One of N candidate ops, each built from a config with the in/out
    channels and the stride injected (and ``norm_cfg`` / ``act_cfg`` unless
    the candidate sets its own). The choices are the candidates' names.

    Modes (see :data:`~mmnas_tricks.models.mutables.base.MODES`): ``fixed``
    and ``sampled`` run only the current candidate; ``differentiable`` returns
    ``sum_i softmax(alpha)_i * op_i(x)`` (DARTS, Liu et al., ICLR 2019);
    ``all_on`` returns ``sum_i m_i * op_i(x)`` with per-example masks ``m``
    that drop each op with ``drop_prob`` and keep at least one (path dropout,
    Bender et al., ICML 2018); no rescaling.

    Candidates are built in the ``mmnas_tricks`` scope even inside an mmdet
    or mmseg model: unprefixed types are this package's ops (or mmengine's),
    mmdet's are named ``'mmdet.X'``.

    Args:
        candidates (dict): Candidate name -> op config, e.g.
            ``dict(conv3x3=dict(type='mmnas_tricks.ConvOp'),
            skip=dict(type='mmnas_tricks.Identity'))``.
        in_channels (int): Input channels of every candidate.
        out_channels (int): Output channels of every candidate.
        stride (int): Stride of every candidate. Defaults to 1.
        norm_cfg (dict, optional): Default norm of the candidates.
            Defaults to None (each op's own default).
        act_cfg (dict, optional): Default activation of the candidates.
            Defaults to None (each op's own default).
        init_cfg (dict, optional): Initialisation. Defaults to None.

    Example:
        >>> choice = OpChoice(
        ...     dict(conv=dict(type='mmnas_tricks.ConvOp'),
        ...          skip=dict(type='mmnas_tricks.Identity')), 8, 8)
        >>> choice.current_choice = 'skip'
    """

    def __init__(self,
                 candidates: Dict[str, dict],
                 in_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if not isinstance(candidates, dict) or not candidates:
            raise ValueError('OpChoice candidates must be a non-empty dict '
                             f'name -> op config, got {candidates!r}')
        bad = [k for k in candidates if not isinstance(k, str)]
        if bad:
            raise ValueError(
                f'OpChoice candidate names must be str, got {bad}')
        super().__init__(list(candidates), init_cfg)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride
        self.candidates = nn.ModuleDict()
        self._candidate_cfgs = {}
        for name, cfg in candidates.items():
            cfg = copy.deepcopy(dict(cfg))
            cfg.update(
                in_channels=in_channels,
                out_channels=out_channels,
                stride=stride)
            if norm_cfg is not None:
                cfg.setdefault('norm_cfg', norm_cfg)
            if act_cfg is not None:
                cfg.setdefault('act_cfg', act_cfg)
            self._candidate_cfgs[name] = cfg
            # our scope, also inside an mmdet / mmseg model: unprefixed
            # types are ours, mmdet's are written 'mmdet.X'
            with DefaultScope.overwrite_default_scope('mmnas_tricks'):
                self.candidates[name] = MODELS.build(cfg)

    def export_module(self) -> nn.Module:
        return self.candidates[self.current_choice]

    def chosen_is_skip(self) -> bool:
        if self.mode not in ('fixed', 'sampled'):
            return False
        op = self.candidates[self.current_choice]
        return isinstance(op, nn.Identity) or (isinstance(op, Identity)
                                               and op.proj is None)

    def export_cfg(self) -> dict:
        cfg = copy.deepcopy(self._candidate_cfgs[self.current_choice])
        type_ = cfg['type']
        if isinstance(type_, str) and '.' not in type_:
            cfg['type'] = f'mmnas_tricks.{type_}'  # resolvable from any scope
        return cfg

    def forward(self, x):
        return self.forward_candidates(x)
