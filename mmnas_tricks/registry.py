"""The registries of mmnas_tricks: one child of every mmengine root registry.

Every child carries ``locations=`` so that ``type='mmnas_tricks.X'`` resolves
from inside an mmdet or mmseg config without ``custom_imports``: mmengine
imports ``mmnas_tricks.registry`` when it meets the ``mmnas_tricks`` scope and
then the modules listed in ``locations``.

A root without a child here would make mmengine fall back silently to the root
registry, so :data:`ROOT_TO_CHILD` pairs each root with its child and a test
checks that no mmengine root is left out.
"""
from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import INFERENCERS as MMENGINE_INFERENCERS
from mmengine.registry import LOG_PROCESSORS as MMENGINE_LOG_PROCESSORS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import \
    RUNNER_CONSTRUCTORS as MMENGINE_RUNNER_CONSTRUCTORS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import STRATEGIES as MMENGINE_STRATEGIES
from mmengine.registry import TASK_UTILS as MMENGINE_TASK_UTILS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import VISBACKENDS as MMENGINE_VISBACKENDS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import \
    WEIGHT_INITIALIZERS as MMENGINE_WEIGHT_INITIALIZERS
from mmengine.registry import Registry

# Runners and their constructors.
RUNNERS = Registry(
    'runner', parent=MMENGINE_RUNNERS, locations=['mmnas_tricks.engine'])
RUNNER_CONSTRUCTORS = Registry(
    'runner constructor',
    parent=MMENGINE_RUNNER_CONSTRUCTORS,
    locations=['mmnas_tricks.engine'])
# Training / validation / search loops.
LOOPS = Registry(
    'loop', parent=MMENGINE_LOOPS, locations=['mmnas_tricks.engine'])
# Hooks: one trick per file under engine/hooks.
HOOKS = Registry(
    'hook', parent=MMENGINE_HOOKS, locations=['mmnas_tricks.engine'])
# Distributed strategies (mmengine's FSDP / DeepSpeed wrappers).
STRATEGIES = Registry(
    'strategy', parent=MMENGINE_STRATEGIES, locations=['mmnas_tricks.engine'])

# Data.
DATASETS = Registry(
    'dataset', parent=MMENGINE_DATASETS, locations=['mmnas_tricks.datasets'])
DATA_SAMPLERS = Registry(
    'data sampler',
    parent=MMENGINE_DATA_SAMPLERS,
    locations=['mmnas_tricks.datasets'])
TRANSFORMS = Registry(
    'transform',
    parent=MMENGINE_TRANSFORMS,
    locations=['mmnas_tricks.datasets'])

# Models: mutables, candidate ops, searchable backbones / necks / heads. A
# searchable one is also decorated with models.contract.searchable, which
# checks its contract (fixed_subnet=None, ...) each time it is built.
MODELS = Registry(
    'model', parent=MMENGINE_MODELS, locations=['mmnas_tricks.models'])
MODEL_WRAPPERS = Registry(
    'model_wrapper',
    parent=MMENGINE_MODEL_WRAPPERS,
    locations=['mmnas_tricks.models'])
WEIGHT_INITIALIZERS = Registry(
    'weight initializer',
    parent=MMENGINE_WEIGHT_INITIALIZERS,
    locations=['mmnas_tricks.models'])

# Optimisation.
OPTIMIZERS = Registry(
    'optimizer', parent=MMENGINE_OPTIMIZERS, locations=['mmnas_tricks.engine'])
OPTIM_WRAPPERS = Registry(
    'optim_wrapper',
    parent=MMENGINE_OPTIM_WRAPPERS,
    locations=['mmnas_tricks.engine'])
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor',
    parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
    locations=['mmnas_tricks.engine'])
PARAM_SCHEDULERS = Registry(
    'parameter scheduler',
    parent=MMENGINE_PARAM_SCHEDULERS,
    locations=['mmnas_tricks.engine'])

# Evaluation.
METRICS = Registry(
    'metric', parent=MMENGINE_METRICS, locations=['mmnas_tricks.engine'])
EVALUATOR = Registry(
    'evaluator', parent=MMENGINE_EVALUATOR, locations=['mmnas_tricks.engine'])

# Task utilities (assigners, samplers, coders, ...).
TASK_UTILS = Registry(
    'task util', parent=MMENGINE_TASK_UTILS, locations=['mmnas_tricks.models'])

# Visualisation and logging.
VISUALIZERS = Registry(
    'visualizer',
    parent=MMENGINE_VISUALIZERS,
    locations=['mmnas_tricks.engine'])
VISBACKENDS = Registry(
    'vis_backend',
    parent=MMENGINE_VISBACKENDS,
    locations=['mmnas_tricks.engine'])
LOG_PROCESSORS = Registry(
    'log_processor',
    parent=MMENGINE_LOG_PROCESSORS,
    locations=['mmnas_tricks.engine'])

# Inference and plain functions (collate functions, ...).
INFERENCERS = Registry(
    'inferencer',
    parent=MMENGINE_INFERENCERS,
    locations=['mmnas_tricks.engine'])
FUNCTIONS = Registry(
    'function', parent=MMENGINE_FUNCTIONS, locations=['mmnas_tricks.datasets'])

#: Each mmengine root registry paired with its child here.
ROOT_TO_CHILD = {
    MMENGINE_RUNNERS: RUNNERS,
    MMENGINE_RUNNER_CONSTRUCTORS: RUNNER_CONSTRUCTORS,
    MMENGINE_LOOPS: LOOPS,
    MMENGINE_HOOKS: HOOKS,
    MMENGINE_STRATEGIES: STRATEGIES,
    MMENGINE_DATASETS: DATASETS,
    MMENGINE_DATA_SAMPLERS: DATA_SAMPLERS,
    MMENGINE_TRANSFORMS: TRANSFORMS,
    MMENGINE_MODELS: MODELS,
    MMENGINE_MODEL_WRAPPERS: MODEL_WRAPPERS,
    MMENGINE_WEIGHT_INITIALIZERS: WEIGHT_INITIALIZERS,
    MMENGINE_OPTIMIZERS: OPTIMIZERS,
    MMENGINE_OPTIM_WRAPPERS: OPTIM_WRAPPERS,
    MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS: OPTIM_WRAPPER_CONSTRUCTORS,
    MMENGINE_PARAM_SCHEDULERS: PARAM_SCHEDULERS,
    MMENGINE_METRICS: METRICS,
    MMENGINE_EVALUATOR: EVALUATOR,
    MMENGINE_TASK_UTILS: TASK_UTILS,
    MMENGINE_VISUALIZERS: VISUALIZERS,
    MMENGINE_VISBACKENDS: VISBACKENDS,
    MMENGINE_LOG_PROCESSORS: LOG_PROCESSORS,
    MMENGINE_INFERENCERS: INFERENCERS,
    MMENGINE_FUNCTIONS: FUNCTIONS,
}
