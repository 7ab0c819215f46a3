"""What the loops over a trained supernet share: the skeleton of the
search loops and of the perturbation selection."""
import json
import os.path as osp
from typing import Optional

from mmengine.dist import is_main_process
from mmengine.model import is_model_wrapper
from mmengine.runner import BaseLoop

from mmnas_tricks.utils import resuming
from mmnas_tricks.utils.io import dump_json_atomic
from ..scoring import CachedBatches

#: ``rule``: whether a greater or a smaller score is better
RULES = ('greater', 'less')


class SupernetLoop(BaseLoop):
    """A loop that works on a trained supernet and scores it on validation
    data: builds the scoring dataloader and evaluator (the config's
    ``val_dataloader`` / ``val_evaluator`` unless given) and loads
    ``supernet_checkpoint`` (strict, ``weights_only``) when it runs. The
    scoring batches are loaded once and kept in memory within
    ``eval_cache_mb`` (:class:`~mmnas_tricks.engine.scoring.CachedBatches`;
    0: loaded for every pass), regrouped into batches of
    ``eval_batch_size`` images when given.

    The skeleton its subclasses fill in:

    - the score: ``score_key`` of the metrics, better when greater or less
      (``rule``, :attr:`sign`);
    - progress as mmengine's Runner reads it: ``max_epochs`` / ``epoch``
      count rounds (a generation, a decision: :attr:`planned_rounds`,
      :attr:`rounds_done`), ``max_iters`` / ``iter`` the same unless a
      subclass counts iterations;
    - the results in ``<work_dir>/<OUT_FOLDER>/`` (:attr:`out_dir`) and the
      state a killed run resumes from, ``state.json`` there
      (:meth:`save_state`, :meth:`read_state`: only with ``--resume``, and
      only a state of the same ``seed``).

    Raises:
        FileNotFoundError: ``supernet_checkpoint`` does not exist.
        ValueError: ``rule`` is not one of :data:`RULES`.
    """

    #: the loop's folder in the work dir
    OUT_FOLDER = 'search'

    def __init__(self,
                 runner,
                 dataloader,
                 val_dataloader: Optional[dict] = None,
                 evaluator=None,
                 supernet_checkpoint: Optional[str] = None,
                 eval_cache_mb: float = 1024,
                 eval_batch_size: Optional[int] = None,
                 score_key: str = 'coco/bbox_mAP',
                 rule: str = 'greater',
                 seed: int = 0) -> None:
        super().__init__(runner, dataloader)
        if rule not in RULES:
            raise ValueError(f'rule={rule!r} is not one of {list(RULES)}')
        self.score_key = score_key
        self.rule = rule
        self.seed = seed
        if supernet_checkpoint is not None and not osp.isfile(
                supernet_checkpoint):
            raise FileNotFoundError(
                f'supernet_checkpoint {supernet_checkpoint!r} does not exist')
        self.supernet_checkpoint = supernet_checkpoint
        # checked here so that the error names the loop's own arguments
        if eval_cache_mb < 0:
            raise ValueError(f'eval_cache_mb={eval_cache_mb} must be >= 0 '
                             '(0: load the scoring batches per candidate)')
        if eval_batch_size is not None and eval_batch_size < 1:
            raise ValueError(f'eval_batch_size={eval_batch_size} must be >= 1 '
                             'or None (the dataloader\'s batches)')
        if val_dataloader is None or evaluator is None:
            # the runner's validation loop (built here if not yet) is the
            # public path to the config's val_dataloader / val_evaluator
            val_loop = runner.val_loop
            if val_loop is None:
                raise ValueError(
                    f'{type(self).__name__} scores on held-out data: give it '
                    'val_dataloader and evaluator, or give the config '
                    'val_dataloader, val_evaluator and val_cfg')
            val_dataloader = val_dataloader or val_loop.dataloader
            evaluator = evaluator or val_loop.evaluator
        self.val_dataloader = CachedBatches(
            runner.build_dataloader(val_dataloader),
            budget_mb=eval_cache_mb,
            batch_size=eval_batch_size)
        self.evaluator = runner.build_evaluator(evaluator)
        if hasattr(self.val_dataloader.dataset, 'metainfo'):
            self.evaluator.dataset_meta = self.val_dataloader.dataset.metainfo

    @property
    def model(self):
        model = self.runner.model
        return model.module if is_model_wrapper(model) else model

    @property
    def sign(self) -> float:
        """+1 where a greater score is better, -1 where a smaller one is."""
        return 1.0 if self.rule == 'greater' else -1.0

    # -- progress, as mmengine's Runner reads it ---------------------------
    @property
    def planned_rounds(self) -> int:
        """Rounds (generations, decisions) the loop will run."""
        raise NotImplementedError

    @property
    def rounds_done(self) -> int:
        """Rounds finished."""
        raise NotImplementedError

    @property
    def max_epochs(self) -> int:
        return self.planned_rounds

    @property
    def max_iters(self) -> int:
        return self.planned_rounds

    @property
    def epoch(self) -> int:
        return self.rounds_done

    @property
    def iter(self) -> int:
        return self.rounds_done

    # -- results and state -------------------------------------------------
    @property
    def out_dir(self) -> str:
        """``<work_dir>/<OUT_FOLDER>``: results and state."""
        return osp.join(self.runner.work_dir, self.OUT_FOLDER)

    @property
    def state_path(self) -> str:
        return osp.join(self.out_dir, 'state.json')

    def save_state(self, state: dict) -> None:
        """Write ``state`` (with this loop's ``seed``) to
        :attr:`state_path`, atomically, from the main process."""
        if is_main_process():
            dump_json_atomic(dict(state, seed=self.seed), self.state_path)

    def read_state(self) -> Optional[dict]:
        """The state a killed run saved, when this run resumes
        (``--resume``) and there is one; else None.

        Raises:
            ValueError: the state was saved by a run of another ``seed``.
        """
        if not (resuming(self.runner) and osp.isfile(self.state_path)):
            return None
        with open(self.state_path) as f:
            state = json.load(f)
        if state.get('seed') != self.seed:
            raise ValueError(
                f'{self.state_path}: the state of a {type(self).__name__} '
                f'with seed {state.get("seed")}, this one has seed '
                f'{self.seed}; resume with the same seed or use another '
                'work dir')
        return state

    @property
    def supernet_source(self) -> Optional[str]:
        """The supernet checkpoint this loop scores: ``supernet_checkpoint``,
        else the runner's ``load_from`` (None when resuming: ``--resume``
        clears it)."""
        if self.supernet_checkpoint is not None:
            return self.supernet_checkpoint
        if resuming(self.runner):
            return None
        return self.runner.cfg.get('load_from')

    def _load_supernet(self) -> None:
        if self.supernet_checkpoint is None:
            return  # the runner's load_from
        from mmengine.runner import load_checkpoint

        from mmnas_tricks.utils import explain_unsafe_checkpoint
        with explain_unsafe_checkpoint():
            load_checkpoint(
                self.model,
                self.supernet_checkpoint,
                map_location='cpu',
                strict=True,
                logger='current')
