"""Dataset classes for digits that build the data on first use."""
from typing import Optional

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
                 **kwargs) -> None:
        _prepare(kwargs.get('data_root'), digits_spec, auto_build)
        super().__init__(*args, **kwargs)


@DATASETS.register_module()
class DigitsSegDataset(BaseSegDataset):
    """Digits semantic segmentation: 0 = background, 1 + d for digit d.

    Args:
        digits_spec (dict, optional): Keyword arguments of
            :class:`~mmnas_tricks.datasets.DigitsSpec`. Defaults to None.
        auto_build (bool): Build the data when ``data_root`` does not exist.
            Defaults to True.
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
                 **kwargs) -> None:
        _prepare(kwargs.get('data_root'), digits_spec, auto_build)
        super().__init__(
            *args,
            img_suffix=img_suffix,
            seg_map_suffix=seg_map_suffix,
            reduce_zero_label=reduce_zero_label,
            **kwargs)
