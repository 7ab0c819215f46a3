"""Atomic file writes: a temporary file in the same folder, then a rename."""
import json
import os
import os.path as osp
import tempfile
from typing import Any, BinaryIO, Callable, Optional, Sequence


def check_file(path: str, what: str) -> str:
    """``path`` if it is a regular file (or a link to one); else an error
    that says what it is instead, naming ``what`` and the path:
    ``FileNotFoundError`` ("does not exist", or a link to nothing),
    ``IsADirectoryError`` ("is a directory", a link to one too) or
    ``OSError`` ("is not a regular file": a FIFO, a device such as
    /dev/null, a socket)."""
    import stat
    if not osp.lexists(path):
        raise FileNotFoundError(f'{what} {path!r} does not exist')
    if not osp.exists(path):
        raise FileNotFoundError(f'{what} {path!r} is a symbolic link to '
                                f'{os.readlink(path)!r}, which does not exist')
    if osp.isdir(path):
        raise IsADirectoryError(f'{what} {path!r} is a directory, not a file')
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        kind = ('a FIFO' if stat.S_ISFIFO(mode) else
                'a character device' if stat.S_ISCHR(mode) else
                'a block device' if stat.S_ISBLK(mode) else
                'a socket' if stat.S_ISSOCK(mode) else 'not a regular file')
        raise OSError(f'{what} {path!r} is not a regular file ({kind})')
    return path


def atomic_write(path: str, write: Callable[[BinaryIO], Any]) -> str:
    """Call ``write(f)`` on a temporary binary file in ``path``'s folder and
    rename it to ``path``, so that readers see the old file or the new one,
    never a half-written one; on any error the temporary file is removed.
    Returns ``path``."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f'.{osp.basename(path)}.', suffix='.tmp', dir=folder)
    try:
        with os.fdopen(fd, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    return path


def atomic_write_text(path: str, text: str) -> str:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_write`.
    Returns ``path``."""
    data = text.encode('utf-8')
    return atomic_write(path, lambda f: f.write(data))


def dump_json_atomic(obj: Any, path: str, **kwargs) -> str:
    """``json.dump`` through :func:`atomic_write_text`. Returns ``path``."""
    kwargs.setdefault('indent', 2)
    return atomic_write_text(path, json.dumps(obj, **kwargs) + '\n')


def dump_csv_atomic(rows: Sequence[dict],
                    path: str,
                    fields: Optional[Sequence[str]] = None) -> str:
    """``rows`` (dicts) as a CSV with a header through
    :func:`atomic_write_text`; the columns are ``fields`` or every key in
    order of first appearance. Returns ``path``."""
    import csv
    import io
    if fields is None:
        fields = list(dict.fromkeys(k for row in rows for k in row))
    out = io.StringIO()
    writer = csv.DictWriter(
        out, fieldnames=list(fields), extrasaction='ignore')
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write_text(path, out.getvalue())


def new_figure(figsize=(6, 4), ncols: int = 1, **kwargs):
    """A matplotlib ``(figure, axes)`` (``plt.subplots(1, ncols, ...)``) on
    the Agg backend (no display), for :func:`save_png_atomic`."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt.subplots(1, ncols, figsize=figsize, **kwargs)


def save_png_atomic(fig, path: str, dpi: int = 100) -> str:
    """``fig`` as a PNG (tight layout) through :func:`atomic_write`, then
    closed. Returns ``path``."""
    import matplotlib.pyplot as plt
    fig.tight_layout()
    try:
        atomic_write(path, lambda f: fig.savefig(f, format='png', dpi=dpi))
    finally:
        plt.close(fig)
    return path
