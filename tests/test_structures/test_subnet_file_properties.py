"""Property tests of the subnet-file loading path (``load_subnet`` then
``set_subnet``, what ``tools/export_subnet.py`` does) against real digits
spaces: arbitrary bytes, arbitrary YAML / JSON-shaped documents, and valid
subnets with one choice replaced by an arbitrary value. Whatever the file
holds, the load either returns a subnet of canonical candidates or raises a
documented error (``SubnetFileError``, a ``ValueError``) that names the file
(and the mutable, where one choice is wrong) in a bounded message; a failed
call leaves the model's subnet as it was. Each example also runs under a
generous deadline: a hang guard (a 606-byte YAML of nested aliases once took
85 s and 3.2 GB), not a speed claim."""
import json
import math
import os.path as osp
from datetime import timedelta

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmnas_tricks.models.mutables import (SubnetError, get_subnet, load_subnet,
                                          named_mutables, set_subnet,
                                          validate_subnet)
from mmnas_tricks.structures import SubnetFileError
from mmnas_tricks.testing import config_dir
from mmnas_tricks.utils import build_model, load_config

SPACES = {
    'whole-elastic': 'fcos_whole-elastic_r18w16_fpn_gn-head_12e_digits.py',
    'nasfcos': 'nasfcos_r18w16_fpn-cells-search_gn-head-search_12e_digits.py',
}
#: longest error message accepted (the file path included)
MAX_MESSAGE = 1500
SETTINGS = dict(
    deadline=timedelta(seconds=20),
    suppress_health_check=[
        HealthCheck.function_scoped_fixture, HealthCheck.too_slow
    ])


@pytest.fixture(scope='module')
def spaces():
    return {
        name:
        build_model(load_config(osp.join(config_dir(), 'supernets', config)))
        for name, config in SPACES.items()
    }


@pytest.fixture(scope='module')
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp('subnet_files')


scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                    st.floats(allow_nan=True, allow_infinity=True),
                    st.text(max_size=40))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12)


def _check(model, path, name=None):
    """Load ``path`` into ``model`` through the public path; on failure the
    documented error, naming the file (and ``name``), bounded, the model's
    subnet unchanged."""
    before = get_subnet(model)
    try:
        subnet, meta = load_subnet(path, model)
        set_subnet(model, subnet)
    except SubnetFileError as e:
        message = str(e)
        assert path in message
        assert len(message) <= MAX_MESSAGE, message[:300]
        if name is not None:
            assert name in message
        assert get_subnet(model) == before
        return None
    mutables = named_mutables(model)
    assert set(subnet) == set(mutables)
    for key, choice in subnet.items():
        assert choice in mutables[key].choices
    assert get_subnet(model) == subnet
    set_subnet(model, before)
    return subnet


def _dump(doc, suffix):
    if suffix == '.json':
        return json.dumps(doc)  # Infinity / NaN as Python's json writes
    return yaml.safe_dump(doc)


@settings(max_examples=250, **SETTINGS)
@given(
    data=st.binary(max_size=600),
    suffix=st.sampled_from(['.yaml', '.yml', '.json']),
    space=st.sampled_from(sorted(SPACES)))
def test_arbitrary_bytes(spaces, folder, data, suffix, space):
    path = str(folder / f'bytes{suffix}')
    with open(path, 'wb') as f:
        f.write(data)
    _check(spaces[space], path)


@settings(max_examples=200, **SETTINGS)
@given(
    doc=st.one_of(
        values,
        st.fixed_dictionaries(
            dict(
                format_version=st.one_of(st.just(1), values),
                subnet=st.one_of(values,
                                 st.dictionaries(st.text(max_size=30),
                                                 values))),
            optional=dict(meta=values, extra=values))),
    suffix=st.sampled_from(['.yaml', '.json']),
    space=st.sampled_from(sorted(SPACES)))
def test_arbitrary_documents(spaces, folder, doc, suffix, space):
    path = str(folder / f'doc{suffix}')
    with open(path, 'w', encoding='utf-8') as f:
        f.write(_dump(doc, suffix))
    _check(spaces[space], path)


@settings(max_examples=250, **SETTINGS)
@given(
    data=st.data(),
    suffix=st.sampled_from(['.yaml', '.json']),
    space=st.sampled_from(sorted(SPACES)))
def test_one_wrong_choice_is_named(spaces, folder, data, suffix, space):
    """A valid subnet with one mutable's choice replaced by an arbitrary
    value: loaded as that value's canonical candidate, or refused naming
    that mutable; ``set_subnet`` with the raw dict refuses it the same way
    (a ``SubnetError``) and changes nothing."""
    model = spaces[space]
    mutables = named_mutables(model)
    subnet = {
        n: data.draw(st.sampled_from(m.choices), label=n)
        for n, m in mutables.items()
    }
    name = data.draw(st.sampled_from(sorted(mutables)), label='replaced')
    value = data.draw(values, label='value')
    if isinstance(value, float) and not math.isfinite(value) and \
            suffix == '.yaml':
        suffix = '.json'  # YAML writes .inf / .nan: a float all the same
    subnet[name] = value
    path = str(folder / f'one{suffix}')
    with open(path, 'w', encoding='utf-8') as f:
        f.write(_dump(dict(format_version=1, subnet=subnet), suffix))
    loaded = _check(model, path, name)
    before = get_subnet(model)
    try:
        canonical = validate_subnet(model, subnet)
    except SubnetError as e:
        assert loaded is None
        assert name in str(e) and len(str(e)) <= MAX_MESSAGE
        with pytest.raises(SubnetError):
            set_subnet(model, subnet)
        assert get_subnet(model) == before
    else:
        assert loaded == canonical
