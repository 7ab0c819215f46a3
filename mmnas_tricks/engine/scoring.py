"""Score one subnet of a supernet: BN calibration, then evaluation."""
import copy
from typing import Dict, Iterator, List, Optional, Sequence

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from mmnas_tricks.models.mutables import get_subnet, set_subnet
from mmnas_tricks.structures import subnet_key
from .bn_calibration import calibrate_bn


def score_subnet(model: nn.Module,
                 subnet: dict,
                 dataloader,
                 evaluator,
                 calib_batches: Sequence[dict] = (),
                 num_calib: int = 0,
                 score_key: Optional[str] = None) -> dict:
    """Set ``subnet``, recompute the BatchNorm statistics on
    ``num_calib`` of ``calib_batches`` (docs/tricks.md, T3.2; skipped when 0),
    evaluate on ``dataloader`` with ``evaluator`` (gathered over ranks, so
    every rank gets the same metrics) and return the metrics.

    Raises:
        KeyError: ``score_key`` is given and not among the metrics.
    """
    set_subnet(model, subnet)
    if num_calib > 0:
        calibrate_bn(model, calib_batches, num_calib)
    model.eval()
    net = model.module if is_model_wrapper(model) else model
    with torch.no_grad():
        for data in prepared_batches(dataloader, net):
            # what BaseModel.val_step does after its data preprocessor
            outputs = net(
                **data, mode='predict') if isinstance(data, dict) else net(
                    *data, mode='predict')
            evaluator.process(data_samples=outputs, data_batch=data)
    metrics = evaluator.evaluate(len(dataloader.dataset))
    if score_key is not None:
        score_of(metrics, score_key)
    return metrics


def score_of(metrics: dict, score_key: str) -> float:
    """``metrics[score_key]`` as a float.

    Raises:
        KeyError: ``score_key`` is not among the metrics (named, with the
            ones there are).
    """
    if score_key not in metrics:
        raise KeyError(f'score_key {score_key!r} is not among the '
                       f'metrics {sorted(metrics)}')
    return float(metrics[score_key])


def prepared_batches(batches, model: nn.Module) -> Iterator:
    """``batches`` through ``model``'s data preprocessor in test mode (what
    ``model.val_step`` does before its forward); kept by
    :meth:`CachedBatches.prepared` when ``batches`` keeps its batches."""
    if isinstance(batches, CachedBatches):
        return batches.prepared(model)
    return (model.data_preprocessor(data, False) for data in batches)


def _nbytes(data: dict) -> int:
    inputs = data['inputs']
    tensors = [inputs] if torch.is_tensor(inputs) else list(inputs)
    return sum(t.numel() * t.element_size() for t in tensors)


def _fresh(sample):
    """A new data sample with ``sample``'s fields (the values shared): what
    a model's preprocessor and ``predict`` set on it (new metainfo values,
    ``pred_instances``) stays off ``sample``. A tenth of a deep copy's
    cost; the values themselves are not written in place on the way."""
    from mmengine.structures import BaseDataElement
    if not isinstance(sample, BaseDataElement):
        return copy.deepcopy(sample)
    new = type(sample)()
    for key in sample.metainfo_keys():
        new.set_field(getattr(sample, key), key, field_type='metainfo')
    for key in sample.keys():
        new.set_field(getattr(sample, key), key, field_type='data')
    return new


class CachedBatches:
    """The batches of a scoring dataloader, loaded once and kept in memory,
    so that a search does not load and transform its held-out images again
    for every candidate (they are the same for all of them).

    The first pass iterates ``loader`` and keeps a copy of each batch while
    the inputs kept stay within ``budget_mb``; every later pass yields the
    kept batches again. Over the budget nothing is kept and every pass
    iterates ``loader``, as without this class. Each pass hands out new
    data samples (a model's preprocessor and predictions set fields on
    them) over the kept values and image tensors, which are read only.

    With ``batch_size``, the kept images are regrouped into batches of that
    many (fewer, larger forward calls), from the first pass on; the batch
    composition then differs from the loader's, which changes nothing where
    the images share one size (a batch is padded to its largest image).

    ``dataset`` is ``loader``'s, so that ``len(cached.dataset)`` counts the
    images as evaluators expect.

    Args:
        loader: A dataloader yielding mmengine-collated dicts
            (``inputs``, ``data_samples``).
        budget_mb (float): Largest total size of the kept inputs; 0 keeps
            nothing. Defaults to 1024.
        batch_size (int, optional): Images per batch of the kept batches.
            Defaults to None (the loader's batches).

    Example:
        >>> loader = CachedBatches(runner.build_dataloader(cfg), 512)
        >>> metrics = score_subnet(model, subnet, loader, evaluator)
    """

    def __init__(self,
                 loader,
                 budget_mb: float = 1024,
                 batch_size: Optional[int] = None) -> None:
        if budget_mb < 0:
            raise ValueError(f'budget_mb={budget_mb} must be >= 0')
        if batch_size is not None and batch_size < 1:
            raise ValueError(f'batch_size={batch_size} must be >= 1 or None')
        self.loader = loader
        self.budget_mb = budget_mb
        self.batch_size = batch_size
        self._kept: Optional[List[dict]] = None
        self._over_budget = budget_mb == 0
        # preprocessed batches by the preprocessor's choices (its key)
        self._prepared: Dict[str, List[dict]] = {}

    @property
    def dataset(self):
        return self.loader.dataset

    @property
    def kept(self) -> bool:
        """Whether the batches are in memory."""
        return self._kept is not None

    @staticmethod
    def _copy(data: dict) -> dict:
        inputs = data['inputs']
        samples = data.get('data_samples')
        return dict(
            data,
            inputs=list(inputs) if isinstance(inputs, list) else inputs,
            data_samples=None
            if samples is None else [_fresh(s) for s in samples])

    def _keep(self) -> Iterator[dict]:
        """The first pass: the loader's batches, copies kept on the way."""
        kept, size = [], 0
        for data in self.loader:
            if kept is not None:
                size += _nbytes(data)
                if size > self.budget_mb * 2**20:
                    kept = None
                    self._over_budget = True
                    print_log(
                        f'scoring batches over {self.budget_mb} MB: loaded '
                        'again for each candidate',
                        logger='current')
                else:
                    kept.append(self._copy(data))
            yield data
        if kept is not None:
            self._kept = kept

    def _regroup(self) -> None:
        for _ in self._keep():
            pass
        if self._kept is None:
            return
        inputs = [x for d in self._kept for x in d['inputs']]
        samples = [s for d in self._kept for s in d['data_samples']]
        n = self.batch_size
        self._kept = [
            dict(inputs=inputs[i:i + n], data_samples=samples[i:i + n])
            for i in range(0, len(inputs), n)
        ]

    def __iter__(self) -> Iterator[dict]:
        if self._kept is None and not self._over_budget:
            if self.batch_size is None:
                yield from self._keep()
                return
            self._regroup()
        if self._kept is None:
            yield from self.loader
            return
        for data in self._kept:
            yield self._copy(data)

    def prepared(self, model: nn.Module) -> Iterator[dict]:
        """The batches as ``model``'s data preprocessor makes them for a
        test-mode forward (``model.val_step``'s first step). Where the
        batches are kept, their preprocessed form is kept too, per state of
        the preprocessor's choices (a searchable input size), while all of
        it stays within ``budget_mb`` beside the kept batches: normalising,
        padding and moving the same images to the model's device is then
        done once per search, not once per candidate (in a test-mode
        forward, mmdet's and mmseg's preprocessors are deterministic; their
        random batch augments run in training only). Each pass hands out
        new data samples over the kept values, as iterating does."""
        pre = model.data_preprocessor
        key = subnet_key(get_subnet(pre))
        if key in self._prepared:
            for data in self._prepared[key]:
                yield self._copy(data)
            return
        kept: Optional[List[dict]] = []
        for data in self:
            data = pre(data, False)
            if kept is not None and isinstance(data, dict) and \
                    torch.is_tensor(data.get('inputs')):
                kept.append(self._copy(data))
            else:
                kept = None
            yield data
        if kept is None or not self.kept:
            return
        size = sum(
            _nbytes(d)
            for batches in [self._kept, kept, *self._prepared.values()]
            for d in batches)
        if size <= self.budget_mb * 2**20:
            self._prepared[key] = kept

    def __len__(self) -> int:
        return len(self._kept) if self._kept is not None else len(self.loader)
