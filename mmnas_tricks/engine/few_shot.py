"""Few-shot NAS (Zhao et al., ICML 2021; docs/tricks.md, T5.1): split a trained
one-shot supernet on the choices of one mutable into K sub-supernets.

Sub-supernet ``k`` is the supernet config with that mutable pinned to its
``k``-th choice (``SampleSubnetHook(fixed=...)``) and every weight inherited
from the one-shot checkpoint (``load_from``; all candidates' weights stay in
the checkpoint, so the transfer is exact), then trained further. A
candidate is scored with the sub-supernet whose pinned choice it has
(:class:`FewShotRouter`).

The split is written as a manifest JSON (``few_shot.json``)::

    {"mutable": "bbox_head.cls_convs.0",
     "source": "<one-shot checkpoint>",
     "sub_supernets": {"[3, 1]": {"choice": [3, 1], "checkpoint": "..."}}}

``tools/few_shot.py`` trains the sub-supernets and writes it;
``EvolutionSearchLoop(few_shot=...)`` and ``tools/rank_correlation.py
--few-shot`` route by it.
"""
import copy
import json
import os.path as osp
from typing import Dict, Optional

import torch.nn as nn
from mmengine.config import Config

from mmnas_tricks.models.mutables import named_mutables
from mmnas_tricks.structures.subnet_file import plain_choice

SAMPLER = 'SampleSubnetHook'


def choice_key(choice) -> str:
    """The manifest key of one choice (JSON; tuples as lists)."""
    return json.dumps(plain_choice(choice))


def split_choices(model: nn.Module, mutable: str) -> list:
    """The choices of ``mutable`` in ``model`` (the sub-supernets' pins).

    Raises:
        KeyError: ``mutable`` is not a mutable of the model (naming the
            searchable ones).
    """
    mutables = named_mutables(model, searchable_only=True)
    if mutable not in mutables:
        raise KeyError(f'cannot split on {mutable!r}: not a searchable '
                       f'mutable of the model; valid: {list(mutables)}')
    return mutables[mutable].choices


def _sampler(cfg: Config) -> dict:
    from .hooks.utils import hook_configs
    hooks = hook_configs(cfg.get('custom_hooks'), SAMPLER)
    if len(hooks) != 1:
        raise ValueError(
            f'few-shot NAS splits a one-shot (sampling) supernet: the config '
            f'needs exactly one {SAMPLER} in custom_hooks, found '
            f'{len(hooks)}')
    return hooks[0]


def sub_supernet_config(cfg: Config,
                        checkpoint: str,
                        mutable: str,
                        choice,
                        max_epochs: Optional[int] = None) -> Config:
    """The config of the sub-supernet with ``mutable`` pinned to
    ``choice``: ``cfg`` (a supernet config; a ``tools/nas.py`` pipeline
    config's ``nas`` dict is dropped) with the sampler's ``fixed`` set,
    ``load_from=checkpoint`` (the weight transfer) and, if given,
    ``max_epochs`` of further training (schedules stretched, as
    :func:`~mmnas_tricks.engine.proxy.proxy_config` does)."""
    from .proxy import proxy_config
    out = Config(
        copy.deepcopy(cfg.to_dict(keep_imported=True)), filename=cfg.filename)
    out.pop('nas', None)
    if max_epochs is not None:
        out = proxy_config(out, max_epochs=max_epochs)
        out.pop('proxy', None)
    sampler = _sampler(out)
    fixed = dict(sampler.get('fixed') or {})
    if mutable in fixed:
        raise ValueError(f'{mutable!r} is already fixed by the sampler '
                         f'({fixed[mutable]!r}); split on another mutable')
    fixed[mutable] = plain_choice(choice)
    sampler['fixed'] = fixed
    out.load_from = checkpoint
    out.resume = False
    return out


def load_manifest(manifest) -> dict:
    """A manifest dict, from a path or a dict; checks its fields."""
    if isinstance(manifest, str):
        if not osp.isfile(manifest):
            raise FileNotFoundError(f'few-shot manifest {manifest!r} does '
                                    'not exist (tools/few_shot.py writes it)')
        with open(manifest) as f:
            manifest = json.load(f)
    for key in ('mutable', 'sub_supernets'):
        if key not in manifest:
            raise KeyError(f'few-shot manifest has no {key!r}; keys: '
                           f'{sorted(manifest)}')
    return manifest


class FewShotRouter:
    """Loads, for a candidate, the weights of the sub-supernet that matches
    its choice of the split mutable (state dicts kept in memory; loaded
    before every score, so BN calibration of one candidate never leaks into
    the next).

    Args:
        manifest (str | dict): The split (see the module docstring).

    Raises:
        KeyError: a routed subnet's choice has no sub-supernet (naming the
            ones there are).
    """

    def __init__(self, manifest) -> None:
        self.manifest = load_manifest(manifest)
        self.mutable = self.manifest['mutable']
        self._states: Dict[str, dict] = {}

    @property
    def keys(self) -> list:
        return sorted(self.manifest['sub_supernets'])

    def check(self, model: nn.Module) -> None:
        """Every choice of the split mutable has a finished sub-supernet."""
        missing = [
            choice_key(c) for c in split_choices(model, self.mutable)
            if choice_key(c) not in self.manifest['sub_supernets'] or
            not self.manifest['sub_supernets'][choice_key(c)].get('checkpoint')
        ]
        if missing:
            raise KeyError(f'few-shot split on {self.mutable!r} has no '
                           f'trained sub-supernet for choices {missing}; '
                           f'run tools/few_shot.py to finish it')

    def key_of(self, subnet: dict) -> str:
        if self.mutable not in subnet:
            raise KeyError(f'subnet has no choice for the split mutable '
                           f'{self.mutable!r}')
        key = choice_key(subnet[self.mutable])
        if key not in self.manifest['sub_supernets']:
            raise KeyError(f'no sub-supernet for {self.mutable}={key}; '
                           f'there are {self.keys}')
        return key

    def state_dict_for(self, subnet: dict) -> dict:
        key = self.key_of(subnet)
        if key not in self._states:
            from mmengine.runner import CheckpointLoader

            from mmnas_tricks.utils import explain_unsafe_checkpoint
            path = self.manifest['sub_supernets'][key]['checkpoint']
            with explain_unsafe_checkpoint():
                ckpt = CheckpointLoader.load_checkpoint(
                    path, map_location='cpu')
            self._states[key] = ckpt.get('state_dict', ckpt)
        return self._states[key]

    def load_for(self, model: nn.Module, subnet: dict) -> str:
        """Load the matching sub-supernet's weights into ``model`` (DDP
        wrappers unwrapped); returns its key."""
        from mmengine.model import is_model_wrapper
        if is_model_wrapper(model):
            model = model.module
        model.load_state_dict(self.state_dict_for(subnet), strict=True)
        return self.key_of(subnet)
