import json

import pytest

from mmnas_tricks.engine.rerank import check_rerank, choose, select_candidates


def _key(size, width):
    return json.dumps({
        'data_preprocessor.size': size,
        'neck.width': width
    },
                      sort_keys=True)


# best first, as SearchLoop.ranked() gives them
RANKED = [
    _key(128, 32),
    _key(128, 24),
    _key(96, 32),
    _key(160, 16),
    _key(96, 16),
    _key(160, 8)
]
FLOPS = dict(zip(RANKED, [1.0, 0.8, 0.56, 0.9, 0.3, 0.45]))
BUDGETS = {'best_subnet_0.5x': 0.5, 'best_subnet_1x': 1.0}


def test_candidates_are_the_best_of_each_budget():
    """A subnet within both budgets is one candidate of both."""
    both = select_candidates(RANKED, FLOPS, BUDGETS, topk=5)
    assert [c['budgets'] for c in both if c['key'] == RANKED[4]
            ] == [['best_subnet_0.5x', 'best_subnet_1x']]
    out = select_candidates(RANKED, FLOPS, BUDGETS, topk=2)
    assert [c['key']
            for c in out] == [RANKED[0], RANKED[1], RANKED[4], RANKED[5]]
    assert out[0]['budgets'] == ['best_subnet_1x']
    assert out[2]['budgets'] == ['best_subnet_0.5x']


def test_group_by_takes_the_best_of_each_choice():
    """The best of each input size within each budget."""
    out = select_candidates(
        RANKED, FLOPS, BUDGETS, topk=1, group_by='data_preprocessor.size')
    by_key = {c['key']: c['budgets'] for c in out}
    assert list(by_key) == [
        RANKED[0], RANKED[2], RANKED[3], RANKED[4], RANKED[5]
    ]
    # 96 px within 1x: RANKED[2] (0.56) is better than RANKED[4]
    assert by_key[RANKED[2]] == ['best_subnet_1x']
    assert by_key[RANKED[4]] == ['best_subnet_0.5x']
    assert by_key[RANKED[5]] == ['best_subnet_0.5x']
    with pytest.raises(
            KeyError, match="group_by='backbone.depth'.*"
            'data_preprocessor.size'):
        select_candidates(RANKED, FLOPS, BUDGETS, group_by='backbone.depth')


def test_choose_picks_the_best_finetuned_within_each_budget():
    cands = [
        dict(name='candidate0', budgets=['best_subnet_1x']),
        dict(name='candidate1', budgets=['best_subnet_1x']),
        dict(
            name='candidate2', budgets=['best_subnet_0.5x', 'best_subnet_1x']),
    ]
    scores = dict(candidate0=0.70, candidate1=0.75, candidate2=0.72)
    assert choose(cands, scores, ['best_subnet_0.5x', 'best_subnet_1x']) == {
        'best_subnet_0.5x': 'candidate2',
        'best_subnet_1x': 'candidate1'
    }
    # a tie keeps the search's order (its better supernet score)
    tie = dict(candidate0=0.75, candidate1=0.75, candidate2=0.1)
    assert choose(cands, tie, ['best_subnet_1x']) == {
        'best_subnet_1x': 'candidate0'
    }


def test_bad_rerank_settings():
    assert check_rerank(None, 'x') is None
    assert check_rerank(dict(topk=2), 'x') == dict(
        topk=2, group_by=None, epochs=1, lr=None)
    with pytest.raises(KeyError, match=r"cfg.py nas: rerank keys \['top'\]"):
        check_rerank(dict(top=2), 'cfg.py nas')
    with pytest.raises(ValueError, match='rerank.epochs=0'):
        check_rerank(dict(epochs=0), 'x')
    with pytest.raises(ValueError, match='rerank.lr=-1'):
        check_rerank(dict(lr=-1), 'x')
