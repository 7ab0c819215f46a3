"""Save the static model of a subnet as a plain mmengine checkpoint."""
from typing import Any, Dict, Optional

import torch
import torch.nn as nn

from mmnas_tricks.utils.io import atomic_write

from .mutables import Subnet, export_static, get_subnet


def save_static_checkpoint(model: nn.Module,
                           path: str,
                           subnet: Optional[Subnet] = None,
                           meta: Optional[Dict[str, Any]] = None
                           ) -> nn.Module:
    """Export ``subnet`` (default: the current choices) of ``model`` and save
    the static model's weights, and nothing else, to ``path``.

    The file is an mmengine-style checkpoint ``{'state_dict', 'meta'}``
    (``meta['subnet']`` records the subnet) that loads with
    ``torch.load``'s default ``weights_only=True``; it is written to a
    temporary file and renamed into place.

    Returns:
        nn.Module: The static model that was saved.
    """
    static = export_static(model, subnet)
    subnet = dict(subnet) if subnet is not None else get_subnet(model)
    checkpoint = dict(
        state_dict={k: v.detach().cpu()
                    for k, v in static.state_dict().items()},
        meta=dict(meta or {}, subnet=subnet))
    atomic_write(path, lambda f: torch.save(checkpoint, f))
    return static
