"""Model-zoo entries for found architectures: an OpenMMLab-style metafile
(``Models`` list, as mmdet's / mmseg's ``metafile.yml``) next to the
exported config."""
import os.path as osp
from typing import Dict, Optional

from mmnas_tricks.utils.io import atomic_write_text


def _rel(path: str, folder: str) -> str:
    return osp.relpath(path, folder) if path else path


def dataset_name(cfg) -> str:
    """The training dataset's type name of a config, through dataset
    wrappers (``RepeatDataset``, ``ConcatDataset`` of one, ...): what a
    model-zoo entry names as its dataset."""
    ds = (cfg.get('train_dataloader') or {}).get('dataset') or {}
    while 'dataset' in ds:
        ds = ds['dataset']
    return str(ds.get('type', 'unknown')).split('.')[-1]


def task_name(cfg) -> str:
    """The model-zoo task of a config's model."""
    return 'Semantic Segmentation' if 'decode_head' in cfg.model \
        else 'Object Detection'


def write_zoo_entry(path: str,
                    name: str,
                    config: str,
                    weights: str,
                    subnet_file: str,
                    flops: int,
                    params: int,
                    metrics: Dict[str, float],
                    dataset: str,
                    task: str = 'Object Detection',
                    notes: Optional[str] = None,
                    input_size: Optional[tuple] = None) -> str:
    """Write a metafile with one model to ``path`` (atomically): its config,
    checkpoint and subnet file (paths relative to the metafile), FLOPs and
    parameters (of the whole model) with the input size they were counted
    at (``input_size``: ((C, H, W), where it came from)), and metrics on
    ``dataset``. Returns ``path``.

    Example (the layout mmdet's model index reads)::

        Models:
          - Name: found_fcos
            Config: best_subnet.py
            Weights: best_subnet.pth
            Metadata: {FLOPs (G): 0.156, Parameters (M): 1.149,
                       Input size: 128x128, Subnet: best_subnet.yaml}
            Results:
              - {Task: Object Detection, Dataset: digits,
                 Metrics: {coco/bbox_mAP: 0.749}}
    """
    import yaml

    from mmnas_tricks.models.resources import size_text
    folder = osp.dirname(osp.abspath(path))
    metadata = {
        'FLOPs (G)': round(flops / 1e9, 4),
        'Parameters (M)': round(params / 1e6, 4)
    }
    if input_size is not None:
        metadata['Input size'] = size_text(input_size[0])
        metadata['Input size from'] = input_size[1]
    metadata['Subnet'] = _rel(osp.abspath(subnet_file),
                              folder) if subnet_file else None
    entry = dict(
        Name=name,
        Config=_rel(osp.abspath(config), folder),
        Weights=_rel(osp.abspath(weights), folder),
        Metadata=metadata,
        Results=[
            dict(
                Task=task,
                Dataset=dataset,
                Metrics={k: round(float(v), 4)
                         for k, v in metrics.items()})
        ])
    if notes:
        entry['Notes'] = notes
    atomic_write_text(path,
                      yaml.safe_dump(dict(Models=[entry]), sort_keys=False))
    return path
