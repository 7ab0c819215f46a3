"""The training-recipe tricks' config components (docs/tricks.md,
"Training recipe"): the SGDR schedule's learning-rate curve."""
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import PARAM_SCHEDULERS

from mmnas_tricks.testing import config_dir


def _lr_curve(schedulers, epochs, epoch_length, base_lr=0.01):
    """The learning rate of every iteration under ``schedulers`` (configs),
    stepped as mmengine's Runner steps them."""
    param = torch.nn.Parameter(torch.zeros(1))
    wrapper = OptimWrapper(torch.optim.SGD([param], lr=base_lr))
    built = []
    for cfg in schedulers:
        cfg = dict(cfg)
        cls = PARAM_SCHEDULERS.get(cfg.pop('type'))
        if cfg.pop('convert_to_iter_based', False):
            built.append(
                cls.build_iter_from_epoch(
                    wrapper, **cfg, epoch_length=epoch_length))
        else:
            built.append(cls(wrapper, **cfg))
    curve = []
    for _ in range(epochs):
        for _ in range(epoch_length):
            curve.append(wrapper.param_groups[0]['lr'])
            for s in built:
                if not s.by_epoch:
                    s.step()
        for s in built:
            if s.by_epoch:
                s.step()
    return curve


@pytest.mark.parametrize('name,periods', [('sgdr_12e_param_scheduler', (4, 7)),
                                          ('sgdr_6e_param_scheduler', (2, 3))])
def test_sgdr_warms_up_then_restarts_at_each_period(name, periods):
    cfg = Config.fromfile(
        osp.join(config_dir(), '_base_', 'schedules', 'digits_sgdr.py'))
    length = 500  # iterations per epoch
    curve = _lr_curve(cfg[name], 1 + sum(periods), length)
    assert len(curve) == (1 + sum(periods)) * length
    # the warm-up: linear from 0.001 x the base over the first epoch
    assert curve[0] == pytest.approx(1e-5)
    assert curve[length // 2] == pytest.approx(0.005, rel=0.01)
    start = length
    for period in periods:
        n = period * length
        assert curve[start] == pytest.approx(0.01)  # (re)started at base
        for t in (n // 4, n // 2, 3 * n // 4, n - 1):
            want = 0.01 * 0.5 * (1 + math.cos(math.pi * t / n))
            assert curve[start + t] == pytest.approx(
                want, rel=1e-6, abs=1e-9), (start, t)
        assert curve[start + n - 1] < 1e-5  # annealed to ~0
        start += n
    assert max(curve) == pytest.approx(0.01)  # never past the base lr


def test_an_overlapping_warm_up_is_what_sgdr_avoids():
    """Why the warm-up ends before the restarts: mmengine's
    CosineRestartLR under a warm-up that overlaps it climbs far past the
    base learning rate (the reason written in the config)."""
    overlapping = [
        dict(
            type='LinearLR',
            start_factor=0.001,
            by_epoch=False,
            begin=0,
            end=300),
        dict(
            type='CosineRestartLR',
            periods=[4, 8],
            restart_weights=[1.0, 1.0],
            eta_min=0.0,
            by_epoch=True,
            begin=0,
            end=12,
            convert_to_iter_based=True)
    ]
    assert max(_lr_curve(overlapping, 12, 500)) > 100 * 0.01


def test_the_sgdr_pipeline_uses_it_for_the_supernet_and_the_retraining():
    from mmnas_tricks.engine.pipeline import stage_configs
    from mmnas_tricks.utils import load_config
    path = osp.join(config_dir(), 'nas',
                    'ablation_nsga2_fcos_whole-elastic_sgdr_digits.py')
    stages = stage_configs(load_config(path), path)
    supernet = stages['supernet']
    assert [s['type'] for s in supernet.param_scheduler
            ] == ['LinearLR', 'CosineRestartLR']
    assert supernet.param_scheduler[1]['end'] == supernet.train_cfg.max_epochs
    retrain = stages['search'].train_cfg.retrain
    assert retrain.param_scheduler[1]['periods'] == [4, 7]
    assert retrain.param_scheduler[1]['end'] == retrain.train_cfg.max_epochs
    # the rest of the main job's recipe is unchanged
    main = stage_configs(
        load_config(
            osp.join(config_dir(), 'nas',
                     'nsga2_fcos_whole-elastic_r18w16_digits.py')), path)
    assert retrain.optim_wrapper == main[
        'search'].train_cfg.retrain.optim_wrapper
    assert supernet.custom_hooks == main['supernet'].custom_hooks


AUGMENTED = ('photometric', 'geometric', 'cutout', 'photometric_cutout')


def _datasets_base(name):
    return Config.fromfile(osp.join(config_dir(), '_base_', 'datasets', name))


def _augment_cfg():
    return _datasets_base('digits_augment.py')


def _dataset(tiny_digits, pipeline=None, wrapper=None):
    """The digits training set of the detection base, on the tiny build,
    with ``pipeline`` (default: the base's own), in ``wrapper`` if given."""
    from mmengine.registry import DATASETS, DefaultScope

    from .conftest import TINY_SPEC
    inner = dict(
        _datasets_base('digits_detection.py').digits_train_dataloader.dataset,
        data_root=tiny_digits,
        digits_spec=TINY_SPEC)
    if pipeline is not None:
        inner['pipeline'] = pipeline
    cfg = inner if wrapper is None else dict(wrapper, dataset=inner)
    with DefaultScope.overwrite_default_scope('mmdet'):
        return DATASETS.build(cfg)


@pytest.mark.parametrize('name', AUGMENTED)
def test_each_augmentation_runs_and_changes_the_canvases(tiny_digits, name):
    """mmdet's transforms run on the digits canvases: every sample comes
    out packed at 128 px with boxes inside it, and the augmented images
    differ from the plain pipeline's."""
    plain = _dataset(tiny_digits)
    augmented = _dataset(tiny_digits,
                         _augment_cfg()[f'digits_{name}_train_pipeline'])
    torch.manual_seed(0)
    import random

    import numpy as np
    random.seed(0)
    np.random.seed(0)
    changed = 0
    for i in range(8):
        a, b = augmented[i], plain[i]
        assert tuple(a['inputs'].shape) == tuple(b['inputs'].shape) == \
            (3, 128, 128)
        boxes = a['data_samples'].gt_instances.bboxes.tensor
        assert bool((boxes >= -1e-3).all())
        assert bool((boxes <= 128 + 1e-3).all())
        changed += not torch.equal(a['inputs'], b['inputs'])
    assert changed >= 6  # (a cutout may land on empty background)


def test_mixup_blends_two_canvases_and_keeps_both_boxes(tiny_digits):
    cfg = _augment_cfg()
    mixed = _dataset(tiny_digits, cfg.digits_mixup_load_pipeline,
                     cfg.digits_mixup_dataset)
    plain = _dataset(tiny_digits)
    more = 0
    for i in range(6):
        out = mixed[i]
        assert tuple(out['inputs'].shape) == (3, 128, 128)
        more += len(out['data_samples'].gt_instances) > len(
            plain[i]['data_samples'].gt_instances)
    assert more >= 3  # most samples gained the other canvas's digits


def test_the_augmented_supernet_trains_on_it_and_the_export_drops_it():
    """The augmentation ablation: its supernet's training pipeline has the
    transforms; a subnet exported by its search trains with the retrain
    recipe (the baseline's pipeline, no augmentation); an export without a
    recipe (tools/export_subnet.py) keeps the supernet's pipeline."""
    from mmnas_tricks.engine.export import apply_retrain
    from mmnas_tricks.engine.pipeline import stage_configs
    from mmnas_tricks.models import export_config
    from mmnas_tricks.models.mutables import named_mutables
    from mmnas_tricks.utils import build_model, load_config
    path = osp.join(config_dir(), 'nas',
                    'ablation_nsga2_fcos_whole-elastic_augment_digits.py')
    stages = stage_configs(load_config(path), path)

    def kinds(loader):
        return [t['type'] for t in loader.dataset.pipeline]

    supernet = stages['supernet']
    assert 'PhotoMetricDistortion' in kinds(supernet.train_dataloader)
    assert 'CutOut' in kinds(supernet.train_dataloader)
    # still the supernet's subset of the canvases
    assert supernet.train_dataloader.dataset.subset == \
        supernet.digits_supernet_subset
    subnet = {
        n: m.choices[0]
        for n, m in named_mutables(build_model(supernet)).items()
    }
    search = stages['search']
    exported = apply_retrain(
        export_config(search, subnet), search.train_cfg.retrain)
    assert 'PhotoMetricDistortion' not in kinds(exported.train_dataloader)
    assert 'CutOut' not in kinds(exported.train_dataloader)
    kept = export_config(supernet, subnet)
    assert 'CutOut' in kinds(kept.train_dataloader)
