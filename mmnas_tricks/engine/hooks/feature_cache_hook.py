"""Frozen-stem feature caching: compute a frozen backbone once per sample."""
import os.path as osp
import types
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.logging import print_log
from torch.nn.modules.batchnorm import _BatchNorm

from mmnas_tricks.registry import HOOKS
from ..feature_cache import FeatureCache, tensor_digest
from .utils import unwrap_model

#: Transforms whose randomness has a few outcomes, each a distinct input the
#: key tells apart (the cache holds every variant).
FINITE_RANDOM = ('RandomFlip', )
#: Transforms with continuous randomness that are not named Random*.
OTHER_RANDOM = ('PhotoMetricDistortion', 'Mosaic', 'MixUp', 'Expand',
                'MinIoURandomCrop', 'CutOut', 'YOLOXHSVRandomAug',
                'RandAugment', 'AutoAugment', 'CopyPaste', 'CachedMosaic',
                'CachedMixUp', 'RandomChoice', 'RandomApply')


def random_transforms(pipeline: Sequence[dict]) -> List[str]:
    """The transforms of ``pipeline`` (configs) that draw new inputs every
    epoch: types named ``Random*`` or listed in :data:`OTHER_RANDOM`, except
    RandomFlip (finite variants) and any with ``prob=0``."""
    found = []
    for t in pipeline or []:
        name = str(t.get('type', '')).split('.')[-1]
        if name in FINITE_RANDOM or t.get('prob', None) == 0:
            continue
        if name.startswith('Random') or name in OTHER_RANDOM:
            found.append(name)
    return found


@HOOKS.register_module()
class FeatureCacheHook(Hook):
    """Cache the outputs of a frozen part of the model (the stem or the whole
    backbone) per sample, so that neck / head search stops recomputing them
    (docs/tricks.md, T4.2; NAS-FCOS searches with a fixed backbone).

    The module at ``module`` (a path, e.g. ``'backbone'``) gets a caching
    ``forward``: every sample of the batch is looked up by the digest of its
    input tensor as the module receives it (after every transform,
    normalisation and padding), so an entry is reused exactly when the
    module would see the same numbers; the misses are computed together and
    stored. Train, validation, test and search loops all go through it.
    Losses and predictions equal those without the cache up to float
    rounding of the batch composition (tested <= 1e-5).

    It refuses to start when the module can still change its outputs: a
    parameter that requires a gradient, or a BatchNorm / dropout in train
    mode during training (freeze it, e.g. mmdet ResNet ``frozen_stages=4,
    norm_eval=True``), or when the training pipeline (or the data
    preprocessor's batch augments) draws new random inputs every epoch, which
    a cache cannot serve (``allow_random=True`` runs anyway: still exact,
    just few hits). Entries are dropped whenever the module's weights change
    (checked every iteration by the tensors' version counters and at every
    epoch by their contents, e.g. after ``load_from``).

    Memory: entries live on the CPU up to ``budget_mb``; beyond it the least
    recently used go to ``spill_dir`` (per rank, per weight digest) or are
    dropped. A damaged spill file is recomputed, never used. Hit ratio and
    cache size are logged every iteration (``train/cache_hit_ratio``,
    ``train/cache_mb``), the hit ratio of validation after it
    (``val/cache_hit_ratio``).

    Args:
        module (str): Path of the frozen module. Defaults to ``'backbone'``.
        budget_mb (float): Memory budget in MiB. Defaults to 1024.
        spill_dir (str, optional): Disk spill; relative paths are under the
            work dir. Defaults to None (no spill).
        allow_random (bool): Start despite random transforms. Defaults to
            False.

    Example:
        >>> custom_hooks = [dict(type='mmnas_tricks.FeatureCacheHook',
        ...                      module='backbone', budget_mb=2048)]
    """

    priority = 'VERY_LOW'  # after any hook that converts modules

    def __init__(self,
                 module: str = 'backbone',
                 budget_mb: float = 1024,
                 spill_dir: Optional[str] = None,
                 allow_random: bool = False) -> None:
        self.module_path = module
        self.cache = FeatureCache(budget_mb, None)
        self.spill_root = spill_dir
        self.allow_random = allow_random
        self._module: Optional[nn.Module] = None
        self._versions = None
        self._digest = None
        self._stat0 = dict(self.cache.stats)

    # -- set-up ------------------------------------------------------------
    def before_run(self, runner) -> None:
        model = unwrap_model(runner)
        try:
            module = model.get_submodule(self.module_path)
        except AttributeError:
            raise ValueError(
                f'FeatureCacheHook: the model has no module '
                f'{self.module_path!r}; top-level modules: '
                f'{[n for n, _ in model.named_children()]}') from None
        trainable = [
            n for n, p in module.named_parameters() if p.requires_grad
        ]
        if trainable:
            raise ValueError(
                f'FeatureCacheHook: {self.module_path} still trains '
                f'({len(trainable)} parameters require gradients, e.g. '
                f'{trainable[:3]}); freeze it (mmdet ResNet: '
                'frozen_stages=4, norm_eval=True) or cache a frozen part')
        if not self.allow_random:
            self._check_pipeline(runner)
        if self.spill_root is not None and not osp.isabs(self.spill_root):
            self.spill_root = osp.join(runner.work_dir, self.spill_root)
        if self._module is module:  # installed already (train, then test)
            return
        self._module = module
        self._single = None
        self._stateful = [
            m for m in module.modules()
            if isinstance(m, (_BatchNorm, nn.Dropout))
        ]
        self._own_forward = 'forward' in vars(module)
        self._forward = module.forward
        module.forward = types.MethodType(self._make_forward(), module)

    def _check_pipeline(self, runner) -> None:
        found = []
        loader = runner.cfg.get('train_dataloader') or {}
        dataset = loader.get('dataset', {}) if hasattr(loader, 'get') else {}
        while hasattr(dataset, 'get') and 'dataset' in dataset:
            dataset = dataset['dataset']
        if hasattr(dataset, 'get'):
            found += random_transforms(dataset.get('pipeline'))
        pre = getattr(unwrap_model(runner), 'data_preprocessor', None)
        if getattr(pre, 'batch_augments', None):
            found.append('data_preprocessor.batch_augments')
        if found:
            raise ValueError(
                f'FeatureCacheHook: the training pipeline draws new random '
                f'inputs every epoch ({found}); a cache keyed by the input '
                'cannot serve them. Remove them for the search, or pass '
                'allow_random=True (still exact, few hits)')

    def after_run(self, runner) -> None:
        if self._module is not None:
            if self._own_forward:
                self._module.forward = self._forward
            else:
                del self._module.forward  # the class's forward again
            self._module = None

    # -- invalidation --------------------------------------------------------
    def _tensors(self):
        return list(self._module.parameters()) + list(self._module.buffers())

    def _check_weights(self, by_content: bool) -> None:
        versions = [(id(t), t._version) for t in self._tensors()]
        if versions == self._versions and not by_content:
            return
        digest = tensor_digest(*self._tensors())
        if digest != self._digest:
            if self._digest is not None:
                print_log(
                    f'FeatureCacheHook: {self.module_path} weights '
                    f'changed, {len(self.cache)} entries dropped',
                    logger='current')
            spill = None if self.spill_root is None else osp.join(
                self.spill_root, f'rank{get_rank()}', digest[:16])
            self.cache.clear(spill)
            self._digest = digest
        self._versions = versions

    def before_train_epoch(self, runner) -> None:
        self._check_weights(by_content=True)

    def before_val_epoch(self, runner) -> None:
        self._check_weights(by_content=True)
        self._hit_ratio()

    def before_test_epoch(self, runner) -> None:
        self._check_weights(by_content=True)

    # -- the caching forward -------------------------------------------------
    def _make_forward(self):
        hook = self

        def forward(module, x, *args, **kwargs):
            # a trace (FLOPs counting of candidates) records the module's
            # own computation, not the cache's lookups
            if args or kwargs or not torch.is_tensor(x) or \
                    torch.jit.is_tracing():
                return hook._forward(x, *args, **kwargs)
            return hook.cached_forward(x)

        return forward

    def cached_forward(self, x: torch.Tensor):
        moving = [m for m in self._stateful if m.training]
        if moving:
            raise RuntimeError(
                f'FeatureCacheHook: {len(moving)} BatchNorm / dropout '
                f'layer(s) of {self.module_path} are in train mode, so its '
                'outputs are not a function of the input; set norm_eval=True '
                '/ frozen_stages or keep them in eval mode')
        self._check_weights(by_content=self._digest is None)
        host = x.detach().cpu()  # one transfer for the batch, not per sample
        keys = [tensor_digest(host[i]) for i in range(host.shape[0])]
        found = [self.cache.get(k) for k in keys]
        missing = [i for i, f in enumerate(found) if f is None]
        if missing:
            with torch.no_grad():
                out = self._forward(
                    x[missing] if len(missing) < len(keys) else x)
            single = torch.is_tensor(out)
            levels = (out, ) if single else tuple(out)
            for j, i in enumerate(missing):
                found[i] = tuple(level[j:j + 1] for level in levels)
                self.cache.put(keys[i], found[i])
            self._single = single
        elif self._single is None:  # every entry from disk: learn the type
            with torch.no_grad():
                self._single = torch.is_tensor(self._forward(x[:1]))
        single = self._single
        merged = tuple(
            torch.cat([f[level].to(x.device) for f in found])
            for level in range(len(found[0])))
        return merged[0] if single else merged

    def _hit_ratio(self) -> Optional[float]:
        """Hits / lookups since the last call."""
        stats = self.cache.stats
        seen = {k: stats[k] - self._stat0[k] for k in stats}
        self._stat0 = dict(stats)
        lookups = seen['hits'] + seen['disk_hits'] + seen['misses']
        if not lookups:
            return None
        return (seen['hits'] + seen['disk_hits']) / lookups

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch=None) -> None:
        self._hit_ratio()  # count this iteration's lookups only

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        ratio = self._hit_ratio()
        if ratio is not None:
            runner.message_hub.update_scalar('train/cache_hit_ratio', ratio)
        runner.message_hub.update_scalar('train/cache_mb',
                                         self.cache.nbytes / 2**20)

    def after_val_epoch(self, runner, metrics=None) -> None:
        ratio = self._hit_ratio()
        if ratio is not None:
            runner.message_hub.update_scalar('val/cache_hit_ratio', ratio)
