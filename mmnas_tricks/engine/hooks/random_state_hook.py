"""The random states of a training in its checkpoints, so that a training
killed and resumed ends with the weights an uninterrupted one ends with."""
import random
from typing import Optional

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop

from mmnas_tricks.registry import HOOKS

KEY = 'random_state'


def get_random_state() -> dict:
    """This process's Python, numpy, torch (and CUDA) random states in
    plain types (lists, ints, a uint8 tensor), which a ``weights_only``
    checkpoint load reads without any allow-listed class."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = dict(
        python=[version, list(internal), gauss],
        numpy=[
            kind, [int(k) for k in keys],
            int(pos),
            int(has_gauss),
            float(cached)
        ],
        torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_random_state(state: dict) -> None:
    """Restore what :func:`get_random_state` returned."""
    version, internal, gauss = state['python']
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state['numpy']
    np.random.set_state(
        (kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Save the random states of every rank (Python ``random``, numpy,
    torch, CUDA) with each checkpoint and restore them when the training
    resumes, which mmengine's checkpoints do not do (they keep the seed
    only): a resumed run then draws what the uninterrupted run drew (drop
    path masks, path dropout, the dataloader iterators' base seeds, random
    transforms in the main process, ...).

    The states are taken at the end of each training epoch, before anything
    after it (validation, BN calibration, other hooks) draws, and are set
    back at the start of the next epoch, in the uninterrupted run too, so
    that the next epoch starts from the same states whether it follows the
    previous one or a resume from its checkpoint. A checkpoint loaded with
    ``load_from`` but not resumed is not at the epoch its states belong to
    and leaves the states alone. The train dataloader draws its iterators'
    base seeds from a generator of its own (created here when it has none),
    since a persistent-worker iterator is created at a resumed epoch but
    not in the uninterrupted run.

    What this does not cover (docs/search_and_training.md, "Resuming a
    training"): the random streams inside dataloader worker processes that
    live across epochs (``persistent_workers=True`` with random transforms:
    a resumed run's workers restart from mmengine's worker seed);
    iteration-based loops (their checkpoints fall mid-stream: this hook
    warns and does nothing there); a resume on another number of ranks
    (warned, not restored). The subnet-sampling hooks need nothing here:
    they draw from ``random.Random`` seeded by (seed, iteration).
    """

    priority = 'VERY_HIGH'  # restore before other hooks draw

    def __init__(self) -> None:
        self._taken: Optional[dict] = None  # {'epoch': e, 'states': [...]}
        self._loaded: Optional[dict] = None

    def before_train(self, runner) -> None:
        if not isinstance(runner.train_loop, EpochBasedTrainLoop):
            print_log(
                'RandomStateHook: the training loop is '
                f'{type(runner.train_loop).__name__}, not epoch-based: '
                'random states are not saved or restored',
                logger='current',
                level=30)
            return
        loader = runner.train_loop.dataloader
        if getattr(loader, 'generator', True) is None:
            # A DataLoader iterator draws its workers' base seed from the
            # global torch stream when it is created: every epoch without
            # persistent workers, once per run with them, i.e. at the
            # resumed epoch but not in the uninterrupted run. Drawn from a
            # generator of its own, the global stream is the same in both;
            # the workers are seeded by mmengine's worker_init_fn anyway.
            loader.generator = torch.Generator().manual_seed(
                int(runner.seed or 0))

    def after_train_epoch(self, runner) -> None:
        if not isinstance(runner.train_loop, EpochBasedTrainLoop):
            return
        mine = get_random_state()
        states = all_gather_object(mine) if get_world_size() > 1 else [mine]
        self._taken = dict(epoch=runner.epoch + 1, states=states)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self._taken is not None:
            checkpoint[KEY] = self._taken

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._loaded = checkpoint.get(KEY)

    def before_train_epoch(self, runner) -> None:
        if not isinstance(runner.train_loop, EpochBasedTrainLoop):
            return
        saved, source = self._taken, 'the previous epoch'
        if saved is None or saved['epoch'] != runner.epoch:
            saved, source = self._loaded, 'the resumed checkpoint'
        self._loaded = None
        if saved is None or saved['epoch'] != runner.epoch:
            return
        if len(saved['states']) != get_world_size():
            print_log(
                f'RandomStateHook: the checkpoint holds the random states '
                f'of {len(saved["states"])} ranks, this run has '
                f'{get_world_size()}: not restored (the resumed run draws '
                'other random numbers than an uninterrupted one)',
                logger='current',
                level=30)
            return
        set_random_state(saved['states'][get_rank()])
        if source != 'the previous epoch':
            print_log(
                f'RandomStateHook: random states of epoch {runner.epoch} '
                f'restored from {source}',
                logger='current')


def add_random_state_hook(runner, cfg) -> bool:
    """Register a :class:`RandomStateHook` on ``runner`` (built from
    ``cfg``, not trained yet) when its training loop is epoch-based and it
    has none; returns whether one was added. ``tools/train.py`` calls it,
    so that every training it runs resumes to the uninterrupted result
    without a config change (mmdet's own tools need the hook in the
    config's ``custom_hooks``)."""
    train_cfg = cfg.get('train_cfg') or {}
    loop = train_cfg.get('type')
    if loop is None:
        epoch_based = bool(train_cfg.get('by_epoch', False))
    else:
        name = loop if isinstance(loop, str) else getattr(loop, '__name__', '')
        epoch_based = name.split('.')[-1] == 'EpochBasedTrainLoop'
    if not epoch_based or any(
            isinstance(h, RandomStateHook) for h in runner.hooks):
        return False
    runner.register_hook(RandomStateHook())
    return True
