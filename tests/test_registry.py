import subprocess
import sys

import mmengine.registry as mmengine_registry
import pytest
from mmengine.registry import Registry

from mmnas_tricks import registry


def _mmengine_roots():
    return {
        name: obj
        for name, obj in vars(mmengine_registry).items()
        if isinstance(obj, Registry) and obj.parent is None
    }


def test_every_mmengine_root_has_a_child_with_locations():
    roots = _mmengine_roots()
    assert len(roots) >= 20
    missing = [
        name for name, root in roots.items()
        if root not in registry.ROOT_TO_CHILD
    ]
    assert missing == []
    for root, child in registry.ROOT_TO_CHILD.items():
        assert child.parent is root
        assert child.scope == 'mmnas_tricks'
        assert child._locations, child.name
        assert all(loc.startswith('mmnas_tricks.') for loc in child._locations)
        # the child is reachable from its root under our scope
        assert root._search_child('mmnas_tricks') is child
        # exported under the same name as mmengine's
        name = [n for n, r in _mmengine_roots().items() if r is root][0]
        assert getattr(registry, name) is child


def test_locations_import():
    for child in registry.ROOT_TO_CHILD.values():
        child.import_from_location()
    assert registry.DATASETS.get('DigitsCocoDataset') is not None


def test_scoped_type_resolves_from_mmdet_without_custom_imports():
    # A fresh interpreter that never imported mmnas_tricks: building a model
    # with type='mmnas_tricks.X' from the mmdet scope must find it.
    code = (
        'import sys\n'
        'from mmdet.registry import DATASETS\n'
        'from mmdet.utils import register_all_modules\n'
        'register_all_modules()\n'
        'assert "mmnas_tricks" not in sys.modules\n'
        'cls = DATASETS.get("mmnas_tricks.DigitsCocoDataset")\n'
        'assert cls is not None and cls.__name__ == "DigitsCocoDataset", cls\n'
        'cls = DATASETS.get("mmnas_tricks.DigitsSegDataset")\n'
        'assert cls.__name__ == "DigitsSegDataset", cls\n'
        'print("ok")\n')
    out = subprocess.run([sys.executable, '-c', code],
                         capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith('ok')


def test_unknown_scoped_type_is_a_clear_error():
    from mmdet.registry import DATASETS
    with pytest.raises(KeyError, match='NoSuchDataset'):
        DATASETS.build(dict(type='mmnas_tricks.NoSuchDataset'))
