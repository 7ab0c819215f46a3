"""Low-fidelity (proxy) versions of a config: fewer channels, lower
resolution, fewer epochs, fewer training images (EcoNAS)."""
import copy
import math
from typing import Optional

from mmengine.config import Config, ConfigDict

#: Channel keys scaled by ``width_div`` wherever they appear in ``model``.
CHANNEL_KEYS = ('base_channels', 'stem_channels', 'in_channels',
                'out_channels', 'feat_channels', 'channels')
RESIZES = ('Resize', 'RandomResize', 'RandomChoiceResize')


def _div(value, div: int, where: str):
    if isinstance(value, (list, tuple)):
        return type(value)(_div(v, div, where) for v in value)
    if not isinstance(value, int) or isinstance(value, bool):
        return value
    if value % div:
        raise ValueError(f'width_div={div}: {where}={value} is not a '
                         'multiple; choose a divisor of every channel count')
    return value // div


def _scale_channels(node, div: int, path: str = 'model') -> bool:
    """Divide the channel counts (and GroupNorm group counts) under
    ``node`` in place; whether any was found."""
    found = False
    if isinstance(node, dict):
        for key in list(node):
            value = node[key]
            where = f'{path}.{key}'
            if key in CHANNEL_KEYS and key != 'in_channels' or \
                    key == 'in_channels' and path != 'model.backbone':
                new = _div(value, div, where)
                found |= new != value
                node[key] = new
            elif key == 'widen_factor' and isinstance(value, (int, float)):
                node[key] = value / div
                found = True
            elif key == 'num_groups' and node.get('type') == 'GN':
                node[key] = max(1, value // div)
            else:
                found |= _scale_channels(value, div, where)
    elif isinstance(node, (list, tuple)):
        for i, item in enumerate(node):
            found |= _scale_channels(item, div, f'{path}[{i}]')
    return found


def _loaders(cfg):
    for key, value in cfg.items():
        if key.endswith('dataloader') and isinstance(value, dict):
            yield key, value
    for hook in cfg.get('custom_hooks', []) or []:
        for key, value in hook.items():
            if key.endswith('dataloader') and isinstance(value, dict):
                yield key, value


def _dataset(loader: dict) -> dict:
    ds = loader.get('dataset', {})
    while isinstance(ds, dict) and 'dataset' in ds:
        ds = ds['dataset']
    return ds


def _scale_size(value, div: int):
    if isinstance(value, (list, tuple)) and value and \
            isinstance(value[0], (list, tuple)):
        return type(value)(_scale_size(v, div) for v in value)
    if isinstance(value, (list, tuple)):
        return type(value)(max(1, int(round(v / div))) for v in value)
    if isinstance(value, (int, float)):
        return max(1, int(round(value / div)))
    return value


def proxy_config(cfg: Config,
                 width_div: int = 1,
                 resolution_div: float = 1,
                 max_epochs: Optional[int] = None,
                 data_fraction: Optional[float] = None) -> Config:
    """A proxy (low-fidelity) copy of ``cfg`` (Zhou et al., "EcoNAS",
    CVPR 2020; docs/tricks.md, T4.1), named in EcoNAS's notation by
    :func:`proxy_tag`.

    - ``width_div``: every channel count of the model (backbone
      ``base_channels`` / ``stem_channels``, neck and head ``in_channels``,
      ``out_channels``, ``feat_channels``, ``channels``, ``widen_factor``)
      divided, GroupNorm group counts too (channels per group kept);
    - ``resolution_div``: every ``Resize`` / ``RandomResize`` scale,
      ``RandomCrop`` size and the data preprocessor's ``size`` divided;
    - ``max_epochs``: the training length (validation at the end, epoch
      schedulers stretched to it);
    - ``data_fraction``: the first fraction of the training images (the
      ``subset`` of the digits datasets, or mmengine's ``indices``).

    EcoNAS found fewer channels more reliable than lower resolution, and
    more images with fewer epochs better than the reverse; measure the rank
    consistency of a proxy with ``tools/proxy_rank.py`` before trusting it.

    Raises:
        ValueError: a factor is invalid, a channel count is not divisible,
            or the config has nothing to scale for a factor given.
    """
    if int(width_div) != width_div or width_div < 1:
        raise ValueError(f'width_div={width_div} must be an integer >= 1')
    if resolution_div <= 0:
        raise ValueError(f'resolution_div={resolution_div} must be > 0')
    if max_epochs is not None and max_epochs < 1:
        raise ValueError(f'max_epochs={max_epochs} must be >= 1')
    if data_fraction is not None and not 0 < data_fraction <= 1:
        raise ValueError(f'data_fraction={data_fraction} is not in (0, 1]')
    cfg = Config(
        copy.deepcopy(cfg.to_dict(keep_imported=True)), filename=cfg.filename)
    if width_div > 1 and not _scale_channels(cfg.model, int(width_div)):
        raise ValueError('width_div: no channel count found in the model '
                         f'config (looked for {list(CHANNEL_KEYS)})')
    if resolution_div != 1:
        found = False
        for _, loader in _loaders(cfg):
            for t in _dataset(loader).get('pipeline', []) or []:
                name = str(t.get('type', '')).split('.')[-1]
                if name in RESIZES and 'scale' in t:
                    t['scale'] = _scale_size(t['scale'], resolution_div)
                    found = True
                if name == 'RandomCrop' and 'crop_size' in t:
                    t['crop_size'] = _scale_size(t['crop_size'],
                                                 resolution_div)
        pre = cfg.model.get('data_preprocessor') or {}
        if pre.get('size') is not None:
            pre['size'] = _scale_size(pre['size'], resolution_div)
        if not found:
            raise ValueError('resolution_div: no Resize transform with a '
                             'scale in any dataloader pipeline')
    if max_epochs is not None:
        cfg.train_cfg['max_epochs'] = int(max_epochs)
        cfg.train_cfg['val_interval'] = int(max_epochs)
        for sched in cfg.get('param_scheduler', []) or []:
            if sched.get('by_epoch', True) and 'T_max' in sched:
                sched['T_max'] = int(max_epochs)
                sched['end'] = int(max_epochs)
    if data_fraction is not None and data_fraction < 1:
        ds = _dataset(cfg.train_dataloader)
        digits_types = ('DigitsCocoDataset', 'DigitsSegDataset')
        if 'subset' in ds or str(ds.get('type', '')).endswith(digits_types):
            start, stop = ds.get('subset') or (0.0, 1.0)
            ds['subset'] = (start, start + (stop - start) * data_fraction)
        elif isinstance(ds.get('indices'), int):
            ds['indices'] = max(1, int(ds['indices'] * data_fraction))
        else:
            raise ValueError(
                'data_fraction: the training dataset has neither subset= '
                '(digits) nor an int indices= to shrink; set indices= to '
                'its size')
    cfg['proxy'] = ConfigDict(
        width_div=int(width_div),
        resolution_div=resolution_div,
        max_epochs=max_epochs,
        data_fraction=data_fraction)
    return cfg


def proxy_tag(width_div: int = 1,
              resolution_div: float = 1,
              max_epochs: Optional[int] = None,
              data_fraction: Optional[float] = None) -> str:
    """EcoNAS's name of a proxy: ``c{width_div}r{resolution_div}s{...}e{...}``
    (0 for no reduction; ``s`` is the fraction of images left out, in
    tenths, ``e`` the epochs)."""
    c = 0 if width_div == 1 else width_div
    r = 0 if resolution_div == 1 else resolution_div
    s = 0 if not data_fraction or data_fraction >= 1 else math.ceil(
        10 * (1 - data_fraction))
    e = max_epochs if max_epochs is not None else 0
    r = int(r) if float(r).is_integer() else r
    return f'c{c}r{r}s{s}e{e}'
