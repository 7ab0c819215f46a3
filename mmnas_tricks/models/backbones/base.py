"""What the searchable backbones share: stem + stages, outputs, freezing."""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from ..mutables import Subnet, fix_in_place


class BaseSearchableBackbone(BaseModule):
    """A backbone of the stem (:meth:`stem_layers`, default ``self.stem``)
    then ``self.stages`` (a ``ModuleList``)
    returning the outputs of the stages in ``out_indices``, with mmdet's
    ``frozen_stages`` and ``norm_eval``. Subclasses build the stem and the
    stages, then call :meth:`finish`.

    Args:
        num_stages (int): Number of stages (to validate the arguments).
        out_indices (Sequence[int]): Stages whose outputs are returned.
        frozen_stages (int): Freeze the stem and the first ``frozen_stages``
            stages (-1: nothing, 0: the stem only).
        norm_eval (bool): Keep BatchNorm in eval mode while training.
        init_cfg (dict, optional): Initialisation.
    """

    def __init__(self, num_stages: int, out_indices: Sequence[int],
                 frozen_stages: int, norm_eval: bool,
                 init_cfg: Optional[dict]) -> None:
        super().__init__(init_cfg)
        bad = [i for i in out_indices if not 0 <= i < num_stages]
        if bad or not out_indices:
            raise ValueError(f'out_indices {list(out_indices)} must be stage '
                             f'indices in 0..{num_stages - 1}')
        if not -1 <= frozen_stages <= num_stages:
            raise ValueError(f'frozen_stages={frozen_stages} is not in '
                             f'[-1, {num_stages}]')
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval

    def finish(self, fixed_subnet: Optional[Subnet]) -> None:
        """Replace the mutables by the static choices of ``fixed_subnet``
        (the exported form), then freeze."""
        if fixed_subnet is not None:
            fix_in_place(self, fixed_subnet)
        self._freeze_stages()

    def stem_layers(self) -> List[nn.Module]:
        """The modules of the stem, in order (default: ``self.stem``)."""
        return [self.stem]

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        for layer in self.stem_layers():
            x = layer(x)
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def _freeze_stages(self) -> None:
        frozen = (self.stem_layers() if self.frozen_stages >= 0 else
                  []) + list(self.stages[:max(self.frozen_stages, 0)])
        for module in frozen:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> nn.Module:
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self
