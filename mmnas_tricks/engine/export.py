"""Write a subnet of a supernet as a checked plain config + checkpoint."""
import os
import os.path as osp
from typing import Optional, Tuple

import torch
from mmengine.config import Config

from mmnas_tricks.models import (export_config, export_static,
                                 save_static_checkpoint)
from mmnas_tricks.models.mutables import BaseMutable, set_subnet
from mmnas_tricks.registry import HOOKS
from mmnas_tricks.utils import atomic_write_text, build_model


def strip_search_settings(cfg: Config) -> None:
    """Remove what only supernet training needs: hooks whose class says
    ``search_only = True`` and DDP's tolerance of unused parameters (a
    search config's loop is replaced by :func:`apply_retrain`)."""
    hooks = []
    for hook in cfg.get('custom_hooks', []) or []:
        type_ = hook.get('type', '')
        name = type_.split('.', 1)[1] if isinstance(type_, str) and \
            type_.startswith('mmnas_tricks.') else type_
        cls = HOOKS.module_dict.get(name) if isinstance(name, str) else None
        if not getattr(cls, 'search_only', False):
            hooks.append(hook)
    cfg.custom_hooks = hooks
    if 'find_unused_parameters' in cfg:
        cfg.find_unused_parameters = False


def _without_delete(value):
    """``value`` without mmengine's ``_delete_`` merge markers (they mean
    nothing outside a merge and would reach the built objects)."""
    if hasattr(value, 'items'):
        return {
            k: _without_delete(v)
            for k, v in value.items() if k != '_delete_'
        }
    if isinstance(value, (list, tuple)):
        return type(value)(_without_delete(v) for v in value)
    return value


def apply_retrain(cfg: Config, retrain: Optional[dict]) -> Config:
    """A copy of a search config ``cfg`` in which the keys of the retrain
    recipe ``retrain`` (``train_cfg``, ``train_dataloader``,
    ``default_hooks``, ...) replace its own: the config an exported subnet
    trains with. A pipeline config carries the recipe as ``nas.retrain``,
    a search loop as its ``retrain`` argument."""
    cfg = cfg.copy()
    for key, value in (retrain or {}).items():
        cfg[key] = _without_delete(value)
    return cfg


def _flat(out):
    if torch.is_tensor(out):
        return [out]
    return [t for item in out for t in _flat(item)]


def export_subnet_files(cfg: Config,
                        model: torch.nn.Module,
                        subnet: dict,
                        out_dir: str,
                        name: str,
                        meta: Optional[dict] = None,
                        atol: float = 1e-4) -> Tuple[str, str, float]:
    """Export ``subnet`` of the supernet ``model`` (built from ``cfg``, with
    its trained weights) as ``<out_dir>/<name>.py`` (a plain config: every
    searchable module builds only its chosen candidates) and
    ``<out_dir>/<name>.pth`` (the chosen weights).

    Recalibrate the subnet's BatchNorm statistics first
    (:func:`calibrate_bn`, on every rank): a supernet's running statistics
    mix every sampled subnet. Both files are checked
    before they are written (the exported config's model loads the
    checkpoint with ``strict=True`` and computes what the supernet computes,
    max abs difference <= ``atol``) and written atomically. The model is
    left with ``subnet`` set, in eval mode.

    Returns:
        tuple: The config path, the checkpoint path and the measured max
        abs difference of the outputs.
    """
    set_subnet(model, subnet)
    model.eval()
    exported = export_config(cfg, subnet, model)
    strip_search_settings(exported)
    exported.load_from = None
    exported.resume = False
    static = export_static(model, subnet).eval()
    rebuilt = build_model(exported).eval()
    if any(isinstance(m, BaseMutable) for m in rebuilt.modules()):
        raise RuntimeError('the exported config still builds mutables')
    rebuilt.load_state_dict(static.state_dict(), strict=True)
    from mmnas_tricks.models.resources import input_size
    size = input_size(cfg)
    x = torch.rand(
        1, *size.shape, generator=torch.Generator().manual_seed(0)) * 255
    with torch.no_grad():
        want = _flat(model(x, mode='tensor'))
        got = _flat(rebuilt(x, mode='tensor'))
    diff = max((a - b).abs().max().item() for a, b in zip(want, got))
    if len(want) != len(got) or diff > atol:
        raise RuntimeError(f'exported model differs from the supernet: max '
                           f'abs difference {diff:.3g} > {atol}')
    os.makedirs(out_dir, exist_ok=True)
    cfg_path = osp.join(out_dir, f'{name}.py')
    ckpt_path = osp.join(out_dir, f'{name}.pth')
    save_static_checkpoint(model, ckpt_path, subnet, meta=dict(meta or {}))
    atomic_write_text(cfg_path, exported.pretty_text)
    _zoo_entry(cfg, model, subnet, out_dir, name, cfg_path, ckpt_path,
               dict(meta or {}), size)
    return cfg_path, ckpt_path, diff


def _zoo_entry(cfg, model, subnet, out_dir, name, cfg_path, ckpt_path, meta,
               size) -> None:
    """``<name>.metafile.yml``: a model-zoo entry of the exported subnet
    (its subnet file ``<name>.yaml`` too), with what is known at export:
    FLOPs and params at the input size they were counted at, and the
    search's score (a supernet estimate)."""
    from mmnas_tricks.models import subnet_resources
    from mmnas_tricks.models.resources import traced_input_shape
    from mmnas_tricks.structures import dump_subnet
    from .zoo import dataset_name, task_name, write_zoo_entry
    subnet_path = osp.join(out_dir, f'{name}.yaml')
    if not osp.isfile(subnet_path):
        dump_subnet(subnet, subnet_path, meta=dict(source='export'))
    res = subnet_resources(model, subnet, size.shape)
    seen = traced_input_shape(model, size.shape, subnet)
    metrics = {}
    if meta.get('score') is not None:
        metrics[f'{meta.get("score_key", "score")} (supernet estimate)'] = \
            meta['score']
    write_zoo_entry(
        osp.join(out_dir, f'{name}.metafile.yml'),
        name,
        cfg_path,
        ckpt_path,
        subnet_path,
        res['flops'],
        res['params'],
        metrics,
        dataset=dataset_name(cfg),
        input_size=(seen, size.source),
        task=task_name(cfg),
        notes='exported from a supernet; train it (tools/train.py or '
        'mmdet / mmseg tools/train.py) for stand-alone metrics')
