"""The subnet file: the one format in which a chosen architecture travels
between supernet training, search, export and retraining.

YAML (``.yaml`` / ``.yml``) or JSON (``.json``)::

    format_version: 1
    subnet:
      neck.cells.0.op1: sep_conv_3x3
      bbox_head.depth: 4
    meta:              # optional: score, flops, params, source, ...
      score: 0.41
      source: evolution search, generation 19

Writing is atomic (temporary file, then rename). Reading checks the file's
shape; :func:`mmnas_tricks.models.mutables.load_subnet` also validates every
name and choice against a model.
"""
import json
import os.path as osp
from typing import Any, Dict, Optional, Tuple

from mmnas_tricks.utils.io import atomic_write_text

FORMAT_VERSION = 1
_SUFFIXES = ('.yaml', '.yml', '.json')


class SubnetFileError(ValueError):
    """A subnet file that cannot be read, names the problem and the file."""


def _check_suffix(path: str) -> str:
    suffix = osp.splitext(path)[1].lower()
    if suffix not in _SUFFIXES:
        raise SubnetFileError(f'{path}: unknown subnet file suffix '
                              f'{suffix!r}; valid: {list(_SUFFIXES)}')
    return suffix


def plain_choice(value: Any) -> Any:
    """Choices as YAML/JSON scalars or lists (tuples become lists)."""
    if isinstance(value, tuple):
        return [plain_choice(v) for v in value]
    if hasattr(value, 'item'):  # numpy / torch scalars
        return value.item()
    return value


def subnet_key(subnet: Dict[str, Any]) -> str:
    """A canonical string of a subnet: equal subnets (tuples or lists,
    any key order) give equal keys (dedup, tie-breaking, traces)."""
    return json.dumps({k: plain_choice(v)
                       for k, v in sorted(subnet.items())},
                      sort_keys=True)


def dump_subnet(subnet: Dict[str, Any],
                path: str,
                meta: Optional[Dict[str, Any]] = None) -> str:
    """Write ``subnet`` (and optional ``meta``) to ``path`` atomically.

    Returns:
        str: ``path``.
    """
    suffix = _check_suffix(path)
    if not isinstance(subnet, dict) or not all(
            isinstance(k, str) for k in subnet):
        raise SubnetFileError('subnet must be a dict with str keys')
    doc = dict(
        format_version=FORMAT_VERSION,
        subnet={k: plain_choice(v)
                for k, v in subnet.items()})
    if meta:
        doc['meta'] = {k: plain_choice(v) for k, v in meta.items()}
    if suffix == '.json':
        text = json.dumps(doc, indent=2) + '\n'
    else:
        import yaml
        text = yaml.safe_dump(doc, sort_keys=False, default_flow_style=None)
    return atomic_write_text(path, text)


def read_subnet_file(path: str) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Read and shape-check a subnet file (no model needed).

    Returns:
        tuple: ``(subnet, meta)``.

    Raises:
        FileNotFoundError: the file does not exist.
        SubnetFileError: empty, not YAML/JSON, wrong format version, or the
            wrong types inside.
    """
    suffix = _check_suffix(path)
    if not osp.isfile(path):
        raise FileNotFoundError(f'subnet file {path!r} does not exist')
    with open(path) as f:
        text = f.read()
    if not text.strip():
        raise SubnetFileError(f'{path}: the subnet file is empty')
    try:
        if suffix == '.json':
            doc = json.loads(text)
        else:
            import yaml
            doc = yaml.safe_load(text)
    except Exception as e:  # yaml.YAMLError / json.JSONDecodeError
        kind = 'JSON' if suffix == '.json' else 'YAML'
        raise SubnetFileError(f'{path}: not valid {kind}: {e}') from e
    if not isinstance(doc, dict):
        raise SubnetFileError(f'{path}: expected a mapping with keys '
                              f"'format_version' and 'subnet', got "
                              f'{type(doc).__name__}')
    version = doc.get('format_version')
    if version != FORMAT_VERSION:
        raise SubnetFileError(f'{path}: format_version {version!r} is not '
                              f'supported (this code reads {FORMAT_VERSION})')
    unknown = sorted(set(doc) - {'format_version', 'subnet', 'meta'})
    if unknown:
        raise SubnetFileError(f'{path}: unknown top-level keys {unknown}; '
                              "valid: ['format_version', 'subnet', 'meta']")
    subnet = doc.get('subnet')
    if not isinstance(subnet, dict) or not subnet:
        raise SubnetFileError(f"{path}: 'subnet' must be a non-empty mapping "
                              f'name -> choice, got {subnet!r}')
    for name, choice in subnet.items():
        if not isinstance(name, str):
            raise SubnetFileError(f'{path}: mutable names must be strings, '
                                  f'got {name!r}')
        number = (int, float)
        ok = isinstance(choice,
                        (str, ) + number) or (isinstance(choice, list) and all(
                            isinstance(c, number) and not isinstance(c, bool)
                            for c in choice))
        if not ok or isinstance(choice, bool):
            raise SubnetFileError(
                f'{path}: {name}: choice {choice!r} has the wrong type '
                f'{type(choice).__name__} (valid: str, int, float, list of '
                'numbers)')
    meta = doc.get('meta') or {}
    if not isinstance(meta, dict):
        raise SubnetFileError(f"{path}: 'meta' must be a mapping, got "
                              f'{type(meta).__name__}')
    return subnet, meta
