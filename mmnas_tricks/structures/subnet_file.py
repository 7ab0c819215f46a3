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
name and choice against a model. A file is read as UTF-8 (with or without a
byte-order mark) and refused, naming the encoding it seems to be in,
otherwise; it is at most :data:`MAX_BYTES` long; YAML aliases (``*name``,
which can expand a small file into gigabytes) and duplicate keys are
refused; every message quotes at most :data:`QUOTE_CHARS` characters of a
value.
"""
import json
import os.path as osp
import reprlib
from typing import Any, Dict, Optional, Tuple

from mmnas_tricks.utils.io import atomic_write_text, check_file

FORMAT_VERSION = 1
_SUFFIXES = ('.yaml', '.yml', '.json')
#: the largest subnet file read (a space of 10,000 mutables writes ~0.5 MB)
MAX_BYTES = 4 * 2**20
#: the most characters of a value quoted in an error message
QUOTE_CHARS = 200


class SubnetFileError(ValueError):
    """A subnet file that cannot be read, names the problem and the file."""


def _check_suffix(path: str) -> str:
    suffix = osp.splitext(path)[1].lower()
    if suffix not in _SUFFIXES:
        raise SubnetFileError(f'{path}: unknown subnet file suffix '
                              f'{suffix!r}; valid: {list(_SUFFIXES)}')
    return suffix


def short_repr(value: Any, limit: int = QUOTE_CHARS) -> str:
    """``repr(value)`` cut to about ``limit`` characters (error messages),
    without formatting all of a huge or deeply nested value first
    (:mod:`reprlib`)."""
    short = reprlib.Repr()
    short.maxlevel, short.maxlist, short.maxdict = 4, 12, 12
    short.maxstring = short.maxother = short.maxlong = limit
    text = short.repr(value)
    return text if len(text) <= limit else text[:limit] + '...'


def short_str(value: Any, limit: int = QUOTE_CHARS) -> str:
    """``str(value)`` cut to about ``limit`` characters."""
    text = value if isinstance(value, str) else short_repr(value, limit)
    return text if len(text) <= limit else text[:limit] + '...'


def _decode(path: str, data: bytes) -> str:
    """UTF-8 text of ``data`` (a UTF-8 byte-order mark dropped), or a
    :class:`SubnetFileError` naming the file and the encoding it seems to
    be in."""
    try:
        return data.decode('utf-8-sig')
    except UnicodeDecodeError as e:
        boms = ((b'\xff\xfe\x00\x00', 'UTF-32 (little-endian BOM)'),
                (b'\x00\x00\xfe\xff', 'UTF-32 (big-endian BOM)'),
                (b'\xff\xfe', 'UTF-16 (little-endian BOM)'),
                (b'\xfe\xff', 'UTF-16 (big-endian BOM)'))
        seems = next((name for bom, name in boms if data.startswith(bom)),
                     None)
        if seems is None:
            if b'\x00' in data:
                seems = 'binary data or UTF-16/32 without a BOM'
            elif len(data) - e.start <= 3 and e.reason == 'unexpected end ' \
                    'of data':
                seems = 'UTF-8 cut off in the middle of a character'
            else:
                seems = 'a single-byte encoding such as latin-1 / cp1252'
        raise SubnetFileError(
            f'{path}: not UTF-8 text (byte {data[e.start:e.start + 1]!r} at '
            f'position {e.start}); it seems to be {seems}. Save it as UTF-8 '
            '(with or without a byte-order mark)') from None


def _loader():
    """A ``yaml.SafeLoader`` that refuses aliases and duplicate keys."""
    import yaml

    class Loader(yaml.SafeLoader):

        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise yaml.constructor.ConstructorError(
                    None, None, f'alias *{short_str(event.anchor)} refused '
                    '(a subnet file writes every value out)', event.start_mark)
            return super().compose_node(parent, index)

        def construct_mapping(self, node, deep=False):
            seen = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: the base class says
                    break
                if first is not None:
                    raise yaml.constructor.ConstructorError(
                        f'duplicate key {short_repr(key)} (first at line '
                        f'{first.line + 1})', first, 'given again',
                        key_node.start_mark)
                seen[key] = key_node.start_mark
            return super().construct_mapping(node, deep)

    return Loader


def _json_pairs(pairs):
    doc = {}
    for key, value in pairs:
        if key in doc:
            raise ValueError(f'duplicate key {short_repr(key)}')
        doc[key] = value
    return doc


def plain_choice(value: Any) -> Any:
    """Choices as YAML/JSON scalars or lists (tuples become lists)."""
    if isinstance(value, tuple):
        return [plain_choice(v) for v in value]
    if hasattr(value, 'item'):  # numpy / torch scalars
        return value.item()
    return value


def _plain_tree(value: Any) -> Any:
    """:func:`plain_choice` through lists and dicts, every container a new
    one (nothing shared between two values)."""
    if isinstance(value, (list, tuple)):
        return [_plain_tree(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain_tree(v) for k, v in value.items()}
    return plain_choice(value)


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
    if meta is not None and not isinstance(meta, dict):
        raise SubnetFileError(f'meta must be a dict, got '
                              f'{type(meta).__name__}')
    # every value a copy of its own: values that share a list would be
    # written as a YAML anchor and alias, which the reader refuses
    doc = dict(
        format_version=FORMAT_VERSION,
        subnet={k: _plain_tree(v)
                for k, v in subnet.items()})
    if meta:
        doc['meta'] = {k: _plain_tree(v) for k, v in meta.items()}
    if suffix == '.json':
        text = json.dumps(doc, indent=2) + '\n'
    else:
        import yaml

        class NoAliases(yaml.SafeDumper):

            def ignore_aliases(self, data):
                return True

        text = yaml.dump(
            doc, Dumper=NoAliases, sort_keys=False, default_flow_style=None)
    return atomic_write_text(path, text)


def read_subnet_file(path: str) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Read and shape-check a subnet file (no model needed).

    Returns:
        tuple: ``(subnet, meta)``.

    Raises:
        FileNotFoundError: the file does not exist (or is a link to
            nothing).
        IsADirectoryError: the path is a directory.
        OSError: the path is not a regular file (a FIFO, a device).
        SubnetFileError: empty, not YAML/JSON, wrong format version, or the
            wrong types inside.
    """
    check_file(path, 'subnet file')
    suffix = _check_suffix(path)
    with open(path, 'rb') as f:
        data = f.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise SubnetFileError(
            f'{path}: {osp.getsize(path)} bytes is more than a subnet file '
            f'holds (at most {MAX_BYTES} bytes)')
    text = _decode(path, data)
    if not text.strip():
        raise SubnetFileError(f'{path}: the subnet file is empty')
    import yaml
    try:
        if suffix == '.json':
            doc = json.loads(text, object_pairs_hook=_json_pairs)
        else:
            doc = yaml.load(text, Loader=_loader())
    except (ValueError, ArithmeticError, RecursionError, yaml.YAMLError) as e:
        kind = 'JSON' if suffix == '.json' else 'YAML'
        raise SubnetFileError(
            f'{path}: not valid {kind}: {short_str(str(e), 600)}') from None
    if not isinstance(doc, dict):
        raise SubnetFileError(f'{path}: expected a mapping with keys '
                              f"'format_version' and 'subnet', got "
                              f'{type(doc).__name__}')
    version = doc.get('format_version')
    if type(version) is not int or version != FORMAT_VERSION:
        raise SubnetFileError(f'{path}: format_version {short_repr(version)} '
                              'is not supported (this code reads '
                              f'{FORMAT_VERSION})')
    unknown = sorted(map(str, set(doc) - {'format_version', 'subnet', 'meta'}))
    if unknown:
        raise SubnetFileError(f'{path}: unknown top-level keys '
                              f'{short_repr(unknown)}; valid: '
                              "['format_version', 'subnet', 'meta']")
    subnet = doc.get('subnet')
    if not isinstance(subnet, dict) or not subnet:
        raise SubnetFileError(f"{path}: 'subnet' must be a non-empty mapping "
                              f'name -> choice, got {short_repr(subnet)}')
    for name, choice in subnet.items():
        if not isinstance(name, str):
            raise SubnetFileError(f'{path}: mutable names must be strings, '
                                  f'got {short_repr(name)}')
        number = (int, float)
        ok = isinstance(choice,
                        (str, ) + number) or (isinstance(choice, list) and all(
                            isinstance(c, number) and not isinstance(c, bool)
                            for c in choice))
        if not ok or isinstance(choice, bool):
            raise SubnetFileError(
                f'{path}: {short_str(name)}: choice '
                f'{short_repr(choice)} has the wrong type '
                f'{type(choice).__name__} (valid: str, int, float, list of '
                'numbers)')
    meta = doc.get('meta', {})
    if not isinstance(meta, dict):  # [], 0, false and null too
        raise SubnetFileError(f"{path}: 'meta' must be a mapping (e.g. "
                              f'score: 0.4), got {short_repr(meta)} '
                              f'({type(meta).__name__})')
    return subnet, meta
