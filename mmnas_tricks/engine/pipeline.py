"""What a ``tools/nas.py`` pipeline config stands for: a supernet config
with a ``nas`` dict (search loop, retrain recipe, baseline, score key)."""
import copy
import os.path as osp


def stage_configs(cfg, config_path: str) -> dict:
    """The stage configs a pipeline config stands for: ``supernet`` (the
    config without ``nas``), ``search`` (``nas.search`` as ``train_cfg``,
    no custom hooks, no checkpoints, ``nas.retrain`` as the loop's
    ``retrain``), ``baseline`` (the
    path), ``inherit``, ``score_key``, ``finetune`` (``nas.finetune``
    or None: what each exported subnet is fine-tuned with, from its
    exported supernet weights, beside its retraining from scratch) and
    ``rerank`` (``nas.rerank`` with its defaults, or None: the search's
    best subnets re-ranked by a short fine-tune before the retraining,
    :mod:`mmnas_tricks.engine.rerank`; the search then exports the
    candidates), ``hand_front`` (``nas.hand_front``, a results file of
    ``benchmarks/main_job.py``, the path relative to the config, or None:
    the recorded Pareto front of the baseline scaled by hand, which the
    report prints beside the found subnets).

    With ``nas.inherit='baseline'`` the supernet starts from the trained
    baseline's weights (``tools/nas.py`` passes them as ``load_from``): an
    ``InheritWeightsHook`` is added to its hooks unless it has one.

    Raises:
        KeyError: no ``nas`` dict, or one without search / retrain /
            baseline, or with a key not among them.
        ValueError: ``nas.inherit`` is not None or ``'baseline'``, or
            ``nas.search`` names another ``score_key`` than ``nas``.
        FileNotFoundError: the baseline config or the hand-front file
            does not exist.
    """
    if 'nas' not in cfg:
        raise KeyError(f'{config_path} has no nas dict; see tools/nas.py')
    nas = copy.deepcopy(cfg.nas)
    valid = ('search', 'retrain', 'baseline', 'inherit', 'score_key',
             'finetune', 'rerank', 'hand_front')
    for key in ('search', 'retrain', 'baseline'):
        if key not in nas:
            raise KeyError(f'nas.{key} is missing in {config_path}; valid '
                           f'keys: {", ".join(valid)}')
    unknown = sorted(set(nas) - set(valid))
    if unknown:
        raise KeyError(f'nas keys {unknown} in {config_path} are not among '
                       f'{list(valid)}')
    inherit = nas.get('inherit')
    if inherit not in (None, 'baseline'):
        raise ValueError(f'nas.inherit={inherit!r} in {config_path} must be '
                         "None or 'baseline'")
    from .hooks.utils import hook_configs
    supernet = cfg.copy()
    supernet.pop('nas')
    hooks = list(supernet.get('custom_hooks', []))
    if inherit and not hook_configs(hooks, 'InheritWeightsHook'):
        hooks.insert(0, dict(type='mmnas_tricks.InheritWeightsHook'))
        supernet.custom_hooks = hooks
    from .rerank import check_rerank
    rerank = check_rerank(nas.get('rerank'), f'{config_path} nas')
    score_key = nas.get('score_key', 'coco/bbox_mAP')
    if nas['search'].get('score_key', score_key) != score_key:
        raise ValueError(
            f'nas.search.score_key={nas["search"]["score_key"]!r} in '
            f'{config_path} is not nas.score_key={score_key!r}: the search '
            'and the report would rank by different metrics; set it once, '
            'as nas.score_key (the search takes it from there)')
    search = supernet.copy()
    search.train_cfg = dict(
        nas['search'], retrain=nas['retrain'], score_key=score_key)
    if rerank is not None:
        search.train_cfg = dict(
            search.train_cfg,
            rerank=dict(topk=rerank['topk'], group_by=rerank['group_by']))
    search.custom_hooks = []  # the loop sets the candidates
    search.default_hooks = dict(search.default_hooks, checkpoint=None)

    def path_of(key):
        path = nas[key]
        if not osp.isabs(path):
            path = osp.normpath(osp.join(osp.dirname(config_path), path))
        if not osp.isfile(path):
            raise FileNotFoundError(f'nas.{key} {path!r} in {config_path} '
                                    'does not exist')
        return path

    baseline = path_of('baseline')
    hand_front = path_of('hand_front') if nas.get('hand_front') else None
    return dict(
        supernet=supernet,
        search=search,
        baseline=baseline,
        inherit=inherit,
        score_key=score_key,
        finetune=nas.get('finetune'),
        rerank=rerank,
        hand_front=hand_front)


def search_data(cfg) -> dict:
    """The search's held-out data of a pipeline config (``nas.search``'s
    ``val_dataloader`` and ``evaluator``, each None where unset or where
    the config has no ``nas``), as keyword arguments of
    :class:`~mmnas_tricks.engine.rank.SupernetScorer` and
    :func:`~mmnas_tricks.engine.rank.finetune_estimate_config`: scoring
    outside the pipeline on what the search scored on."""
    search = (cfg.get('nas') or {}).get('search') or {}
    return dict(
        val_dataloader=search.get('val_dataloader'),
        evaluator=search.get('evaluator'))


def retrain_recipe(cfg):
    """A pipeline config's retrain recipe (``nas.retrain``: what an exported
    subnet trains with), or None: the ``retrain`` argument of
    :func:`~mmnas_tricks.engine.rank.standalone_config` and
    :func:`~mmnas_tricks.engine.rank.finetune_estimate_config`."""
    return (cfg.get('nas') or {}).get('retrain')
