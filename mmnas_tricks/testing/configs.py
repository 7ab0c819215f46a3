"""Helpers for tests: our configs, the installed mmdet/mmseg configs, and tiny
versions of the digits configs."""
import glob
import os.path as osp
from typing import List, Optional

from mmengine.config import Config
from mmengine.utils import get_installed_path

from mmnas_tricks.utils import load_config

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def config_dir() -> str:
    """This repository's ``configs/`` folder."""
    return osp.join(REPO_ROOT, 'configs')


def list_configs(include_base: bool = True) -> List[str]:
    """Every ``.py`` file under ``configs/``, sorted."""
    paths = glob.glob(osp.join(config_dir(), '**', '*.py'), recursive=True)
    if not include_base:
        paths = [p for p in paths if '/_base_/' not in p]
    return sorted(paths)


def installed_config_path(package: str, rel_path: str) -> str:
    """The file of a config shipped in an installed OpenMMLab wheel
    (``.mim/configs``), e.g. ``('mmdet', 'fcos/fcos_r50-caffe_fpn_gn-head_
    1x_coco.py')``."""
    return osp.join(get_installed_path(package), '.mim', 'configs', rel_path)


def installed_config(package: str, rel_path: str) -> Config:
    """A config shipped in an installed OpenMMLab wheel (``.mim/configs``);
    ``mmdet.testing.get_detector_cfg`` does not work from a wheel install."""
    return Config.fromfile(installed_config_path(package, rel_path))


def _dataloaders(cfg, path: str = ''):
    """Every dataloader config in ``cfg`` (``*dataloader`` keys at any
    depth: a hook's ``arch_dataloader``, a search loop's
    ``val_dataloader``, ...)."""
    items = cfg.items() if hasattr(cfg, 'items') else (
        enumerate(cfg) if isinstance(cfg, (list, tuple)) else [])
    for key, value in items:
        name = f'{path}.{key}' if path else str(key)
        if isinstance(key, str) and key.endswith('dataloader') and \
                hasattr(value, 'get') and value.get('dataset') is not None:
            yield name, value
        elif hasattr(value, 'items') or isinstance(value, (list, tuple)):
            yield from _dataloaders(value, name)


def shrink_digits_cfg(cfg: Config,
                      data_root: str,
                      digits_spec: dict,
                      work_dir: str,
                      max_epochs: int = 1,
                      batch_size: int = 8,
                      experiment_name: Optional[str] = None) -> Config:
    """Point a digits config at a tiny build and make it quick to run.

    Every dataloader reads ``data_root`` (built with ``digits_spec``), the
    annotation file of the val split for val/test evaluators too, training
    lasts ``max_epochs`` with validation at the end, and warm-up is cut to
    one iteration. ``experiment_name`` should be unique per Runner in a test
    session (mmengine's global managers are keyed by it).
    """
    cfg = cfg.copy()
    for _, loader in _dataloaders(cfg):
        loader.batch_size = batch_size
        loader.num_workers = 0
        loader.persistent_workers = False
        ds = loader.dataset
        while 'dataset' in ds:  # RepeatDataset / ClassBalancedDataset
            ds = ds.dataset
        ds.data_root = data_root
        ds.digits_spec = dict(digits_spec)
    for key in ('val_evaluator', 'test_evaluator'):
        ev = cfg.get(key)
        if ev is not None and 'ann_file' in ev:
            ev.ann_file = osp.join(data_root, 'annotations',
                                   'instances_val.json')
    cfg.train_cfg.max_epochs = max_epochs
    cfg.train_cfg.val_interval = 1
    for sched in cfg.get('param_scheduler', []):
        if sched.get('by_epoch') is False and sched.get('end', 0) > 1:
            sched.end = 1  # warm-up
        if sched.get('type') == 'CosineAnnealingLR':
            sched.T_max = max_epochs
            sched.end = max_epochs
            sched.begin = 0
    cfg.work_dir = work_dir
    cfg.default_hooks.logger.interval = 1
    if experiment_name is not None:
        cfg.experiment_name = experiment_name
    return cfg


def tiny_supernet_cfg(
        config: str,
        data_root: str,
        digits_spec: dict,
        work_dir: str,
        experiment_name: str,
        max_epochs: int = 1,
        tower_depths: Optional[tuple] = (2, 1),
) -> Config:
    """A digits FCOS supernet config (``config``) shrunk by
    :func:`shrink_digits_cfg`, with two-layer head towers (``tower_depths``
    their searched depths, None for fixed) and a checkpoint every epoch."""
    cfg = shrink_digits_cfg(
        load_config(config),
        data_root,
        digits_spec,
        work_dir=work_dir,
        max_epochs=max_epochs,
        experiment_name=experiment_name)
    cfg.model.bbox_head.stacked_convs = 2
    cfg.model.bbox_head.tower_depths = tower_depths
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1)
    return cfg
