import json
import os

import pytest

from mmnas_tricks.utils import atomic_write_text, dump_json_atomic


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    path = tmp_path / 'sub' / 'a.json'
    dump_json_atomic({'a': 1}, str(path))
    dump_json_atomic({'a': 2}, str(path))
    assert json.loads(path.read_text()) == {'a': 2}
    assert os.listdir(tmp_path / 'sub') == ['a.json']


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / 'a.json'
    atomic_write_text(str(path), 'old')

    class Boom:
        pass

    with pytest.raises(TypeError):
        dump_json_atomic({'x': Boom()}, str(path))
    assert path.read_text() == 'old'
    assert os.listdir(tmp_path) == ['a.json']


def test_atomic_write_binary_and_failure(tmp_path):
    from mmnas_tricks.utils import atomic_write
    path = tmp_path / 'b.bin'
    atomic_write(str(path), lambda f: f.write(b'\x00\x01'))
    assert path.read_bytes() == b'\x00\x01'

    def half(f):
        f.write(b'partial')
        raise OSError('disk full')

    with pytest.raises(OSError, match='disk full'):
        atomic_write(str(path), half)
    assert path.read_bytes() == b'\x00\x01'
    assert os.listdir(tmp_path) == ['b.bin']


def test_png_is_written_atomically_and_the_figure_closed(tmp_path):
    import matplotlib.pyplot as plt

    from mmnas_tricks.utils.io import new_figure, save_png_atomic
    path = str(tmp_path / 'plot.png')
    fig, ax = new_figure((3, 2))
    ax.plot([0, 1], [1, 0])
    assert save_png_atomic(fig, path) == path
    assert not plt.fignum_exists(fig.number)
    with open(path, 'rb') as f:
        first = f.read()
    assert first[:8] == b'\x89PNG\r\n\x1a\n'
    fig, _ = new_figure()

    def broken(*args, **kwargs):
        raise RuntimeError('disk full')

    fig.savefig = broken
    with pytest.raises(RuntimeError, match='disk full'):
        save_png_atomic(fig, path)
    assert not plt.fignum_exists(fig.number)  # closed all the same
    with open(path, 'rb') as f:
        assert f.read() == first  # the old plot, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ['plot.png']
