"""A ResNet of bottleneck blocks (ResNet-50 / 101 / 152) with elastic
depth, output width and bottleneck width per stage and an elastic kernel per
block; its first subnet is mmdet's ResNet of that depth."""
import math
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
from mmcv.cnn import build_conv_layer, build_norm_layer

from mmnas_tricks.registry import MODELS
from ..contract import searchable
from ..mutables import (ChannelChoice, DepthChoice, ResBottleneckChoice,
                        Subnet, elastic_conv, elastic_norm)
from .base import BaseSearchableBackbone
from .searchable_resnet import SearchableResNet

#: mmdet's ResNet depths of bottleneck blocks: blocks per stage
BOTTLENECK_ARCHS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
EXPANSION = 4


@MODELS.register_module()
@searchable
class SearchableBottleneckResNet(BaseSearchableBackbone):
    """mmdet's ResNet of bottleneck blocks (He et al., CVPR 2016; depth 50,
    101 or 152, ``'pytorch'`` or ``'caffe'`` style) as a supernet: per stage
    a :class:`~mmnas_tricks.models.mutables.DepthChoice` (the first d
    blocks run), per block a
    :class:`~mmnas_tricks.models.mutables.ResBottleneckChoice` (the kernel
    of its middle conv), and with ``width_ratios`` / ``mid_ratios`` a
    :class:`~mmnas_tricks.models.mutables.ChannelChoice` per stage for its
    output width (``widths.{i}``, of ``4 * base_channels * 2**i``
    channels; the stem's is ``widths.stem``) and for its bottleneck width
    (``mid_widths.{i}``, of ``base_channels * 2**i``). Every choice shares
    one set of weights (Once-for-All); a smaller width uses the first
    channels. With the first choices (default: the depth's blocks, kernel
    3, ratio 1) it is mmdet's ``ResNet(depth=...)``: the modules carry its
    names (``conv1``, ``bn1``, ``layer1`` ... ``layer4``; in a block
    ``conv1``-``conv3``, ``bn1``-``bn3``, ``downsample``), a model-zoo
    checkpoint inherits into the first subnet
    (:func:`~mmnas_tricks.models.inherit.inherit_plain`: every key used) and
    the exported first subnet loads it strictly, with equal outputs. An
    exported subnet whose choices mmdet's ``ResNet`` can build (the depth's
    blocks, kernel 3, every stage's bottleneck a quarter of its output and
    the widths one ratio of ``base_channels``) is exported as that plain
    ``ResNet`` (:meth:`to_plain_config`); any other as this class with its
    ``fixed_subnet`` (the same state-dict keys).

    Args:
        depth (int): 50, 101 or 152: the blocks per stage of mmdet's ResNet
            (:data:`BOTTLENECK_ARCHS`). Defaults to 50.
        base_channels (int): Bottleneck width of stage 0 (mmdet's
            ``base_channels``). Defaults to 64.
        stem_channels (int, optional): Channels of the stem. Defaults to
            None (``base_channels``).
        style (str): ``'pytorch'`` (stride on the 3x3 conv) or
            ``'caffe'`` (on the first 1x1). Defaults to ``'pytorch'``.
        depths (Sequence[Sequence[int]], optional): Depth choices per
            stage, the depth's count first. Defaults to None (the depth's
            count only).
        kernel_sizes (Sequence[int]): Kernel choices of every block's
            middle conv, 3 first. Defaults to (3, ).
        width_ratios (Sequence[float], optional): Output widths of every
            stage (and the stem) as ratios of the default, 1.0 first.
            Defaults to None (fixed).
        mid_ratios (Sequence[float], optional): Bottleneck widths of every
            stage as ratios of the default, 1.0 first. Defaults to None
            (fixed).
        out_indices (Sequence[int]): Stages returned. Defaults to
            (0, 1, 2, 3).
        frozen_stages (int): Freeze the stem and the first
            ``frozen_stages`` stages (-1: nothing). Defaults to -1.
        norm_cfg (dict): BatchNorm. Defaults to ``dict(type='BN')``.
        norm_eval (bool): Keep BN in eval mode while training. Defaults to
            False.
        zero_init_residual (bool): Zero every block's last BN (mmdet's
            default). Defaults to True.
        fixed_subnet (dict, optional): Build the static network of this
            subnet (written by the export). Defaults to None.
        init_cfg (dict, optional): Initialisation. Defaults to None:
            mmdet's (Kaiming-normal convs at fan-out, BN weights 1); a
            ``Pretrained`` one as mmdet's configs give it loads the zoo
            checkpoint through :meth:`init_weights` when it fits the first
            subnet.

    Example:
        >>> backbone = SearchableBottleneckResNet(base_channels=8)
        >>> [o.shape[1] for o in backbone(torch.rand(1, 3, 64, 64))]
        [32, 64, 128, 256]
    """

    def __init__(self,
                 depth: int = 50,
                 base_channels: int = 64,
                 stem_channels: Optional[int] = None,
                 style: str = 'pytorch',
                 depths: Optional[Sequence[Sequence[int]]] = None,
                 kernel_sizes: Sequence[int] = (3, ),
                 width_ratios: Optional[Sequence[float]] = None,
                 mid_ratios: Optional[Sequence[float]] = None,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 frozen_stages: int = -1,
                 norm_cfg: dict = dict(type='BN'),
                 norm_eval: bool = False,
                 zero_init_residual: bool = True,
                 fixed_subnet: Optional[Subnet] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if depth not in BOTTLENECK_ARCHS:
            raise ValueError(f'depth {depth} is not among the bottleneck '
                             f'ResNets {sorted(BOTTLENECK_ARCHS)}')
        arch = BOTTLENECK_ARCHS[depth]
        if depths is None:
            depths = [(n, ) for n in arch]
        depths = [list(d) for d in depths]
        if len(depths) != len(arch) or any(
                not d or d[0] != n or min(d) < 1 or max(d) > n
                for d, n in zip(depths, arch)):
            raise ValueError(f'depths {depths}: one list per stage of '
                             f'ResNet-{depth} ({list(arch)} blocks), the '
                             'full count first, each choice in 1..it')
        self._pretrained = None
        if init_cfg is not None and init_cfg.get('type') == 'Pretrained':
            self._pretrained, init_cfg = dict(init_cfg), None
        self._mmdet_init = init_cfg is None
        if init_cfg is None:  # mmdet's ResNet, pretrained=None
            init_cfg = [
                dict(type='Kaiming', layer='Conv2d'),
                dict(
                    type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])
            ]
        super().__init__(
            len(depths), out_indices, frozen_stages, norm_eval, init_cfg)
        for name, ratios in (('width_ratios', width_ratios), ('mid_ratios',
                                                              mid_ratios)):
            if ratios is not None and (not ratios or ratios[0] != 1.0):
                raise ValueError(f'{name} {list(ratios)} must start with 1.0 '
                                 '(the plain ResNet)')
        if kernel_sizes[0] != 3:
            raise ValueError(f'kernel_sizes {list(kernel_sizes)} must start '
                             "with 3 (mmdet's ResNet)")
        self.depth = depth
        self.style = style
        self.base_channels = base_channels
        self.zero_init_residual = zero_init_residual
        self.norm_cfg = dict(norm_cfg)
        stem_c = stem_channels or base_channels
        self.stem_channels = stem_c
        choose = SearchableResNet._width_choices
        stem_widths = choose(stem_c, width_ratios)
        outs = [
            choose(base_channels * 2**i * EXPANSION, width_ratios)
            for i in range(len(depths))
        ]
        mids = [
            choose(base_channels * 2**i, mid_ratios)
            for i in range(len(depths))
        ]
        self.conv1 = build_conv_layer(
            None, 3, max(stem_widths), 7, stride=2, padding=3, bias=False)
        self.bn1 = build_norm_layer(norm_cfg, max(stem_widths))[1]
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.out_channels = []
        in_c = max(stem_widths)
        for i, stage_depths in enumerate(depths):
            out_c, mid_c = max(outs[i]), max(mids[i])
            blocks = [
                dict(
                    type='ResBottleneckChoice',
                    in_channels=in_c if j == 0 else out_c,
                    mid_channels=mid_c,
                    out_channels=out_c,
                    stride=(1 if i == 0 else 2) if j == 0 else 1,
                    kernel_sizes=tuple(kernel_sizes),
                    style=style,
                    norm_cfg=dict(norm_cfg)) for j in range(max(stage_depths))
            ]
            self.add_module(f'layer{i + 1}',
                            DepthChoice(blocks, depths=stage_depths))
            self.out_channels.append(out_c)
            in_c = out_c
        self.num_stages = len(depths)
        self.out_width_choices = None
        self._make_widths(stem_widths, outs, mids, width_ratios is not None,
                          mid_ratios is not None)
        self.finish(fixed_subnet)
        if fixed_subnet is not None:
            self.out_width_choices = None

    def _make_widths(self, stem: List[int], outs: List[List[int]],
                     mids: List[List[int]], elastic_out: bool,
                     elastic_mid: bool) -> None:
        """The stage and stem widths (``widths.*``) and the bottleneck
        widths (``mid_widths.*``), driving the blocks."""
        if elastic_out:
            self.widths = nn.ModuleDict(
                dict(
                    stem=ChannelChoice(stem),
                    **{str(i): ChannelChoice(c)
                       for i, c in enumerate(outs)}))
            stem_width = self.widths['stem']
            self.conv1 = elastic_conv(self.conv1)
            self.conv1.set_width_sources(out_width=stem_width)
            self.bn1 = elastic_norm(self.bn1)
            self.bn1.set_width_sources(out_width=stem_width)
            previous = stem_width
            for i, stage in enumerate(self.stages):
                width = self.widths[str(i)]
                for j, block in enumerate(stage.blocks):
                    block.set_width_sources(
                        in_width=previous if j == 0 else width,
                        out_width=width)
                previous = width
            self.out_width_choices = [
                self.widths[str(i)] for i in self.out_indices
            ]
        if elastic_mid:
            self.mid_widths = nn.ModuleDict(
                {str(i): ChannelChoice(c)
                 for i, c in enumerate(mids)})
            for i, stage in enumerate(self.stages):
                for block in stage.blocks:
                    block.set_mid_width(self.mid_widths[str(i)])
        for stage in self.stages:  # at the default widths' fan-out
            for block in stage.blocks:
                block.kaiming_init()

    def init_weights(self) -> None:
        """``init_cfg``; with the default one, also what mmdet's ResNet does
        beyond it: the blocks' shared weights (plain tensors, which
        ``init_cfg`` misses) Kaiming-normal at the default kernel's and
        widths' fan-out, an elastic stem at the default width's, and with
        ``zero_init_residual`` every block's last BN zeroed. A
        ``Pretrained`` ``init_cfg`` (mmdet's zoo configs) then loads its
        checkpoint into the first subnet
        (:func:`~mmnas_tricks.models.inherit.inherit_plain`)."""
        super().init_weights()
        if self._mmdet_init:
            from mmnas_tricks.models.ops import ResBottleneck
            if getattr(self.conv1, 'out_width', None) is not None:
                fan_out = self.conv1.out_width.choices[0] * 49
                with torch.no_grad():
                    self.conv1.weight.normal_(0, math.sqrt(2.0 / fan_out))
            for m in self.modules():
                if isinstance(m, ResBottleneckChoice):
                    m.kaiming_init()
                if self.zero_init_residual and isinstance(
                        m, (ResBottleneckChoice, ResBottleneck)):
                    nn.init.zeros_(m.bn3.weight)
                    nn.init.zeros_(m.bn3.bias)
        if self._pretrained is not None:
            self.load_pretrained(self._pretrained['checkpoint'],
                                 self._pretrained.get('prefix'))

    def load_pretrained(self,
                        checkpoint: str,
                        prefix: Optional[str] = None) -> dict:
        """Load an mmdet / torchvision ResNet checkpoint (its ``backbone.``
        keys with ``prefix='backbone.'``) into the first subnet; returns
        :func:`~mmnas_tricks.models.inherit.inherit_plain`'s report."""
        from mmengine.runner import CheckpointLoader

        from mmnas_tricks.models.inherit import inherit_plain
        from mmnas_tricks.utils import explain_unsafe_checkpoint
        with explain_unsafe_checkpoint():
            state = CheckpointLoader.load_checkpoint(
                checkpoint, map_location='cpu')
        state = state.get('state_dict', state)
        if prefix:
            state = {
                k[len(prefix):]: v
                for k, v in state.items() if k.startswith(prefix)
            }
        state = {k: v for k, v in state.items() if not k.startswith('fc.')}
        return inherit_plain(self, state)

    @classmethod
    def to_plain_config(cls, cfg, part: dict, own: dict) -> None:
        """Rewrite the exported ``part`` (its ``fixed_subnet`` is ``own``) as
        mmdet's plain ``ResNet`` where that builds the same network (the
        same modules and state-dict keys): the depth's full blocks, kernel
        3, every stage's bottleneck a quarter of its output, and the stem
        and stage widths those of one ``base_channels``. Otherwise left as
        is."""
        depth = part.get('depth', 50)
        arch = BOTTLENECK_ARCHS[depth]
        base = part.get('base_channels', 64)
        stem = part.get('stem_channels') or base
        ratios = part.get('width_ratios')
        mids = part.get('mid_ratios')

        def width(key, default):
            return int(own.get(key, default))

        n = len(arch)
        depths = [int(own.get(f'layer{i + 1}', arch[i])) for i in range(n)]
        kernels = [
            int(v) for k, v in own.items()
            if k.startswith('layer') and k.count('.') == 1
        ]
        if depths != list(arch) or any(k != 3 for k in kernels):
            return
        outs = [
            width(f'widths.{i}', base * 2**i * EXPANSION) if ratios else base *
            2**i * EXPANSION for i in range(n)
        ]
        mid = [
            width(f'mid_widths.{i}', base * 2**i) if mids else base * 2**i
            for i in range(n)
        ]
        stem_w = width('widths.stem', stem) if ratios else stem
        planes = mid[0]
        if any(m != planes * 2**i or o != EXPANSION * m
               for i, (m, o) in enumerate(zip(mid, outs))):
            return
        for key in list(part):
            if key not in ('out_indices', 'frozen_stages', 'norm_cfg',
                           'norm_eval', 'style', 'zero_init_residual'):
                part.pop(key)
        part.update(
            type='ResNet',
            depth=depth,
            num_stages=n,
            base_channels=planes,
            stem_channels=stem_w,
            init_cfg=None)

    # BaseSearchableBackbone's stem and stages, under mmdet's names
    def stem_layers(self) -> List[nn.Module]:
        return [self.conv1, self.bn1, self.relu, self.maxpool]

    @property
    def stages(self) -> List[nn.Module]:
        return [getattr(self, f'layer{i + 1}') for i in range(self.num_stages)]
