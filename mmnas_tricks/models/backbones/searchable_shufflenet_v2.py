"""The DetNAS backbone supernet: ShuffleNetV2 with a choice per block."""
from typing import Optional, Sequence

import torch.nn as nn
from mmcv.cnn import ConvModule

from mmnas_tricks.registry import MODELS
from ..contract import searchable
from ..mutables import OpChoice, Subnet
from .base import BaseSearchableBackbone

#: The four candidates of a DetNAS / SPOS choice block.
DETNAS_CANDIDATES = dict(
    shuffle_3x3=dict(type='ShuffleBlock', kernel_size=3),
    shuffle_5x5=dict(type='ShuffleBlock', kernel_size=5),
    shuffle_7x7=dict(type='ShuffleBlock', kernel_size=7),
    xception_3x3=dict(type='ShuffleBlock', xception=True))


@MODELS.register_module()
@searchable
class SearchableShuffleNetV2(BaseSearchableBackbone):
    """DetNAS backbone supernet (Chen et al., NeurIPS 2019; SPOS, Guo et al.,
    ECCV 2020): a ShuffleNetV2 whose every block is an
    :class:`~mmnas_tricks.models.mutables.OpChoice` of shuffle 3x3 / 5x5 /
    7x7 / xception 3x3; the first block of each stage has stride 2.

    Mutable names: ``stages.{i}.{j}`` (block j of stage i). The default is
    the 300M-FLOPs DetNAS space: blocks 4-4-8-4 (4^20 subnets), channels
    64-160-320-640 after a 16-channel stem.

    Args:
        stage_blocks (Sequence[int]): Blocks per stage. Defaults to
            (4, 4, 8, 4).
        stage_channels (Sequence[int]): Output channels per stage (even).
            Defaults to (64, 160, 320, 640).
        stem_channels (int): Channels of the stem conv. Defaults to 16.
        widen_factor (float): Multiplier of the stage channels (rounded to
            even numbers). Defaults to 1.0.
        candidates (dict, optional): Candidate name -> block config.
            Defaults to None (:data:`DETNAS_CANDIDATES`).
        out_indices (Sequence[int]): Stages returned. Defaults to
            (0, 1, 2, 3) (strides 4, 8, 16, 32).
        frozen_stages (int): Freeze the stem and the first ``frozen_stages``
            stages (-1: nothing). Defaults to -1.
        norm_cfg (dict): Norm layer. Defaults to ``dict(type='BN')``.
        act_cfg (dict): Activation. Defaults to ``dict(type='ReLU')``.
        norm_eval (bool): Keep BN in eval mode while training. Defaults to
            False.
        fixed_subnet (dict, optional): Build the static network of this
            subnet (names relative to the backbone). Defaults to None.
        init_cfg (dict, optional): Initialisation. Defaults to None.

    Example:
        >>> backbone = SearchableShuffleNetV2(
        ...     stage_channels=(32, 64, 128, 256))
    """

    def __init__(self,
                 stage_blocks: Sequence[int] = (4, 4, 8, 4),
                 stage_channels: Sequence[int] = (64, 160, 320, 640),
                 stem_channels: int = 16,
                 widen_factor: float = 1.0,
                 candidates: Optional[dict] = None,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 frozen_stages: int = -1,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU'),
                 norm_eval: bool = False,
                 fixed_subnet: Optional[Subnet] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if len(stage_blocks) != len(stage_channels):
            raise ValueError(f'stage_blocks {list(stage_blocks)} and '
                             f'stage_channels {list(stage_channels)} differ '
                             'in length')
        super().__init__(
            len(stage_blocks), out_indices, frozen_stages, norm_eval, init_cfg)
        candidates = DETNAS_CANDIDATES if candidates is None else candidates
        # a stride-2 conv only, as SPOS / DetNAS (no max pooling): the
        # stages then end at strides 4, 8, 16, 32
        self.stem = nn.Sequential(
            ConvModule(
                3,
                stem_channels,
                3,
                stride=2,
                padding=1,
                norm_cfg=norm_cfg,
                act_cfg=act_cfg))
        self.stages = nn.ModuleList()
        self.out_channels = []
        in_c = stem_channels
        for num_blocks, channels in zip(stage_blocks, stage_channels):
            out_c = 2 * max(1, int(round(channels * widen_factor / 2)))
            stage = nn.Sequential(*[
                OpChoice(
                    candidates,
                    in_c if j == 0 else out_c,
                    out_c,
                    stride=2 if j == 0 else 1,
                    norm_cfg=norm_cfg,
                    act_cfg=act_cfg) for j in range(num_blocks)
            ])
            self.stages.append(stage)
            self.out_channels.append(out_c)
            in_c = out_c
        self.finish(fixed_subnet)
