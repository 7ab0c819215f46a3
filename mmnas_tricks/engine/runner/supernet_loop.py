"""What the loops over a trained supernet share."""
import os.path as osp
from typing import Optional

from mmengine.model import is_model_wrapper
from mmengine.runner import BaseLoop

from mmnas_tricks.utils import resuming
from ..scoring import CachedBatches


class SupernetLoop(BaseLoop):
    """A loop that works on a trained supernet and scores it on validation
    data: builds the scoring dataloader and evaluator (the config's
    ``val_dataloader`` / ``val_evaluator`` unless given) and loads
    ``supernet_checkpoint`` (strict, ``weights_only``) when it runs. The
    scoring batches are loaded once and kept in memory within
    ``eval_cache_mb`` (:class:`~mmnas_tricks.engine.scoring.CachedBatches`;
    0: loaded for every pass), regrouped into batches of
    ``eval_batch_size`` images when given.

    Raises:
        FileNotFoundError: ``supernet_checkpoint`` does not exist.
    """

    def __init__(self,
                 runner,
                 dataloader,
                 val_dataloader: Optional[dict] = None,
                 evaluator=None,
                 supernet_checkpoint: Optional[str] = None,
                 eval_cache_mb: float = 1024,
                 eval_batch_size: Optional[int] = None) -> None:
        super().__init__(runner, dataloader)
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
