"""mmdet's detection data preprocessor with the input resolution as a
choice."""
from typing import Any, Optional, Sequence

import torch
from mmdet.models.data_preprocessors import DetDataPreprocessor

from mmnas_tricks.registry import MODELS
from ..contract import searchable
from ..mutables import Subnet
from .elastic_size import DEFAULT_BASE_SIZE, ElasticSizeMixin, scale_resizes


@MODELS.register_module()
@searchable
class SearchableDetDataPreprocessor(ElasticSizeMixin, DetDataPreprocessor):
    """``mmdet.DetDataPreprocessor`` that then resizes the batch by
    ``size / base_size``, ``size`` a choice
    (:class:`~mmnas_tricks.models.mutables.InputSizeChoice`, mutable name
    ``data_preprocessor.size``): the elastic resolution of Once-for-All (Cai
    et al., ICLR 2020), so a search can spend FLOPs on resolution instead of
    layers. As mmdet's ``BatchSyncRandomResize`` (YOLOX), the padded batch
    is resized bilinearly and the ground-truth boxes scaled with it; here in
    test mode too, with ``img_shape`` and ``scale_factor`` updated so that
    predictions map back to the original image; the batch is padded again
    to ``pad_size_divisor``, of which every size must be a multiple.

    The pipelines resize images to ``base_size`` (the plain model's size);
    :meth:`to_plain_config` writes the chosen size into them instead, with
    mmdet's ``DetDataPreprocessor``: the exported config is a plain mmdet
    config. FLOPs are counted at the chosen size (:meth:`input_shape`).

    Args:
        sizes (Sequence[int]): Candidate sizes; the first is the default.
        base_size (int): The size the pipelines resize to. Defaults to 128.
        fixed_subnet (dict, optional): ``{'size': s}``: a static size.
            Defaults to None.
        **kwargs: ``DetDataPreprocessor`` arguments.

    Example:
        >>> pre = SearchableDetDataPreprocessor(
        ...     sizes=[128, 160], base_size=128, pad_size_divisor=32)
        >>> pre.size.current_choice = 160
    """

    def __init__(self,
                 sizes: Sequence[int],
                 base_size: int = DEFAULT_BASE_SIZE,
                 fixed_subnet: Optional[Subnet] = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.init_size(sizes, base_size, self.pad_size_divisor, fixed_subnet)

    def forward(self, data: dict, training: bool = False) -> dict:
        data = super().forward(data, training)
        if self.current_size == self.base_size:
            return data
        inputs, scale, _, padded = self.resize_batch(data['inputs'],
                                                     self.pad_value)
        sx, sy = scale
        for sample in data['data_samples'] or []:
            _rescale_sample(sample, sx, sy, padded)
        data['inputs'] = inputs
        return data

    @classmethod
    def to_plain_config(cls, cfg: Any, part: dict, own: Subnet) -> None:
        """Turn the data preprocessor config ``part`` (inside ``cfg``) into
        mmdet's ``DetDataPreprocessor`` and write the chosen size into every
        resize transform of ``cfg``'s pipelines (their ``scale`` times
        ``size / base_size``)."""
        base, size = cls.plain_part(part, own, 'mmdet.DetDataPreprocessor')
        if size != base:
            scale_resizes(cfg, size / base)


def _rescale_sample(sample, sx: float, sy: float, batch_shape) -> None:
    """A data sample's shapes, scale factor and boxes after the batch was
    resized by (sx, sy) and padded to ``batch_shape``."""
    meta = {}
    for key in ('img_shape', 'pad_shape'):
        if key in sample:
            h, w = sample.metainfo[key][:2]
            meta[key] = (round(h * sy), round(w * sx))
    if 'scale_factor' in sample:
        fx, fy = sample.metainfo['scale_factor'][:2]
        meta['scale_factor'] = (fx * sx, fy * sy)
    meta['batch_input_shape'] = tuple(batch_shape)
    sample.set_metainfo(meta)
    for field in ('gt_instances', 'ignored_instances'):
        instances = getattr(sample, field, None)
        if instances is None or 'bboxes' not in instances:
            continue
        # new instances and boxes: the sample's may be shared with batches
        # kept for the next pass (CachedBatches), which must not change
        instances = instances.new(**dict(instances.items()))
        boxes = instances.bboxes
        if hasattr(boxes, 'rescale_'):
            boxes = boxes.clone()
            boxes.rescale_((sx, sy))
        else:
            scale = torch.tensor([sx, sy, sx, sy],
                                 dtype=boxes.dtype,
                                 device=boxes.device)
            boxes = boxes * scale
        instances.bboxes = boxes
        setattr(sample, field, instances)
