"""Dataset classes for digits that build the data on first use."""
from typing import List, Optional, Sequence

from mmdet.datasets import CocoDataset
from mmseg.datasets import BaseSegDataset

from mmnas_tricks.registry import DATASETS
from .digits_builder import (CLASSES, SEG_CLASSES, DigitsSpec, check_digits,
                             ensure_digits)

# Ten well separated colours for the digits, black for background.
_PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200),
            (245, 130, 48), (145, 30, 180), (70, 240, 240), (240, 50, 230),
            (210, 245, 60), (250, 190, 190)]


def _prepare(data_root: Optional[str], digits_spec: Optional[dict],
             auto_build: bool) -> None:
    if data_root is None:
        raise ValueError('digits datasets need data_root (the folder the '
                         'dataset is built into), got None')
    spec = DigitsSpec.from_dict(digits_spec)
    if auto_build:
        ensure_digits(data_root, spec)
    else:
        check_digits(data_root, spec)


def check_subset(subset: Optional[Sequence[float]]) -> Optional[tuple]:
    """Validate a ``(start, stop)`` fraction range of a dataset."""
    if subset is None:
        return None
    try:
        start, stop = (float(v) for v in subset)
    except (TypeError, ValueError):
        raise ValueError(f'subset={subset!r} must be a (start, stop) pair of '
                         'fractions, e.g. (0, 0.5)') from None
    if not 0.0 <= start < stop <= 1.0:
        raise ValueError(f'subset={tuple(subset)} must satisfy 0 <= start < '
                         'stop <= 1')
    return start, stop


def take_subset(data_list: List[dict], subset: Optional[tuple]) -> List[dict]:
    """The ``[start, stop)`` fraction of ``data_list`` (in order)."""
    if subset is None:
        return data_list
    n = len(data_list)
    return data_list[int(round(subset[0] * n)):int(round(subset[1] * n))]


@DATASETS.register_module()
class DigitsCocoDataset(CocoDataset):
    """COCO-format digits detection (boxes + instance masks, 10 classes).

    The data are built into ``data_root`` on first use (see
    :func:`~mmnas_tricks.datasets.digits_builder.build_digits`); an existing
    folder is validated against ``digits_spec``.

    Args:
        digits_spec (dict, optional): Keyword arguments of
            :class:`~mmnas_tricks.datasets.DigitsSpec`. Defaults to None (the
            default spec).
        auto_build (bool): Build the data when ``data_root`` does not exist.
            Defaults to True.
        subset (tuple, optional): ``(start, stop)``: keep only this fraction
            range of the (filtered) images, in order, e.g. ``(0, 0.875)`` to
            train a supernet and ``(0.875, 1)`` as the held-out split that
            scores search candidates or trains DARTS's architecture.
            Evaluate a subset with ``CocoMetric(ann_file=None)`` and
            ``'instances'`` in the pipeline's ``meta_keys``. Defaults to
            None (all).
        **kwargs: Everything ``mmdet.CocoDataset`` takes.

    Example:
        >>> dataset = dict(
        ...     type='mmnas_tricks.DigitsCocoDataset', data_root='data/digits',
        ...     ann_file='annotations/instances_train.json',
        ...     data_prefix=dict(img='images/train/'), pipeline=[...])
    """
    METAINFO = dict(classes=CLASSES, palette=_PALETTE)

    def __init__(self,
                 *args,
                 digits_spec: Optional[dict] = None,
                 auto_build: bool = True,
                 subset: Optional[Sequence[float]] = None,
                 **kwargs) -> None:
        _prepare(kwargs.get('data_root'), digits_spec, auto_build)
        self.subset = check_subset(subset)
        super().__init__(*args, **kwargs)

    def filter_data(self) -> List[dict]:
        return take_subset(super().filter_data(), self.subset)


@DATASETS.register_module()
class DigitsSegDataset(BaseSegDataset):
    """Digits semantic segmentation: 0 = background, 1 + d for digit d.

    Args:
        digits_spec (dict, optional): Keyword arguments of
            :class:`~mmnas_tricks.datasets.DigitsSpec`. Defaults to None.
        auto_build (bool): Build the data when ``data_root`` does not exist.
            Defaults to True.
        subset (tuple, optional): ``(start, stop)`` fraction range of the
            images to keep, in order (see :class:`DigitsCocoDataset`).
            Defaults to None (all).
        **kwargs: Everything ``mmseg.BaseSegDataset`` takes.

    Example:
        >>> dataset = dict(
        ...     type='mmnas_tricks.DigitsSegDataset', data_root='data/digits',
        ...     data_prefix=dict(img_path='images/train',
        ...                      seg_map_path='seg_maps/train'),
        ...     pipeline=[...])
    """
    METAINFO = dict(classes=SEG_CLASSES, palette=[(0, 0, 0)] + _PALETTE)

    def __init__(self,
                 *args,
                 digits_spec: Optional[dict] = None,
                 auto_build: bool = True,
                 img_suffix: str = '.png',
                 seg_map_suffix: str = '.png',
                 reduce_zero_label: bool = False,
                 subset: Optional[Sequence[float]] = None,
                 **kwargs) -> None:
        _prepare(kwargs.get('data_root'), digits_spec, auto_build)
        self.subset = check_subset(subset)
        super().__init__(
            *args,
            img_suffix=img_suffix,
            seg_map_suffix=seg_map_suffix,
            reduce_zero_label=reduce_zero_label,
            **kwargs)

    def filter_data(self) -> List[dict]:
        return take_subset(super().filter_data(), self.subset)
