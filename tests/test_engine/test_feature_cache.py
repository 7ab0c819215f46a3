"""FeatureCache (memory budget, disk spill, damaged entries) and
FeatureCacheHook in real tiny Runners: the same losses and predictions as
without it, refusals, invalidation (docs/tricks.md, T4.2)."""
import os
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.runner import Runner

from mmnas_tricks.engine.feature_cache import FeatureCache, tensor_digest
from mmnas_tricks.engine.hooks import FeatureCacheHook, random_transforms
from mmnas_tricks.testing import config_dir, shrink_digits_cfg
from mmnas_tricks.utils import load_config
from ..conftest import TINY_SPEC

ELASTIC = osp.join(config_dir(), 'supernets',
                   'fcos_r18w16_fpn-elastic_gn-head-elastic_12e_digits.py')


def entry(seed, size=1024):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(size // 4, generator=g), )  # `size` bytes


def test_memory_budget_evicts_the_least_recently_used():
    cache = FeatureCache(budget_mb=3 * 1024 / 2**20)  # three entries
    for k in 'abc':
        cache.put(k, entry(ord(k)))
    assert cache.get('a') is not None  # a is now the most recent
    cache.put('d', entry(4))
    assert len(cache) == 3 and cache.nbytes == 3 * 1024
    assert cache.get('b') is None  # evicted, no spill
    assert cache.get('a') is not None and cache.get('d') is not None
    assert cache.stats['evicted'] == 1


def test_disk_spill_serves_evicted_entries_and_recomputes_damaged_ones(
        tmp_path):
    cache = FeatureCache(budget_mb=2 * 1024 / 2**20, spill_dir=str(tmp_path))
    for i in range(5):
        cache.put(f'k{i}', entry(i))
    assert cache.stats['spilled'] == 3 and len(cache) == 2
    got = cache.get('k0')  # from disk, exact
    assert torch.equal(got[0], entry(0)[0])
    assert cache.stats['disk_hits'] == 1

    # a damaged file (bytes flipped) and a file of another entry: both are
    # deleted and reported as misses, never returned
    path1 = cache._path('k1')
    with open(path1, 'rb') as f:
        raw = f.read()
    at = raw.index(entry(1)[0].numpy().tobytes()[:64])  # the tensor's data
    with open(path1, 'r+b') as f:
        f.seek(at + 8)
        f.write(b'\x00' * 4)
    path2 = cache._path('k2')
    os.replace(cache._path('k3'), path2)
    assert cache.get('k1') is None and not osp.exists(path1)
    assert cache.get('k2') is None and not osp.exists(path2)
    assert cache.stats['corrupt'] == 2
    with open(cache._path('k0'), 'wb') as f:  # truncated / garbage
        f.write(b'not a checkpoint')
    cache.clear(str(tmp_path))
    assert cache.get('k0') is None and cache.stats['corrupt'] == 3


def test_digest_tells_apart_values_shapes_and_dtypes():
    x = torch.zeros(2, 3)
    assert tensor_digest(x) == tensor_digest(x.clone())
    assert tensor_digest(x) != tensor_digest(x.view(3, 2))
    assert tensor_digest(x) != tensor_digest(x.double())
    y = x.clone()
    y[1, 2] = 1e-30
    assert tensor_digest(x) != tensor_digest(y)


def test_random_transforms_are_found():
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='RandomFlip', prob=0.5),
        dict(type='RandomResize', scale=(1, 2)),
        dict(type='mmdet.PhotoMetricDistortion'),
        dict(type='RandomCrop', prob=0, crop_size=(2, 2)),
        dict(type='Resize', scale=(3, 3))
    ]
    assert random_transforms(pipeline) == [
        'RandomResize', 'PhotoMetricDistortion'
    ]


def frozen_cfg(tiny_digits, work, name, cache=True, **hook):
    cfg = shrink_digits_cfg(
        load_config(ELASTIC),
        tiny_digits,
        TINY_SPEC,
        work_dir=work,
        max_epochs=2,
        experiment_name=name)
    cfg.model.backbone.frozen_stages = 4
    cfg.model.backbone.norm_eval = True
    cfg.model.bbox_head.stacked_convs = 2
    cfg.model.bbox_head.tower_depths = None
    cfg.model.test_cfg.score_thr = 0.0
    cfg.randomness = dict(seed=7)
    if cache:
        cfg.custom_hooks.append(
            dict(type='mmnas_tricks.FeatureCacheHook', **hook))
    return cfg


def losses(runner):
    values, _ = runner.message_hub.get_scalar('train/loss').data
    return np.asarray(values)


@pytest.mark.heavy
def test_cached_and_uncached_runs_give_the_same_losses_and_predictions(
        tiny_digits, tmp_path):
    runs = {}
    for cache in (False, True):
        cfg = frozen_cfg(
            tiny_digits,
            str(tmp_path / f'c{cache}'),
            f'feature_cache_{cache}',
            cache=cache,
            **(dict(spill_dir='spill', budget_mb=0.05) if cache else {}))
        runner = Runner.from_cfg(cfg)
        runner.train()
        batch = next(iter(runner.val_dataloader))
        with torch.no_grad():
            preds = runner.model.test_step(batch)
        runs[cache] = (runner, losses(runner), preds)
    (_, l0, p0), (cached, l1, p1) = runs[False], runs[True]
    assert len(l0) == len(l1) and len(l0) >= 4
    assert np.abs(l0 - l1).max() <= 1e-5
    for a, b in zip(p0, p1):
        assert torch.allclose(
            a.pred_instances.scores, b.pred_instances.scores, atol=1e-5)
        assert torch.allclose(
            a.pred_instances.bboxes, b.pred_instances.bboxes, atol=1e-3)
    hook = next(h for h in cached.hooks if isinstance(h, FeatureCacheHook))
    ratios, _ = cached.message_hub.get_scalar('train/cache_hit_ratio').data
    per_epoch = len(ratios) // 2
    assert all(r == 0 for r in ratios[:per_epoch])  # first epoch: computed
    assert all(r == 1 for r in ratios[per_epoch:])  # then every one a hit
    val, _ = cached.message_hub.get_scalar('val/cache_hit_ratio').data
    assert list(val) == [0.0, 1.0]  # computed once, then served
    # the budget (~50 KiB) holds a few samples; the rest came from the disk
    assert hook.cache.stats['disk_hits'] > 0
    assert hook.cache.nbytes <= 0.05 * 2**20
    # after the run the module computes again
    assert hook._module is None
    assert 'forward' not in vars(cached.model.backbone)


def test_the_cache_refuses_a_module_that_still_changes(tiny_digits, tmp_path):
    cfg = frozen_cfg(tiny_digits, str(tmp_path / 'a'), 'feature_cache_ref1')
    cfg.model.backbone.frozen_stages = -1
    with pytest.raises(ValueError, match='backbone still trains'):
        Runner.from_cfg(cfg).train()

    cfg = frozen_cfg(tiny_digits, str(tmp_path / 'c'), 'feature_cache_ref3')
    cfg.train_dataloader.dataset.pipeline.insert(
        2,
        dict(
            type='RandomResize',
            scale=(128, 128),
            ratio_range=(0.8, 1.2),
            keep_ratio=True))
    with pytest.raises(ValueError, match=r"\['RandomResize'\].*allow_random"):
        Runner.from_cfg(cfg).train()

    cfg = frozen_cfg(
        tiny_digits, str(tmp_path / 'd'), 'feature_cache_ref4', module='nope')
    with pytest.raises(ValueError, match="no module 'nope'.*backbone"):
        Runner.from_cfg(cfg).train()


def test_entries_are_dropped_when_the_weights_change(tiny_digits, tmp_path):
    cfg = frozen_cfg(tiny_digits, str(tmp_path / 'w'), 'feature_cache_w')
    runner = Runner.from_cfg(cfg)
    hook = next(h for h in runner.hooks if isinstance(h, FeatureCacheHook))
    runner.call_hook('before_run')
    model = runner.model
    model.train()
    x = torch.randn(2, 3, 64, 64)
    first = model.backbone(x)
    assert len(hook.cache) == 2 and hook.cache.stats['misses'] == 2
    assert all(torch.equal(a, b) for a, b in zip(first, model.backbone(x)))
    assert hook.cache.stats['hits'] == 2
    with torch.no_grad():  # e.g. load_from: in-place copies
        model.backbone.conv1.weight.mul_(2)
    again = model.backbone(x)
    assert hook.cache.stats['misses'] == 4  # recomputed with new weights
    assert not torch.equal(first[0], again[0])
    # frozen weights but BatchNorm statistics that would move: refused
    torch.nn.Module.train(model.backbone)  # bypasses ResNet's freezing
    with pytest.raises(RuntimeError, match='in train mode'):
        model.backbone(x)
    runner.call_hook('after_run')


def test_flops_count_of_a_search_traces_through_the_cache(
        tiny_digits, tmp_path):
    """A search counts every candidate's FLOPs (a jit trace) while the
    cache serves the backbone: the trace runs the backbone itself."""
    from mmnas_tricks.models import subnet_resources
    cfg = frozen_cfg(tiny_digits, str(tmp_path / 'f'), 'feature_cache_f')
    runner = Runner.from_cfg(cfg)
    hook = next(h for h in runner.hooks if isinstance(h, FeatureCacheHook))
    model = runner.model
    plain = subnet_resources(model, input_shape=(3, 64, 64))
    runner.call_hook('before_run')
    model.eval()
    model.backbone(torch.randn(1, 3, 64, 64))  # an entry, as in a search
    stats = dict(hook.cache.stats)
    assert subnet_resources(model, input_shape=(3, 64, 64)) == plain
    assert hook.cache.stats == stats  # the trace neither read nor wrote
    runner.call_hook('after_run')
