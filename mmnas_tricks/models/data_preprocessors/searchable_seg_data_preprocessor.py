"""mmseg's segmentation data preprocessor with the input resolution as a
choice."""
from typing import Any, Optional, Sequence

import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.models.data_preprocessor import SegDataPreProcessor

from mmnas_tricks.registry import MODELS
from ..contract import searchable
from ..mutables import Subnet
from .elastic_size import (DEFAULT_BASE_SIZE, RESIZES, ElasticSizeMixin,
                           scale_resizes, times)


@MODELS.register_module()
@searchable
class SearchableSegDataPreprocessor(ElasticSizeMixin, SegDataPreProcessor):
    """``mmseg.SegDataPreProcessor`` that then resizes the batch by
    ``size / base_size``, ``size`` a choice (mutable name
    ``data_preprocessor.input_size``: mmseg's ``size`` is the padded
    training size; the elastic resolution of Once-for-All, as
    :class:`SearchableDetDataPreprocessor` for detection). The images are
    resized bilinearly and padded to ``pad_size_divisor``; in training the
    ground-truth maps are resized with them (nearest) and padded with
    ``seg_pad_val``; in test mode ``img_shape`` and the padding are updated,
    so that mmseg crops the padding and resizes the logits back to the
    original image as usual.

    :meth:`to_plain_config` writes the chosen size into the exported config
    with mmseg's ``SegDataPreProcessor``: its ``size`` and every resize
    transform's ``scale`` times ``size / base_size`` and, in the loaders'
    pipelines without one, a ``Resize`` to ``(size, size)`` (after the
    annotations in the training pipeline, so the maps follow; before them
    elsewhere, so the metric sees the original maps).

    Args:
        sizes (Sequence[int]): Candidate sizes; the first is the default.
        base_size (int): The size of the pipelines' images. Defaults to 128.
        pad_size_divisor (int): Every size must be a multiple. Defaults to
            32.
        fixed_subnet (dict, optional): ``{'size': s}``: a static size.
            Defaults to None.
        **kwargs: ``SegDataPreProcessor`` arguments.
    """

    SIZE_ATTR = 'input_size'

    def __init__(self,
                 sizes: Sequence[int],
                 base_size: int = DEFAULT_BASE_SIZE,
                 pad_size_divisor: int = 32,
                 fixed_subnet: Optional[Subnet] = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.init_size(sizes, base_size, pad_size_divisor, fixed_subnet)

    def forward(self, data: dict, training: bool = False) -> dict:
        data = super().forward(data, training)
        if self.current_size == self.base_size:
            return data
        inputs, (sx, sy), (th, tw), (ph, pw) = self.resize_batch(
            data['inputs'], self.pad_val)
        for sample in data.get('data_samples') or []:
            meta = dict(batch_input_shape=(ph, pw))
            if 'img_shape' in sample:
                h, w = sample.metainfo['img_shape'][:2]
                meta['img_shape'] = (round(h * sy), round(w * sx))
            for key in ('padding_size', 'img_padding_size'):
                if key in sample:  # (left, right, top, bottom)
                    left, right, top, bottom = sample.metainfo[key]
                    meta[key] = [
                        round(left * sx),
                        round(right * sx) + pw - tw,
                        round(top * sy),
                        round(bottom * sy) + ph - th
                    ]
            if not any(
                    k in sample for k in ('padding_size', 'img_padding_size')):
                meta['padding_size'] = [0, pw - tw, 0, ph - th]
            meta['pad_shape'] = (ph, pw)
            sample.set_metainfo(meta)
            if training and 'gt_sem_seg' in sample:
                seg = sample.gt_sem_seg.data
                seg = F.interpolate(
                    seg[None].float(), size=(th, tw),
                    mode='nearest')[0].to(seg.dtype)
                seg = F.pad(
                    seg, (0, pw - tw, 0, ph - th), value=self.seg_pad_val)
                sample.gt_sem_seg = PixelData(
                    data=seg, metainfo=sample.gt_sem_seg.metainfo)
        data['inputs'] = inputs
        return data

    @classmethod
    def to_plain_config(cls, cfg: Any, part: dict, own: Subnet) -> None:
        """Turn ``part`` (the preprocessor config inside ``cfg``) into
        mmseg's ``SegDataPreProcessor`` at the chosen size."""
        base, size = cls.plain_part(part, own, 'mmseg.SegDataPreProcessor')
        part.pop('pad_size_divisor', None)
        if size == base:
            return
        r = size / base
        if part.get('size') is not None:
            part['size'] = times(part['size'], r)
        scale_resizes(cfg, r)
        for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            loader = cfg.get(key)
            if not loader:
                continue
            dataset = loader['dataset']
            while 'pipeline' not in dataset and 'dataset' in dataset:
                dataset = dataset['dataset']  # wrappers
            pipeline = dataset.get('pipeline') or []
            kinds = [
                str(t.get('type', '')).rsplit('.', 1)[-1] for t in pipeline
            ]
            if set(kinds) & set(RESIZES):  # scaled above (or shared)
                continue
            after = 'LoadAnnotations' if key == 'train_dataloader' else \
                'LoadImageFromFile'
            at = kinds.index(after) + 1 if after in kinds else 1
            pipeline.insert(
                at, dict(type='Resize', scale=(size, size), keep_ratio=False))
