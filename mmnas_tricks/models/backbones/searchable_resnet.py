"""A ResNet of basic blocks with elastic depth per stage and elastic kernel
size per block."""
from typing import List, Optional, Sequence

import torch.nn as nn
from mmcv.cnn import build_conv_layer, build_norm_layer

from mmnas_tricks.registry import MODELS
from ..mutables import DepthChoice, Subnet
from .base import BaseSearchableBackbone


@MODELS.register_module()
class SearchableResNet(BaseSearchableBackbone):
    """ResNet of basic blocks (He et al., CVPR 2016) as a supernet: every
    stage a :class:`~mmnas_tricks.models.mutables.DepthChoice` (the first d
    blocks run, Once-for-All's elastic depth), every block a
    :class:`~mmnas_tricks.models.mutables.ResBasicBlockChoice` (kernel size,
    the smaller kernels the centre of the largest). With the first choices
    (default: depth 2 and kernel 3 everywhere) it is mmdet's ResNet-18 at
    ``base_channels`` (stem: 7x7 conv, stride 2, BN, ReLU, 3x3 max-pool;
    stage i: ``base_channels * 2**i`` channels, stride 1 then 2), and a
    trained ResNet-18's blocks load into it (``import_module``).

    The modules carry mmdet's ResNet names (``conv1``, ``bn1``, ``layer1``
    to ``layer4``, and in the blocks ``conv1``, ``bn1``, ``conv2``, ``bn2``,
    ``downsample``), so a trained mmdet ResNet-18 checkpoint loads into the
    first subnet by name (``InheritWeightsHook`` /
    :func:`~mmnas_tricks.models.inherit.inherit_plain`) and the exported static
    backbone has its state-dict keys. Mutable names: ``layer{i+1}`` (depth
    of stage i) and ``layer{i+1}.{j}`` (kernel of block j).

    Args:
        base_channels (int): Channels of the stem and of stage 0. Defaults
            to 64.
        depths (Sequence[Sequence[int]]): Depth choices per stage; the first
            is the default. Defaults to ``((2, 1, 3),) * 4``.
        kernel_sizes (Sequence[int]): Kernel choices of every block; the
            first is the default. Defaults to (3, 5).
        out_indices (Sequence[int]): Stages whose outputs are returned.
            Defaults to (1, 2, 3) (strides 8, 16, 32).
        frozen_stages (int): Freeze the stem and the first ``frozen_stages``
            stages (-1: nothing, 0: the stem). Defaults to -1.
        norm_cfg (dict): BatchNorm (the shared blocks slice it). Defaults to
            ``dict(type='BN')``.
        norm_eval (bool): Keep BN in eval mode while training. Defaults to
            False.
        fixed_subnet (dict, optional): Build the static network of this
            subnet (names relative to the backbone): no mutables, no unused
            blocks or kernel weights. Written by the export tool. Defaults
            to None.
        init_cfg (dict, optional): Initialisation. Defaults to None.

    Example:
        >>> backbone = SearchableResNet(base_channels=16)
        >>> [o.shape[1] for o in backbone(torch.rand(2, 3, 64, 64))]
        [32, 64, 128]
    """

    def __init__(self,
                 base_channels: int = 64,
                 depths: Sequence[Sequence[int]] = ((2, 1, 3), ) * 4,
                 kernel_sizes: Sequence[int] = (3, 5),
                 out_indices: Sequence[int] = (1, 2, 3),
                 frozen_stages: int = -1,
                 norm_cfg: dict = dict(type='BN'),
                 norm_eval: bool = False,
                 fixed_subnet: Optional[Subnet] = None,
                 init_cfg: Optional[dict] = None) -> None:
        depths = [list(d) for d in depths]
        super().__init__(
            len(depths), out_indices, frozen_stages, norm_eval, init_cfg)
        if any(not d or min(d) < 1 for d in depths):
            raise ValueError(f'every stage needs depth choices >= 1, got '
                             f'depths={depths}')
        self.conv1 = build_conv_layer(
            None, 3, base_channels, 7, stride=2, padding=3, bias=False)
        self.bn1 = build_norm_layer(norm_cfg, base_channels)[1]
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.out_channels = []
        in_c = base_channels
        for i, stage_depths in enumerate(depths):
            out_c = base_channels * 2**i
            blocks = [
                dict(
                    type='ResBasicBlockChoice',
                    in_channels=in_c if j == 0 else out_c,
                    out_channels=out_c,
                    stride=(1 if i == 0 else 2) if j == 0 else 1,
                    kernel_sizes=tuple(kernel_sizes),
                    norm_cfg=dict(norm_cfg)) for j in range(max(stage_depths))
            ]
            self.add_module(f'layer{i + 1}',
                            DepthChoice(blocks, depths=stage_depths))
            self.out_channels.append(out_c)
            in_c = out_c
        self.num_stages = len(depths)
        self.finish(fixed_subnet)

    # BaseSearchableBackbone's stem and stages, under mmdet's names
    @property
    def stem(self) -> nn.Sequential:
        return nn.Sequential(self.conv1, self.bn1, self.relu, self.maxpool)

    @property
    def stages(self) -> List[nn.Module]:
        return [getattr(self, f'layer{i + 1}') for i in range(self.num_stages)]
