"""SearchableSegDataPreprocessor: a segmentation batch resized with its
ground-truth maps, predictions mapped back to the original image, and the
chosen size written into a plain mmseg config."""
import os.path as osp

import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmnas_tricks.models import export_config
from mmnas_tricks.models.data_preprocessors import \
    SearchableSegDataPreprocessor
from mmnas_tricks.testing import config_dir
from mmnas_tricks.utils import build_model, load_config

BASELINE = osp.join(config_dir(), 'baselines', 'fpn_r18w16_12e_digits-seg.py')
PRE = dict(
    type='mmnas_tricks.SearchableSegDataPreprocessor',
    sizes=[128, 96, 160],
    base_size=128)


def _batch(n=2, size=128):
    gen = torch.Generator().manual_seed(0)
    samples = []
    for _ in range(n):
        s = SegDataSample()
        s.gt_sem_seg = PixelData(
            data=torch.randint(0, 11, (1, size, size), generator=gen))
        s.set_metainfo(dict(img_shape=(size, size), ori_shape=(size, size)))
        samples.append(s)
    inputs = [
        torch.randint(
            0, 255, (3, size, size), generator=gen, dtype=torch.uint8)
        for _ in range(n)
    ]
    return dict(inputs=inputs, data_samples=samples)


def _cfg():
    cfg = load_config(BASELINE)
    cfg.model.data_preprocessor = dict(cfg.model.data_preprocessor, **PRE)
    return cfg


@pytest.mark.parametrize('size', [96, 160])
def test_batch_and_maps_resize_and_predictions_map_back(size):
    model = build_model(_cfg())
    pre = model.data_preprocessor
    assert isinstance(pre, SearchableSegDataPreprocessor)
    pre.input_size.current_choice = size
    out = pre(_batch(), training=True)
    assert out['inputs'].shape == (2, 3, size, size)
    for sample in out['data_samples']:
        seg = sample.gt_sem_seg.data
        assert seg.shape == (1, size, size)
        assert set(seg.unique().tolist()) <= set(range(11))
        assert sample.img_shape == (size, size)
    model.eval()
    with torch.no_grad():
        data = pre(_batch(), training=False)
        assert data['inputs'].shape[-2:] == (size, size)
        preds = model.predict(data['inputs'], data['data_samples'])
    for pred in preds:  # back at the original 128 x 128
        assert pred.pred_sem_seg.data.shape == (1, 128, 128)
        assert pred.seg_logits.data.shape[-2:] == (128, 128)


def test_exported_config_is_plain_mmseg_at_the_chosen_size():
    cfg = _cfg()
    plain = export_config(cfg, {'data_preprocessor.input_size': 160})
    pre = plain.model.data_preprocessor
    assert pre.type == 'mmseg.SegDataPreProcessor'
    assert 'sizes' not in pre and tuple(pre.size) == (160, 160)

    def kinds(loader):
        return [(t['type'], t.get('scale'))
                for t in plain[loader].dataset.pipeline]

    assert kinds('train_dataloader')[:3] == [('LoadImageFromFile', None),
                                             ('LoadAnnotations', None),
                                             ('Resize', (160, 160))]
    for loader in ('val_dataloader', 'test_dataloader'):
        assert kinds(loader)[:3] == [('LoadImageFromFile', None),
                                     ('Resize', (160, 160)),
                                     ('LoadAnnotations', None)]
    build_model(plain)  # builds as a plain mmseg model
    same = export_config(cfg, {'data_preprocessor.input_size': 128})
    assert [t['type'] for t in same.val_dataloader.dataset.pipeline
            ] == ['LoadImageFromFile', 'LoadAnnotations', 'PackSegInputs']


def test_sizes_must_be_multiples_of_the_divisor():
    with pytest.raises(ValueError, match=r'\[112\].*use multiples of 32'):
        SearchableSegDataPreprocessor(sizes=[128, 112], base_size=128)
