"""Atomic file writes: a temporary file in the same folder, then a rename."""
import json
import os
import os.path as osp
import tempfile
from typing import Any


def atomic_write_text(path: str, text: str) -> str:
    """Write ``text`` to ``path`` so that readers see the old file or the new
    one, never a half-written one. Returns ``path``."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f'.{osp.basename(path)}.', suffix='.tmp', dir=folder)
    try:
        with os.fdopen(fd, 'w') as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    return path


def dump_json_atomic(obj: Any, path: str, **kwargs) -> str:
    """``json.dump`` through :func:`atomic_write_text`. Returns ``path``."""
    kwargs.setdefault('indent', 2)
    return atomic_write_text(path, json.dumps(obj, **kwargs) + '\n')
