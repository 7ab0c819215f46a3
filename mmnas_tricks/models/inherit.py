"""Weight inheritance from a plain (model-zoo) checkpoint into a supernet,
with a report of what went where.

The plain weights load into the subnet that reproduces the plain
architecture (default: every mutable's first choice: the plain FCOS /
RetinaNet / FPN in this package's searchable parts). Then, in every mutable
with separate candidates (``OpChoice``), each other candidate takes the
chosen one's weights where it is the same op type with the same shapes, or
the centre of a larger kernel where its own kernel is smaller (a 1x1
candidate from a 3x3 conv). Mutables that share one weight among their
choices (kernel-size / conv-shape / channel choices) already read the
inherited weight for every choice; the outer ring of a larger kernel and
extra channels keep their initialisation, unless ``preserve_function``:
then every conv weight is zeroed where it reads what the plain network does
not have (input channels beyond the plain width, the outer ring of a larger
kernel) and each block a deeper stage adds starts as the identity (its last
norm's scale zeroed), so that every subnet that only grows the plain network
(wider, deeper, larger kernels) computes what the plain network computes
(Net2Net's function-preserving growth, Chen et al., ICLR 2016, with zeros);
the new channels' own weights keep their initialisation, so gradients reach
the zeroed ones.
"""
from typing import Dict, List, Optional, Union

import torch
import torch.nn as nn

from mmnas_tricks.structures import read_subnet_file
from .mutables import (BaseMutable, Subnet, named_mutables, set_subnet,
                       static_copy, validate_subnet)


def plain_subnet(model: nn.Module,
                 subnet: Optional[Union[str, Subnet]] = None) -> Subnet:
    """``None`` / ``'first'``: every mutable's first choice; a subnet file
    path; or a subnet dict (validated)."""
    if subnet is None or subnet == 'first':
        return {n: m.choices[0] for n, m in named_mutables(model).items()}
    if isinstance(subnet, str):
        subnet = read_subnet_file(subnet)[0]
    return validate_subnet(model, subnet, strict=True)


def _centre(weight: torch.Tensor, shape) -> Optional[torch.Tensor]:
    """The centre of a conv ``weight`` with the (smaller, odd) kernel of
    ``shape``; None when it does not fit."""
    if weight.dim() != 4 or len(shape) != 4 or weight.shape[:2] != shape[:2]:
        return None
    kh, kw = shape[2:]
    h, w = weight.shape[2:]
    if kh > h or kw > w or (h - kh) % 2 or (w - kw) % 2:
        return None
    top, left = (h - kh) // 2, (w - kw) // 2
    return weight[:, :, top:top + kh, left:left + kw]


def _spread(src: nn.Module, dst: nn.Module) -> tuple:
    """Copy ``src``'s weights into candidate ``dst``: ``(how, why_not)``."""
    if type(src) is not type(dst):
        return None, (f'a {type(dst).__name__}, the inherited candidate is a '
                      f'{type(src).__name__}')
    s, d = src.state_dict(), dst.state_dict()
    if set(s) != set(d):
        return None, 'different parameters than the inherited candidate'
    values, how = {}, 'copy'
    for key, value in d.items():
        if s[key].shape == value.shape:
            values[key] = s[key]
            continue
        centre = _centre(s[key], value.shape)
        if centre is None:
            return None, (f'{key} is {tuple(value.shape)}, the inherited '
                          f'candidate\'s {tuple(s[key].shape)}')
        values[key], how = centre, 'centre'
    with torch.no_grad():
        for key, value in dst.state_dict().items():
            value.copy_(values[key])
    return how, None


def _zero_unread(param: torch.Tensor, written: torch.Tensor) -> bool:
    """Zero a conv weight (out, in, kh, kw) where it reads an input channel
    or a kernel position the inherited region (``written``) lacks; True when
    it zeroed anything."""
    keep_in = written.any(dim=(0, 2, 3))
    keep_k = written.any(dim=(0, 1))
    keep = keep_in[None, :, None, None] & keep_k[None, None]
    if bool(keep.all()):
        return False
    with torch.no_grad():
        param.masked_fill_(~keep.expand_as(param), 0.0)
    return True


def _identity_blocks(model: nn.Module, plain: Subnet) -> List[str]:
    """Make each block a :class:`DepthChoice` has beyond its plain depth
    the identity (the last norm's scale and shift zeroed, so the residual
    branch adds nothing); the names of the blocks changed."""
    from .mutables import DepthChoice
    changed = []
    for name, m in named_mutables(model).items():
        if not isinstance(m, DepthChoice):
            continue
        for i, block in enumerate(
                m.blocks[int(plain[name]):], start=int(plain[name])):
            norm = getattr(block, 'last_norm', None)
            if norm is None:
                continue
            with torch.no_grad():
                norm.weight.zero_()
                norm.bias.zero_()
            changed.append(f'{name}.{i}')
    return changed


def strip_module_prefix(state_dict: dict) -> dict:
    """``state_dict`` with the ``module.`` prefix of a DDP-wrapped model's
    keys dropped (a new dict; other keys unchanged)."""
    return {
        k[len('module.'):] if k.startswith('module.') else k: v
        for k, v in state_dict.items()
    }


def inherit_plain(model: nn.Module,
                  state_dict: Dict[str, torch.Tensor],
                  subnet: Optional[Union[str, Subnet]] = None,
                  spread: bool = True,
                  preserve_function: bool = False) -> dict:
    """Load a plain model's ``state_dict`` into the supernet ``model``.

    Args:
        model (nn.Module): The supernet (its current choices are kept).
        state_dict (dict): The plain weights (``module.`` prefixes
            stripped).
        subnet (str | dict, optional): The subnet that is the plain
            architecture: ``'first'`` (default), a subnet file or dict.
        spread (bool): Also seed the other candidates of ``OpChoice``
            mutables (same type and shapes, or the centre of a larger
            kernel). Defaults to True.
        preserve_function (bool): Zero what reads beyond the inherited
            weights and start added blocks as the identity (module
            docstring). Defaults to False.

    Returns:
        dict: The report: ``loaded`` (plain keys loaded), ``into`` (mutable
        -> the choice that took the plain weights), ``spread`` (candidates
        seeded from it and how), ``left_at_init`` (supernet places that got
        nothing, and why), ``unused`` (plain keys with no place, and
        why) and, with ``preserve_function``, ``zeroed`` (conv weights
        zeroed beyond the inherited region) and ``identity`` (blocks made
        the identity).
    """
    state_dict = strip_module_prefix(state_dict)
    plain = plain_subnet(model, subnet)
    current = {n: m.current_choice for n, m in named_mutables(model).items()}
    params = dict(model.named_parameters())
    if preserve_function:  # NaN marks what the plain weights do not reach
        before = {k: p.detach().clone() for k, p in params.items()}
        with torch.no_grad():
            for p in params.values():
                p.fill_(float('nan'))
    static, pairs = static_copy(model, plain, share_weights=True)
    static_keys = set(static.state_dict())
    result = static.load_state_dict(state_dict, strict=False)
    for mutable, exported in reversed(pairs):
        mutable.import_module(exported)
    zeroed = []
    if preserve_function:
        with torch.no_grad():
            for k, p in params.items():
                written = ~torch.isnan(p)
                p.copy_(torch.where(written, p, before[k]))
                if p.dim() == 4 and bool(written.any()) and \
                        _zero_unread(p, written):
                    zeroed.append(k)
    mutables = named_mutables(model)
    report = dict(
        # what loaded (a module may rename keys on loading: e.g. mmdet's
        # NASFCOS_FPN keys into NASFCOSSearchFPN's)
        loaded=sorted(static_keys - set(result.missing_keys)),
        into={},
        spread=[],
        left_at_init=[],
        unused=[])
    for key in result.unexpected_keys:
        report['unused'].append(
            dict(
                key=key,
                why='the plain architecture (subnet) has no such weight'))
    for key in result.missing_keys:
        report['left_at_init'].append(
            dict(where=key, why='not in the checkpoint'))
    for name, m in mutables.items():
        report['into'][name] = plain[name]
        candidates = getattr(m, 'candidates', None)
        if not isinstance(candidates, nn.ModuleDict):
            if any(p.numel() for p in m.parameters(recurse=True)
                   if p is not m.arch_alpha):
                report['spread'].append(
                    dict(
                        mutable=name,
                        candidate='*',
                        how='shared weights: every '
                        'choice reads them (larger kernels\' outer ring and '
                        'extra channels keep their init)'))
            continue
        src = candidates[str(plain[name])]
        for cand_name, cand in candidates.items():
            if cand_name == str(plain[name]):
                continue
            if not any(True for _ in cand.parameters()):
                continue  # skip connections, pooling: nothing to inherit
            if not spread:
                report['left_at_init'].append(
                    dict(
                        where=f'{name}.candidates.{cand_name}',
                        why='spread=False'))
                continue
            how, why = _spread(src, cand)
            if how is None:
                report['left_at_init'].append(
                    dict(where=f'{name}.candidates.{cand_name}', why=why))
            else:
                report['spread'].append(
                    dict(
                        mutable=name,
                        candidate=cand_name,
                        how=how,
                        source=str(plain[name])))
    for name, m in model.named_modules():  # after the candidates' spread
        if spread and isinstance(m, BaseMutable) and \
                hasattr(m, 'spread_inherited'):
            report['spread'].append(
                dict(mutable=name, candidate='*', how=m.spread_inherited()))
    if preserve_function:
        report['zeroed'] = zeroed
        report['identity'] = _identity_blocks(model, plain)
    set_subnet(model, current, strict=False)
    return report


def report_lines(report: dict) -> List[str]:
    """A short human-readable summary of an :func:`inherit_plain` report."""
    lines = [
        f'inherited {len(report["loaded"])} plain weights; '
        f'{len(report["into"])} mutables took them in their plain choice',
        f'{len(report["spread"])} other candidates seeded from them',
        f'{len(report["left_at_init"])} places left at init, '
        f'{len(report["unused"])} plain weights unused'
    ]
    if 'zeroed' in report:
        lines.append(
            f'function preserved: {len(report["zeroed"])} conv weights '
            'zeroed where they read beyond the inherited ones, '
            f'{len(report["identity"])} added blocks made the identity')
    for item in report['left_at_init']:
        lines.append(f'  left at init: {item["where"]}: {item["why"]}')
    for item in report['unused']:
        lines.append(f'  unused: {item["key"]}: {item["why"]}')
    return lines
