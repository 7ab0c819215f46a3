"""What ``tools/train.py`` and ``tools/test.py`` share: config loading and the
launcher set-up (including distributed runs on CPU-only machines)."""
import copy
import difflib
import glob
import os
import os.path as osp
from typing import Optional

import torch
from mmengine.config import Config

LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """Read a config, failing clearly when the file does not exist.

    Raises:
        FileNotFoundError: naming the path and the closest configs under
            ``configs/``.
    """
    if not osp.isfile(path):
        root = osp.join(
            osp.dirname(osp.dirname(osp.dirname(__file__))), 'configs')
        known = [
            osp.relpath(p, osp.dirname(root))
            for p in glob.glob(osp.join(root, '**', '*.py'), recursive=True)
            if '_base_' not in p
        ]
        close = difflib.get_close_matches(path, known, n=3, cutoff=0.5)
        hint = f'; did you mean {close}?' if close else ''
        raise FileNotFoundError(f'config file {path!r} does not exist{hint}')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def _slurm_env_for_cpu() -> None:
    """Fill the torch.distributed env:// variables from SLURM's, as mmengine's
    slurm launcher does, without its ``torch.cuda.set_device``."""
    import subprocess
    node_list = os.environ['SLURM_NODELIST']
    os.environ.setdefault('RANK', os.environ['SLURM_PROCID'])
    os.environ.setdefault('WORLD_SIZE', os.environ['SLURM_NTASKS'])
    os.environ.setdefault('LOCAL_RANK', os.environ.get('SLURM_LOCALID', '0'))
    if 'MASTER_ADDR' not in os.environ:
        addr = subprocess.getoutput(
            f'scontrol show hostname {node_list} | head -n1')
        os.environ['MASTER_ADDR'] = addr
    os.environ.setdefault('MASTER_PORT', '29500')


def setup_launcher(cfg: Config, launcher: str) -> None:
    """Record the launcher in ``cfg`` and prepare CPU-only distributed runs.

    mmengine 0.10's launchers call ``torch.cuda.set_device`` and its default
    DDP wrapper passes ``device_ids=[LOCAL_RANK]``; both fail without CUDA.
    On a machine without CUDA this initialises the ``gloo`` process group
    itself (mmengine then keeps it) and sets ``device_ids=None`` on the model
    wrapper. With CUDA nothing but ``cfg.launcher`` changes.

    Raises:
        ValueError: ``launcher`` is not one of :data:`LAUNCHERS`.
    """
    if launcher not in LAUNCHERS:
        raise ValueError(
            f'launcher {launcher!r} is not one of {list(LAUNCHERS)}')
    cfg.launcher = launcher
    if launcher == 'none' or torch.cuda.is_available():
        return
    import torch.distributed as dist
    if launcher == 'slurm':
        _slurm_env_for_cpu()
    elif launcher == 'mpi':
        os.environ.setdefault('RANK',
                              os.environ.get('OMPI_COMM_WORLD_RANK', '0'))
        os.environ.setdefault('WORLD_SIZE',
                              os.environ.get('OMPI_COMM_WORLD_SIZE', '1'))
        os.environ.setdefault(
            'LOCAL_RANK', os.environ.get('OMPI_COMM_WORLD_LOCAL_RANK', '0'))
        os.environ.setdefault('MASTER_ADDR', '127.0.0.1')
        os.environ.setdefault('MASTER_PORT', '29500')
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    wrapper = cfg.get('model_wrapper_cfg')
    if wrapper is None:
        # what mmengine's Runner.wrap_model uses without a wrapper config
        wrapper = dict(
            type='MMDistributedDataParallel',
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    import mmengine.model  # noqa: F401 (registers mmengine's wrappers)
    from mmengine.registry import MODEL_WRAPPERS
    from torch.nn.parallel import DistributedDataParallel
    wrapper_cls = wrapper['type']
    if isinstance(wrapper_cls, str):
        wrapper_cls = MODEL_WRAPPERS.get(wrapper_cls)
    if isinstance(wrapper_cls, type) and issubclass(wrapper_cls,
                                                    DistributedDataParallel):
        wrapper['device_ids'] = None  # CPU modules: no device ids
    cfg.model_wrapper_cfg = wrapper


def finish_launcher() -> None:
    """End a distributed run cleanly: every rank waits for the others, then
    the process group is destroyed. Without it the gloo threads could still
    be running when the interpreter exits, and a rank aborted now and then
    ("terminate called without an active exception") after finishing its
    work. Nothing to do in a single-process run."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def add_common_args(parser) -> None:
    """Add the arguments that train, test and search tools share:
    ``--cfg-options``, ``--trust-global``, ``--launcher``, ``--local_rank``."""
    from mmengine.config import DictAction
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file.')
    parser.add_argument(
        '--trust-global',
        action='append',
        default=[],
        metavar='MODULE.CLASS',
        help='allow one more pickled class in checkpoints (weights_only '
        'stays on); only for checkpoints whose source you trust')
    parser.add_argument(
        '--launcher', choices=LAUNCHERS, default='none', help='job launcher')
    # torch.distributed.launch passes --local-rank, older ones --local_rank
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def finish_common_args(args) -> None:
    """Export ``LOCAL_RANK`` and allow-list ``--trust-global`` classes."""
    from .checkpoint import register_checkpoint_safe_globals
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    register_checkpoint_safe_globals(args.trust_global)


def set_work_dir(cfg: Config, config_path: str,
                 work_dir: Optional[str]) -> None:
    """work_dir priority: CLI > config > ``./work_dirs/<config name>``."""
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config_path))[0])


def build_runner(cfg: Config):
    """``Runner.from_cfg`` or the config's ``runner_type``."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    return RUNNERS.build(cfg)


def resuming(runner) -> bool:
    """Whether ``runner`` was asked to resume (``resume=True``, ``--resume``).

    mmengine 0.10 has no public accessor for it: the flag is kept only in
    the private ``Runner._resume`` (``runner.cfg.resume`` is absent when a
    Runner is built from arguments instead of a config), so this is the one
    place in the package that reads it.
    """
    return bool(getattr(runner, '_resume', False))


def build_model(cfg: Config):
    """Build ``cfg.model`` as the Runner would: in the config's
    ``default_scope`` (mmdet's by default), outside any Runner. ``cfg`` is
    left as it was (mmdet's detectors write their ``train_cfg`` /
    ``test_cfg`` into the head's config they are given)."""
    from mmengine.registry import MODELS, DefaultScope
    scope = cfg.get('default_scope') or 'mmdet'
    with DefaultScope.overwrite_default_scope(scope):
        return MODELS.build(copy.deepcopy(cfg.model))
