"""What a ``tools/nas.py`` pipeline config stands for: a supernet config
with a ``nas`` dict (search loop, retrain recipe, baseline, score key)."""
import copy
import os.path as osp


def stage_configs(cfg, config_path: str) -> dict:
    """The stage configs a pipeline config stands for: ``supernet`` (the
    config without ``nas``), ``search`` (``nas.search`` as ``train_cfg``,
    no custom hooks, no checkpoints, ``retrain`` set), ``baseline`` (the
    path) and ``score_key``.

    Raises:
        KeyError: no ``nas`` dict, or one without search / retrain /
            baseline.
        FileNotFoundError: the baseline config does not exist.
    """
    if 'nas' not in cfg:
        raise KeyError(f'{config_path} has no nas dict; see tools/nas.py')
    nas = copy.deepcopy(cfg.nas)
    for key in ('search', 'retrain', 'baseline'):
        if key not in nas:
            raise KeyError(f'nas.{key} is missing in {config_path}; valid '
                           'keys: search, retrain, baseline, score_key')
    supernet = cfg.copy()
    supernet.pop('nas')
    search = supernet.copy()
    search.train_cfg = nas['search']
    search.custom_hooks = []  # the loop sets the candidates
    search.default_hooks = dict(search.default_hooks, checkpoint=None)
    search.retrain = nas['retrain']
    baseline = nas['baseline']
    if not osp.isabs(baseline):
        baseline = osp.normpath(osp.join(osp.dirname(config_path), baseline))
    if not osp.isfile(baseline):
        raise FileNotFoundError(f'nas.baseline {baseline!r} does not exist')
    return dict(
        supernet=supernet,
        search=search,
        baseline=baseline,
        score_key=nas.get('score_key', 'coco/bbox_mAP'))
