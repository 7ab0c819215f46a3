"""Rank-set files (tools/rank_correlation.py --rank-set): the fixed list of
subnets a rank study compares, read and checked with errors that name the
file and the entry, then resolved on the model (named overrides of the
first subnet, seeded random subnets within FLOPs windows)."""
import os.path as osp

import pytest
import torch

from mmnas_tricks.engine.rank import (RankSetError, rank_set_subnets,
                                      read_rank_set)
from mmnas_tricks.models.mutables import named_mutables
from mmnas_tricks.structures import subnet_key
from mmnas_tricks.testing import config_dir
from mmnas_tricks.utils import build_model, load_config

SPACE = osp.join(config_dir(), 'supernets',
                 'fcos_whole-elastic_r18w16_fpn_gn-head_12e_digits.py')
SHIPPED = osp.join(
    osp.dirname(config_dir()), 'configs', 'nas', 'rank_sets',
    'fcos_whole-elastic_digits.yaml')


@pytest.fixture(scope='module')
def space():
    torch.manual_seed(0)
    return build_model(load_config(SPACE))


def _write(tmp_path, text, name='set.yaml'):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    'text,match', [('- a\n', 'expected a mapping'),
                   ('named: {}\nwindows: []\n', r"unknown keys \['windows'\]"),
                   ('named: [a]\n', "'named' must map"),
                   ('random:\n  - {flops: [0.5, 1.0], num: 2}\n',
                    r'random\[0\]: expected the keys'),
                   ('random:\n  - {flops: [1.0, 0.5], num: 2, seed: 0}\n',
                    r'random\[0\]\.flops: expected \[low, high\]'),
                   ('random:\n  - {flops: [0.5, 1.0], num: 0, seed: 0}\n',
                    r'random\[0\]\.num: expected an integer >= 1'),
                   ('named: {a: {x: 1}\n', 'cannot read the rank set')])
def test_read_rank_set_names_the_file_and_entry(tmp_path, text, match):
    path = _write(tmp_path, text)
    with pytest.raises(RankSetError, match=match) as info:
        read_rank_set(path)
    assert str(info.value).startswith(path)


def test_the_shipped_rank_set_reads():
    spec = read_rank_set(SHIPPED)
    assert spec['named']['baseline'] == {}
    assert sum(w['num'] for w in spec['random']) == 9


def test_rank_set_subnets_resolve_on_the_model(space, tmp_path):
    path = _write(
        tmp_path, 'named:\n  baseline: {}\n'
        '  res160: {data_preprocessor.size: 160}\n'
        'random:\n  - {flops: [0.01, 20.0], num: 2, seed: 0}\n')
    got = rank_set_subnets(space, path, (3, 128, 128))
    assert [n for n, _, _ in got
            ] == ['baseline', 'res160', 'random0', 'random1']
    (_, first, one), (_, res160, ratio) = got[:2]
    assert one == 1.0
    assert first == {n: m.choices[0] for n, m in named_mutables(space).items()}
    assert res160 == dict(first, **{'data_preprocessor.size': 160})
    assert ratio == pytest.approx((160 / 128)**2, rel=0.02)
    assert all(r > 0 and r != 1.0 for _, _, r in got[2:])
    assert len({subnet_key(s) for _, s, _ in got}) == 4


def test_random_draws_keep_fixed_choices_and_held_out_sets_are_disjoint(
        space, tmp_path):
    """``fixed`` holds mutables at a choice in every draw of a window; a set
    ``disjoint_from`` another never holds one of its subnets: a named one
    is refused, random ones are drawn past it."""
    truth = _write(
        tmp_path, 'named:\n  baseline: {}\n'
        'random:\n  - {flops: [0.01, 20.0], num: 3, seed: 0,\n'
        '     fixed: {data_preprocessor.size: 160}}\n', 'truth.yaml')
    got = rank_set_subnets(space, truth, (3, 128, 128))
    assert all(s['data_preprocessor.size'] == 160 for _, s, _ in got[1:])
    # the same draws (seed 0) but disjoint from the truth: other subnets
    held = _write(
        tmp_path, 'disjoint_from: [truth.yaml]\n'
        'random:\n  - {flops: [0.01, 20.0], num: 3, seed: 0,\n'
        '     fixed: {data_preprocessor.size: 160}}\n', 'held.yaml')
    other = rank_set_subnets(space, held, (3, 128, 128))
    keys = {subnet_key(s) for _, s, _ in got}
    assert len(other) == 3 and not keys & {subnet_key(s) for _, s, _ in other}
    bad = _write(tmp_path, 'disjoint_from: [truth.yaml]\n'
                 'named:\n  mine: {}\n', 'bad.yaml')
    with pytest.raises(
            RankSetError,
            match=r'named\.mine is the subnet .*'
            r'truth\.yaml: baseline'):
        rank_set_subnets(space, bad, (3, 128, 128))
    with pytest.raises(RankSetError, match=r'random\[0\]\.fixed: .*33'):
        rank_set_subnets(
            space,
            _write(
                tmp_path, 'random:\n  - {flops: [0.1, 2], num: 1, '
                'seed: 0, fixed: {neck.width: 33}}\n', 'odd.yaml'),
            (3, 128, 128))
    with pytest.raises(RankSetError, match='missing.yaml is not a file'):
        read_rank_set(
            _write(tmp_path, 'disjoint_from: [missing.yaml]\n', 'm.yaml'))


@pytest.mark.parametrize(
    'text,match',
    [('named:\n  typo: {neck.widht: 32}\n', r'named\.typo: .*neck\.widht'),
     ('named:\n  odd: {neck.width: 33}\n', r'named\.odd: .*33'),
     ('named:\n  a: {}\n  b: {neck.width: 64}\n',
      r'named\.b is the same subnet as named\.a'),
     ('random:\n  - {flops: [50, 60], num: 1, seed: 0}\n',
      r'random\[0\]: 0 of 1 subnets within 50x-60x FLOPs in 1 draws')])
def test_rank_set_subnets_refuse_what_the_model_lacks(space, tmp_path, text,
                                                      match):
    path = _write(tmp_path, text)
    with pytest.raises(RankSetError, match=match) as info:
        rank_set_subnets(space, path, (3, 128, 128), max_tries=1)
    assert str(info.value).startswith(path)


def test_standalone_trainings_are_seeded(space):
    """A study's stand-alone trainings start from the tool's seed (not from
    a seed mmengine draws anew each run), and a changed seed is a changed
    recipe: its fingerprint differs, so recorded scores are not reused."""
    from mmnas_tricks.engine.rank import config_fingerprint, standalone_config
    first = {n: m.choices[0] for n, m in named_mutables(space).items()}
    cfg = load_config(SPACE)
    default, other = (standalone_config(cfg, first),
                      standalone_config(cfg, first, seed=3))
    assert default.randomness.seed == 0 and other.randomness.seed == 3
    assert config_fingerprint(default) != config_fingerprint(other)
    assert config_fingerprint(default) == config_fingerprint(
        standalone_config(cfg, first))


def test_fingerprint_covers_the_training_keys_only(space):
    """A helper variable of a config (a number, a dataloader kept for
    another stage) leaves the fingerprint as it is; anything the Runner
    trains with changes it."""
    from mmnas_tricks.engine.rank import config_fingerprint, standalone_config
    first = {n: m.choices[0] for n, m in named_mutables(space).items()}
    static = standalone_config(load_config(SPACE), first)
    helper = static.copy()
    helper.EPOCHS = 2
    helper.other_dataloader = dict(batch_size=3)
    assert config_fingerprint(helper) == config_fingerprint(static)
    for key, value in (('optim_wrapper', dict(optimizer=dict(lr=0.5))),
                       ('train_cfg', dict(max_epochs=99)), ('randomness',
                                                            dict(seed=7))):
        changed = static.copy()
        changed.merge_from_dict({key: value})
        assert config_fingerprint(changed) != config_fingerprint(static), key


def test_fingerprint_leaves_out_the_coco_backend(space):
    """The COCO library of a metric (the same statistics, tested in
    test_fast_coco_metric.py) does not make a recorded score stale; the
    metric's other settings and PreciseCocoMetric's unrounded values do."""
    from mmnas_tricks.engine.rank import config_fingerprint, standalone_config
    first = {n: m.choices[0] for n, m in named_mutables(space).items()}
    static = standalone_config(load_config(SPACE), first)
    evaluator = dict(static.val_evaluator)
    evaluator.pop('backend', None)

    def with_metric(**metric):
        cfg = static.copy()
        cfg.val_evaluator = metric
        return config_fingerprint(cfg)

    plain = dict(evaluator, type='CocoMetric')
    assert with_metric(**plain) == with_metric(**dict(
        plain, type='mmnas_tricks.FastCocoMetric')) == with_metric(**dict(
            plain, type='mmnas_tricks.FastCocoMetric', backend='pycocotools'))
    assert with_metric(**plain) != with_metric(**dict(plain, metric='segm'))
    precise = dict(plain, type='mmnas_tricks.PreciseCocoMetric')
    assert with_metric(**precise) != with_metric(**plain)
    assert with_metric(**precise) == with_metric(
        **dict(precise, backend='pycocotools'))


def _resize_scales(loader):
    dataset = loader['dataset']
    while 'pipeline' not in dataset and 'dataset' in dataset:
        dataset = dataset['dataset']
    return [
        tuple(t['scale']) for t in dataset['pipeline']
        if str(t.get('type', '')).endswith('Resize') and 'scale' in t
    ]


def test_finetune_estimates_train_and_score_at_the_chosen_size():
    """A fine-tune estimate trains on the supernet's training subset and
    scores on the search's held-out split, both at the subnet's own input
    size (the exported pipelines'), not at the supernet's base size."""
    from mmnas_tricks.engine.rank import finetune_estimate_config
    cfg = load_config(
        osp.join(
            osp.dirname(config_dir()), 'configs', 'nas',
            'nsga2_fcos_whole-elastic_r18w16_digits.py'))
    torch.manual_seed(0)
    subnet = {
        n: m.choices[0]
        for n, m in named_mutables(build_model(cfg)).items()
    }
    from mmnas_tricks.engine.pipeline import retrain_recipe, search_data
    pipeline = dict(retrain=retrain_recipe(cfg), **search_data(cfg))
    base = finetune_estimate_config(
        cfg, subnet, 'w.pth', epochs=1, lr=0.01, **pipeline)
    small = finetune_estimate_config(
        cfg,
        dict(subnet, **{'data_preprocessor.size': 96}),
        'w.pth',
        epochs=1,
        lr=0.01,
        **pipeline)
    for key in ('train_dataloader', 'val_dataloader'):
        assert _resize_scales(base[key]) == [(128, 128)], key
        assert _resize_scales(small[key]) == [(96, 96)], key
    assert small.train_dataloader.dataset.subset == \
        cfg.train_dataloader.dataset.subset
    # The search's own held-out split (data/digits_search), all but the
    # pipeline (resized to the subnet's size above).
    heldout = cfg.nas.search.val_dataloader.dataset
    assert {k: v for k, v in small.val_dataloader.dataset.items()
            if k != 'pipeline'} == \
        {k: v for k, v in heldout.items() if k != 'pipeline'}
    assert small.val_evaluator == cfg.nas.search.evaluator
    assert small.optim_wrapper.optimizer.lr == 0.01
    assert small.load_from == 'w.pth'


def test_finetune_estimates_keep_the_retrain_recipe_given():
    """A fine-tune estimate keeps the retrain recipe it is given, all but
    its training data."""
    from mmnas_tricks.engine.rank import finetune_estimate_config
    cfg = load_config(
        osp.join(
            osp.dirname(config_dir()), 'configs', 'nas',
            'nsga2_fcos_whole-elastic_r18w16_digits.py'))
    retrain = dict(log_level='WARNING', train_dataloader=dict(batch_size=99))
    torch.manual_seed(0)
    subnet = {
        n: m.choices[0]
        for n, m in named_mutables(build_model(cfg)).items()
    }
    static = finetune_estimate_config(
        cfg, subnet, 'w.pth', epochs=1, lr=0.01, retrain=retrain)
    assert static.log_level == 'WARNING'
    assert static.train_dataloader.batch_size == \
        cfg.train_dataloader.batch_size
