"""Zero-cost proxies: how well a network will train, guessed from its
initial weights and one batch, without training it (Abdelfattah et al.,
"Zero-Cost Proxies for Lightweight NAS", ICLR 2021; docs/tricks.md, "Zero-
cost proxies").

Each proxy is a sum over the weights of the exported (static) subnet at
its initialisation:

- ``grad_norm``: the L2 norms of the gradients of the training loss;
- ``snip``: ``|w * dL/dw|`` (Lee et al., ICLR 2019, the connection
  sensitivity);
- ``synflow``: ``|w * dR/dw|`` with ``R`` the sum of the network's outputs
  on an all-ones input with every weight made positive (``|w|``), BN in
  eval mode and no data (Tanaka et al., NeurIPS 2020); computed in double
  precision, because the product over layers overflows float32.

They rank plain classifiers on CIFAR well and detectors weakly; here they
are features of a predictor (``benchmarks/rank_estimators.py``), not a
search's score.
"""
from typing import Dict, Sequence

import torch
import torch.nn as nn

PROXIES = ('grad_norm', 'snip', 'synflow')


def _weights(model: nn.Module):
    """The conv and linear weights (the layers the proxies sum over)."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)) and m.weight.requires_grad:
            yield m.weight


def _loss(model: nn.Module, batch: dict) -> torch.Tensor:
    data = model.data_preprocessor(batch, True)
    losses = model(**data, mode='loss')
    loss, _ = model.parse_losses(losses)
    return loss


def _tensor_sum(out) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out.sum()
    if isinstance(out, (list, tuple)):
        return sum(_tensor_sum(o) for o in out)
    if isinstance(out, dict):
        return sum(_tensor_sum(o) for o in out.values())
    raise TypeError(f'cannot sum a {type(out).__name__} output')


def zero_cost_scores(
    model: nn.Module,
    batch: dict,
    proxies: Sequence[str] = PROXIES,
    input_shape: Sequence[int] = (3, 128, 128)
) -> Dict[str, float]:
    """The proxies of ``model`` (an mmengine ``BaseModel``: an mmdet
    detector or an mmseg segmentor at its initial weights) on ``batch`` (a
    training batch as its dataloader gives it; ``synflow`` uses none, an
    all-ones input of ``input_shape``). The model's weights are left as
    they were; its gradients are cleared.

    Raises:
        KeyError: a proxy not among :data:`PROXIES`.
    """
    unknown = sorted(set(proxies) - set(PROXIES))
    if unknown:
        raise KeyError(f'zero-cost proxies {unknown} are not among '
                       f'{list(PROXIES)}')
    out = {}
    was_training = model.training
    # the loss step moves BN statistics, synflow the weights: both undone
    state = {k: v.clone() for k, v in model.state_dict().items()}
    try:
        if {'grad_norm', 'snip'} & set(proxies):
            model.train()
            model.zero_grad()
            _loss(model, batch).backward()
            weights = [w for w in _weights(model) if w.grad is not None]
            if 'grad_norm' in proxies:
                out['grad_norm'] = float(
                    sum(w.grad.norm().item() for w in weights))
            if 'snip' in proxies:
                out['snip'] = float(
                    sum((w * w.grad).abs().sum().item() for w in weights))
            model.zero_grad()
            model.load_state_dict(state)
        if 'synflow' in proxies:
            model.double().eval()
            with torch.no_grad():
                for w in _weights(model):
                    w.abs_()
            model.zero_grad()
            x = torch.ones((1, *input_shape), dtype=torch.float64)
            _tensor_sum(model(x, mode='tensor')).backward()
            out['synflow'] = float(
                sum((w * w.grad).abs().sum().item() for w in _weights(model)
                    if w.grad is not None))
    finally:
        model.float()
        model.load_state_dict(state)
        model.zero_grad()
        model.train(was_training)
    return out
