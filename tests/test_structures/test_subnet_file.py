import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmnas_tricks.models.mutables import (InputChoice, MBConvChoice, OpChoice,
                                          get_subnet, load_subnet,
                                          sample_subnet, set_subnet)
from mmnas_tricks.structures import (SubnetFileError, dump_subnet,
                                     read_subnet_file)
from ..test_models.test_mutables import Toy


class PairSpace(Toy):
    """A second space: adds a k=2 input choice and an elastic MBConv
    (tuple choices, float expansion ratios)."""

    def __init__(self):
        super().__init__()
        self.pair = InputChoice(4, num_chosen=2)
        self.mb = MBConvChoice(
            4, 4, kernel_sizes=(3, 5), expand_ratios=(2.5, 4))
        self.head = OpChoice(
            dict(a=dict(type='Identity'), b=dict(type='Zero')), 4, 4)


def mbv2_space():
    """Depths, (kernel, expand) pairs and widths."""
    from mmnas_tricks.models.backbones import SearchableMobileNetV2
    return SearchableMobileNetV2(
        arch=((16, 2, 2), (16, 3, 2), (24, 2, 2)),
        out_indices=(1, 2),
        width_ratios=(1.0, 0.5))


def detnas_space():
    from mmnas_tricks.models.backbones import SearchableShuffleNetV2
    return SearchableShuffleNetV2(
        stage_blocks=(2, 2), stage_channels=(8, 16), out_indices=(1, ))


def nasfcos_space():
    """Input indices, op names and aggregations of FPN cells."""
    from mmnas_tricks.models.necks import NASFCOSSearchFPN
    return NASFCOSSearchFPN([8, 16], 8, num_outs=2, num_cells=3)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    space=st.sampled_from(
        [Toy, PairSpace, mbv2_space, detnas_space, nasfcos_space]),
    suffix=st.sampled_from(['.yaml', '.yml', '.json']))
def test_write_read_roundtrip(tmp_path_factory, seed, space, suffix):
    model = space()
    subnet = sample_subnet(model, random.Random(seed))
    path = str(tmp_path_factory.mktemp('s') / f'subnet{suffix}')
    dump_subnet(subnet, path, meta=dict(score=0.5, source='test'))
    read, meta = load_subnet(path, space())
    assert read == subnet
    assert meta == dict(score=0.5, source='test')
    other = space()
    set_subnet(other, read)
    assert get_subnet(other) == subnet


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize('name,text,match', [
    ('empty.yaml', '', 'the subnet file is empty'),
    ('bad.yaml', 'format_version: 1\nsubnet: {a: [1, 2\n', 'not valid YAML'),
    ('bad.json', '{"format_version": 1,', 'not valid JSON'),
    ('list.yaml', '- a\n- b\n', 'expected a mapping .*got list'),
    ('version.yaml', 'format_version: 7\nsubnet: {block1: skip}\n',
     'format_version 7 is not supported'),
    ('nover.yaml', 'subnet: {block1: skip}\n', 'format_version None'),
    ('extra.yaml', 'format_version: 1\nsubnet: {block1: skip}\nfoo: 1\n',
     r"unknown top-level keys \['foo'\]"),
    ('nosubnet.yaml', 'format_version: 1\n', "'subnet' must be a non-empty"),
    ('type.yaml', 'format_version: 1\nsubnet: {block1: {x: 1}}\n',
     "block1: choice {'x': 1} has the wrong type dict"),
    ('bool.yaml', 'format_version: 1\nsubnet: {block1: true}\n',
     'wrong type bool'),
    ('strlist.yaml', 'format_version: 1\nsubnet: {block1: [3, a]}\n',
     r"choice \[3, 'a'\] has the wrong type list"),
    ('meta.yaml', 'format_version: 1\nsubnet: {block1: skip}\nmeta: [1]\n',
     "'meta' must be a mapping"),
    ('subnet.txt', 'x', r"unknown subnet file suffix '.txt'"),
])
def test_malformed_files_are_named(tmp_path, name, text, match):
    path = _write(tmp_path, name, text)
    with pytest.raises(SubnetFileError, match=match) as e:
        read_subnet_file(path)
    assert name in str(e.value)


@pytest.mark.parametrize('subnet,match', [
    (dict(blok1='skip', block2='conv', pick=0),
     r"unknown mutable 'blok1' \(did you mean \['block1'.*missing "
     r"mutables \['block1'\]"),
    (dict(block1='conv9', block2='conv',
          pick=0), r"block1: 'conv9' is not a choice; valid: \['conv3x3'"),
    (dict(block1='skip', block2='conv'), r"missing mutables \['pick'\]"),
    (dict(block1='skip', block2='conv', pick=7), 'pick: 7 is not a choice'),
])
def test_files_that_do_not_fit_the_model(tmp_path, subnet, match):
    path = str(tmp_path / 's.yaml')
    dump_subnet(subnet, path)
    with pytest.raises(SubnetFileError, match=match) as e:
        load_subnet(path, Toy())
    assert 's.yaml' in str(e.value)


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="'nope.yaml' does not exist"):
        read_subnet_file('nope.yaml')


def test_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / 'best.yaml'
    dump_subnet(dict(block1='skip'), str(path))
    before = path.read_text()
    import yaml

    def boom(*args, **kwargs):
        raise RuntimeError('disk full')

    monkeypatch.setattr(yaml, 'dump', boom)  # the writer's serializer
    with pytest.raises(RuntimeError):
        dump_subnet(dict(block1='conv1x1'), str(path))
    assert path.read_text() == before
    assert os.listdir(tmp_path) == ['best.yaml']
    with pytest.raises(SubnetFileError, match='str keys'):
        dump_subnet({1: 'a'}, str(tmp_path / 'x.yaml'))


GOOD = 'format_version: 1\nsubnet: {block1: skip, block2: conv, pick: 0}\n'


@pytest.mark.parametrize('data,match', [
    (b'\xff\xfe\x00junk' * 8, 'not UTF-8 text .*seems to be UTF-16'),
    ('format_version: 1\nsubnet: {block1: \u00e9t\u00e9}\n'.encode('latin-1'),
     'not UTF-8 .*position 35.*single-byte encoding such as latin-1'),
    (GOOD.encode('utf-16'), 'seems to be UTF-16 \\(little-endian BOM\\)'),
    (bytes(range(256)), 'not UTF-8 text .*binary data'),
    (GOOD.encode() + '\u00e9'.encode()[:1],
     'UTF-8 cut off in the middle of a character'),
])
def test_files_that_are_not_utf8_are_named(tmp_path, data, match):
    path = tmp_path / 's.yaml'
    path.write_bytes(data)
    with pytest.raises(SubnetFileError, match=match) as e:
        read_subnet_file(str(path))
    assert 's.yaml' in str(e.value)


def test_utf8_with_a_byte_order_mark_reads(tmp_path):
    path = tmp_path / 's.yaml'
    path.write_bytes(GOOD.encode('utf-8-sig'))
    assert load_subnet(str(path), Toy())[0]['block1'] == 'skip'


@pytest.mark.parametrize('name,text,match', [
    ('alias.yaml', 'format_version: 1\nsubnet: {block1: &a skip, block2: *a'
     ', pick: 0}\n', r'alias \*a refused'),
    ('laughs.yaml', 'a: &a [x, x, x, x, x, x, x, x, x]\n' +
     ''.join(f'{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n'
             for p, c in zip('abcdefgh', 'bcdefghi')) + 'format_version: 1\n'
     'subnet: {block1: *i}\n', r'alias \*a refused'),
    ('dup.yaml', 'format_version: 1\nsubnet: {block1: skip, block1: conv, '
     'pick: 0}\n', "duplicate key 'block1' \\(first at line 2\\)"),
    ('dupver.yaml', 'format_version: 2\nformat_version: 1\nsubnet: {a: 0}\n',
     "duplicate key 'format_version'"),
    ('dup.json', '{"format_version": 1, "subnet": {"pick": 0, "pick": 1}}',
     "not valid JSON: duplicate key 'pick'"),
    ('true.yaml', 'format_version: true\nsubnet: {block1: skip}\n',
     'format_version True is not supported'),
    ('float.yaml', 'format_version: 1.0\nsubnet: {block1: skip}\n',
     'format_version 1.0 is not supported'),
    ('deep.yaml', 'format_version: 1\nsubnet: {block1: ' + '[' * 5000 +
     ']' * 5000 + '}\n', 'not valid YAML'),
])
def test_dangerous_yaml_is_refused(tmp_path, name, text, match):
    path = _write(tmp_path, name, text)
    with pytest.raises(SubnetFileError, match=match) as e:
        read_subnet_file(path)
    assert name in str(e.value)
    assert len(str(e.value)) < 1000


def test_huge_files_and_values_give_short_messages(tmp_path, monkeypatch):
    from mmnas_tricks.structures import subnet_file
    big = 'x' * 100_000
    path = _write(tmp_path, 'big.yaml',
                  f'format_version: 1\nsubnet: {{block1: {{a: {big}}}}}\n')
    with pytest.raises(SubnetFileError, match='wrong type dict') as e:
        read_subnet_file(path)
    assert len(str(e.value)) < 1000
    path = _write(
        tmp_path, 'keys.yaml', 'format_version: 1\nsubnet: {' +
        ', '.join(f'{big[:50]}{i}: [{i}, a]' for i in range(2000)) + '}\n')
    with pytest.raises(SubnetFileError, match='wrong type list') as e:
        read_subnet_file(path)
    assert len(str(e.value)) < 1000
    monkeypatch.setattr(subnet_file, 'MAX_BYTES', 1000)
    path = _write(tmp_path, 'long.yaml', GOOD + '#' * 1000 + '\n')
    with pytest.raises(
            SubnetFileError,
            match=r'long.yaml: 1\d{3} bytes is more than a subnet '
            'file holds \\(at most 1000 bytes\\)'):
        read_subnet_file(path)


class NumberSpace(Toy):
    """Toy plus the number-valued mutables of the whole-detector space: a
    conv shape, a depth and an input size."""

    def __init__(self):
        super().__init__()
        from mmnas_tricks.models.mutables import (ConvShapeChoice, DepthChoice,
                                                  InputSizeChoice)
        self.shape = ConvShapeChoice(4, 4, [(3, 1), (5, 1), (3, 2)])
        self.depth = DepthChoice(
            [dict(type='ConvOp', in_channels=4, out_channels=4)] * 3,
            [3, 1, 2])
        self.size = InputSizeChoice([128, 96, 160])


NUMBERS = dict(
    block1='skip', block2='conv', pick=0, shape=[3, 1], depth=3, size=128)


@pytest.mark.parametrize('name,value,match', [
    ('shape', 3, r'shape: 3 is not a choice \(a conv shape is a '
     r'\(kernel_size, dilation\) pair\); valid: \[\(3, 1\), \(5, 1\)'),
    ('shape', [float('inf'), 1], r'shape: \[inf, 1\] is not a choice'),
    ('shape', [3.7, 1], r'shape: \[3.7, 1\] is not a choice'),
    ('shape', [3, 1.5], r'shape: \[3, 1.5\] is not a choice'),
    ('shape', [3, 1, 1], r'shape: \[3, 1, 1\] is not a choice'),
    ('pick', 1.5, r'pick: 1.5 is not a choice; valid: \[0, 1, 2\]'),
    ('pick', float('nan'), r'pick: nan is not a choice'),
    ('depth', 2.5, r'depth: 2.5 is not a choice; valid: \[3, 1, 2\]'),
    ('depth', True,
     r'depth: (choice )?True (is not a choice|has the wrong type bool)'),
    ('size', float('-inf'), r'size: -inf is not a choice'),
    ('size', 'x' * 10**6, r"size: 'x+\.\.\.x+' is not a choice"),
])
def test_number_choices_follow_one_rule(tmp_path, name, value, match):
    model = NumberSpace()
    before = get_subnet(model)
    path = str(tmp_path / 's.json')
    dump_subnet(dict(NUMBERS, **{name: value}), path)
    with pytest.raises(SubnetFileError, match=match) as e:
        set_subnet(model, load_subnet(path, model)[0])
    assert 's.json' in str(e.value) and len(str(e.value)) < 1000
    with pytest.raises(ValueError, match=match.split(': ', 1)[1]):
        set_subnet(model, dict(NUMBERS, **{name: value}))
    assert get_subnet(model) == before


def test_whole_numbers_read_as_floats_are_the_int_choices(tmp_path):
    model = NumberSpace()
    path = str(tmp_path / 's.json')
    dump_subnet(
        dict(NUMBERS, pick=2.0, shape=[5.0, 1.0], depth=2.0, size=96.0), path)
    subnet = load_subnet(path, model)[0]
    set_subnet(model, subnet)
    got = get_subnet(model)
    assert got['shape'] == (5, 1) and got['depth'] == 2 and got['pick'] == 2
    assert all(
        type(v) is int
        for v in (got['pick'], got['depth'], got['size'], *got['shape']))


_choice = st.one_of(
    st.sampled_from(['conv3x3', 'skip', 'sep_conv_5x5']), st.integers(-5, 300),
    st.floats(0.25, 8.0), st.lists(st.integers(1, 7), min_size=1, max_size=3))


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(_choice, min_size=1, max_size=4),
    picks=st.lists(st.integers(0, 3), min_size=1, max_size=8),
    suffix=st.sampled_from(['.yaml', '.json']))
def test_shared_and_nested_values_round_trip(tmp_path_factory, values, picks,
                                             suffix):
    """Values that are the same object (a list every block shares, a dict
    of meta nested twice) are written out in full: no YAML anchor or
    alias, which the reader refuses, and the file reads back equal."""
    subnet = {
        f'block{i}': values[p % len(values)]
        for i, p in enumerate(picks)
    }
    shared = dict(widths=values[0], inner=dict(also=values[0]))
    meta = dict(a=shared, b=shared, c=[shared, shared])
    path = str(tmp_path_factory.mktemp('s') / f'subnet{suffix}')
    dump_subnet(subnet, path, meta=meta)
    text = open(path).read()
    assert '&id' not in text and '*id' not in text
    read, read_meta = read_subnet_file(path)
    assert read == {
        k: list(v) if isinstance(v, tuple) else v
        for k, v in subnet.items()
    }
    assert read_meta == meta


def test_the_writer_never_writes_an_alias(tmp_path):
    shared = [3, 1]
    path = str(tmp_path / 's.yaml')
    dump_subnet(dict(a=shared, b=shared), path, meta=dict(x=dict(y=shared)))
    assert read_subnet_file(path) == (dict(a=[3, 1],
                                           b=[3, 1]), dict(x=dict(y=[3, 1])))
    with pytest.raises(SubnetFileError, match='meta must be a dict'):
        dump_subnet(dict(a=1), path, meta=[1])


def _not_regular_files(tmp_path):
    folder = tmp_path / 'folder.yaml'
    folder.mkdir()
    fifo = tmp_path / 'fifo.yaml'
    os.mkfifo(fifo)
    to_folder = tmp_path / 'link_to_folder.yaml'
    to_folder.symlink_to(folder)
    to_null = tmp_path / 'null.yaml'
    to_null.symlink_to('/dev/null')
    broken = tmp_path / 'broken.yaml'
    broken.symlink_to(tmp_path / 'gone.yaml')
    return [
        (str(folder), IsADirectoryError, 'is a directory'),
        (str(to_folder), IsADirectoryError, 'is a directory'),
        (str(fifo), OSError, r'is not a regular file \(a FIFO\)'),
        ('/dev/null', OSError,
         r'is not a regular file \(a character device\)'),
        (str(to_null), OSError, 'is not a regular file'),
        (str(broken), FileNotFoundError, 'symbolic link to .*gone.yaml.*'
         'which does not exist'),
        (str(tmp_path / 'none.yaml'), FileNotFoundError, 'does not exist'),
    ]


def test_paths_that_are_not_regular_files_say_what_they_are(tmp_path):
    for path, error, match in _not_regular_files(tmp_path):
        for read in (read_subnet_file, lambda p: load_subnet(p, Toy())):
            with pytest.raises(error, match=match) as e:
                read(path)
            assert path in str(e.value)
            if error is not FileNotFoundError:
                assert 'does not exist' not in str(e.value)


@pytest.mark.parametrize('meta', ['[]', '0', 'false', 'null', "''", '[1]'])
def test_meta_must_be_a_mapping_when_present(tmp_path, meta):
    path = _write(
        tmp_path, 'm.yaml',
        f'format_version: 1\nsubnet: {{block1: skip}}\nmeta: {meta}\n')
    with pytest.raises(SubnetFileError, match="'meta' must be a mapping") as e:
        load_subnet(path, Toy())
    assert 'm.yaml' in str(e.value)
    # absent, or a mapping (even an empty one): read
    for ok in ('', 'meta: {}\n', 'meta: {score: 0.4}\n'):
        path = _write(tmp_path, 'ok.yaml',
                      'format_version: 1\nsubnet: {block1: skip}\n' + ok)
        assert isinstance(read_subnet_file(path)[1], dict)
