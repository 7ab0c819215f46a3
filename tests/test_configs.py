"""Every file under configs/ parses and every `type` in it resolves in the
registry of its scope."""
import os.path as osp

import mmengine.registry as R
import pytest
from mmengine.config import Config

from mmnas_tricks.testing import list_configs

# dict keys under `model` whose `type` is a task utility, not a model
_TASK_UTIL_KEYS = {
    'assigner', 'sampler', 'bbox_coder', 'anchor_generator', 'prior_generator',
    'point_generator', 'iou_calculator', 'match_cost', 'coder', 'bbox_sampler'
}
# dicts whose `type` names an mmcv.ops function or class looked up by name
# (nms; RoIAlign: mmdet's BaseRoIExtractor does getattr(mmcv.ops, type)),
# not a registered class
_UNREGISTERED_KEYS = {'nms', 'roi_layer'}


def _registry_for(path):
    """The mmengine root registry that builds the dict at ``path``: decided
    by the innermost key that says what it holds (a hook's
    ``arch_dataloader``, a search loop's ``val_dataloader`` / ``evaluator``,
    the ``nas`` dict's ``search`` loop and ``retrain`` keys, ...)."""
    top = path[0]
    keys = set(path)
    if 'pipeline' in keys or any('pipeline' in str(k) for k in path):
        return R.TRANSFORMS
    if top == 'model':
        if 'init_cfg' in keys:
            return R.WEIGHT_INITIALIZERS
        if keys & _TASK_UTIL_KEYS:
            return R.TASK_UTILS
        return R.MODELS
    for i in range(len(path) - 1, -1, -1):
        key = str(path[i])
        rest = path[i + 1:]
        if i > 0 and path[i - 1] == 'default_hooks':  # a hook's name
            return R.HOOKS
        if key.endswith('dataloader'):
            if rest and rest[-1] in ('sampler', 'batch_sampler'):
                return R.DATA_SAMPLERS
            return R.DATASETS
        if key.endswith('evaluator'):
            return R.METRICS
        if key == 'optim_wrapper':
            if path[-1] == 'optimizer':
                return R.OPTIMIZERS
            if path[-1] == 'constructor':
                return R.OPTIM_WRAPPER_CONSTRUCTORS
            return R.OPTIM_WRAPPERS
        if key == 'param_scheduler':
            return R.PARAM_SCHEDULERS
        if key in ('default_hooks', 'custom_hooks'):
            return R.HOOKS
        if key in ('train_cfg', 'val_cfg',
                   'test_cfg') or (i == 1 and path[:2] == ('nas', 'search')):
            return R.LOOPS
        if key == 'visualizer':
            return R.VISBACKENDS if 'vis_backends' in keys else R.VISUALIZERS
        if key == 'log_processor':
            return R.LOG_PROCESSORS
        if key == 'model_wrapper_cfg':
            return R.MODEL_WRAPPERS
    return None


def _typed_dicts(obj, path=()):
    if isinstance(obj, dict):
        if 'type' in obj and path:
            yield path, obj['type']
        for k, v in obj.items():
            yield from _typed_dicts(v, path + (k, ))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _typed_dicts(v, path + (f'[{i}]', ))


CONFIGS = list_configs(include_base=False)
BASES = [p for p in list_configs() if p not in CONFIGS]


def test_there_are_configs():
    assert len(CONFIGS) >= 3
    assert any('/_base_/' in p for p in BASES)


@pytest.mark.parametrize('path', BASES, ids=osp.basename)
def test_base_configs_parse(path):
    Config.fromfile(path)


def _unresolved_types(cfg):
    """(unresolved [(path, type, registry)], number of types checked)."""
    scope = cfg.get('default_scope')
    assert scope in ('mmdet', 'mmseg', 'mmnas_tricks'), scope
    checked, unresolved = 0, []
    for p, type_ in _typed_dicts(cfg.to_dict()):
        if not isinstance(type_, str) or p[-1] in _UNREGISTERED_KEYS:
            continue
        root = _registry_for(p)
        if root is None:
            continue
        with root.switch_scope_and_registry(scope) as registry:
            if registry.get(type_) is None:
                unresolved.append(('.'.join(map(str, p)), type_, root.name))
        checked += 1
    return unresolved, checked


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_types_resolve(path):
    unresolved, checked = _unresolved_types(Config.fromfile(path))
    assert unresolved == []
    assert checked >= 10


def test_types_resolve_check_can_fail():
    cfg = Config.fromfile(CONFIGS[0])
    cfg.model.neck.type = 'FPNN'
    cfg.train_dataloader.dataset.type = 'mmnas_tricks.NoSuchDataset'
    cfg.train_dataloader.dataset.pipeline[0].type = 'LoadImageFromFil'
    unresolved, _ = _unresolved_types(cfg)
    assert sorted(t for _, t, _ in unresolved) == [
        'FPNN', 'LoadImageFromFil', 'mmnas_tricks.NoSuchDataset'
    ]


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_builds_its_model(path):
    """Every config builds its model here, without its data or any
    download (model-zoo ``load_from`` / ``init_cfg`` are only read when a
    run starts)."""
    from mmnas_tricks.utils import build_model, load_config
    cfg = load_config(path)
    if 'model' not in cfg:
        pytest.skip('no model (a pipeline overlay)')
    model = build_model(cfg)
    assert sum(p.numel() for p in model.parameters()) > 0


def _pipeline_configs_with_baseline():
    out = []
    for path in list_configs():
        cfg = Config.fromfile(path)
        if (cfg.get('nas') or {}).get('baseline'):
            out.append(path)
    return out


@pytest.mark.parametrize('path', _pipeline_configs_with_baseline())
def test_retrain_recipe_is_the_baselines(path):
    """An exported subnet of a pipeline config that names a baseline
    trains with the baseline's recipe (its optimizer, schedule, loop and
    data), not the supernet's fine-tuning one: else the found subnets and
    the hand-designed baseline are not compared on equal terms."""
    from mmnas_tricks.engine.export import apply_retrain
    cfg = Config.fromfile(path)
    baseline = Config.fromfile(osp.join(osp.dirname(path), cfg.nas.baseline))
    retrain = apply_retrain(cfg, cfg.nas.get('retrain'))
    for key in ('optim_wrapper', 'param_scheduler', 'train_cfg',
                'train_dataloader'):
        assert retrain.get(key) == baseline.get(key), (path, key)
