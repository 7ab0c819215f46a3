"""RankStudy (engine/study.py), the skeleton of the rank tools: a state
that a new study object resumes, stand-alone trainings kept while their
config is unchanged and trained again when it changes, rank statistics and
the result files."""
import json
import os.path as osp

import pytest
from mmengine.config import Config

import mmnas_tricks.engine.rank as rank
from mmnas_tricks.engine.study import RankStudy, rows_by_index
from mmnas_tricks.utils import rank_consistency


def _cfg(lr):
    return Config(dict(optim_wrapper=dict(optimizer=dict(lr=lr))))


def test_trainings_are_recorded_kept_and_redone_on_a_changed_config(
        tmp_path, monkeypatch, capsys):
    trained = []

    def train_standalone(cfg, work_dir, name, score_key):
        trained.append((cfg.optim_wrapper.optimizer.lr, work_dir, name))
        return 0.5 + cfg.optim_wrapper.optimizer.lr

    monkeypatch.setattr(rank, 'train_standalone', train_standalone)
    study = RankStudy(str(tmp_path), 'toy')
    rec = study.records.setdefault('a', dict(index=0))
    assert study.train(rec, _cfg(0.1), 'mAP', 'standalone/subnet0',
                       'toy0') == pytest.approx(0.6)
    assert trained == [(0.1, osp.join(str(tmp_path),
                                      'standalone/subnet0'), 'toy0')]
    assert study.trained(rec, _cfg(0.1))
    assert not study.trained(rec, _cfg(0.2))
    # saved at once: a new study object (a rerun) finds it and trains nothing
    again = RankStudy(str(tmp_path), 'toy')
    rec = again.records['a']
    assert rec['standalone_seconds'] >= 0
    assert again.train(
        rec, _cfg(0.1), 'mAP', 'x', 'toy0',
        label='subnet 0:') == pytest.approx(0.6)
    assert len(trained) == 1
    assert 'subnet 0: 0.6000 (done)' in capsys.readouterr().out
    # a changed config is trained again
    assert again.train(rec, _cfg(0.2), 'mAP', 'x', 'toy0') == \
        pytest.approx(0.7)
    assert len(trained) == 2
    assert 'its config changed' in capsys.readouterr().out
    with open(osp.join(str(tmp_path), 'toy.json')) as f:
        assert json.load(f)['records']['a']['standalone'] == \
            pytest.approx(0.7)


def test_rank_and_result_files(tmp_path):
    study = RankStudy(str(tmp_path), 'toy')
    study.records.update({
        'b': dict(index=1, estimate=0.2, standalone=0.4),
        'a': dict(index=0, estimate=0.1, standalone=0.5),
        'c': dict(index=2, estimate=0.3),  # not trained yet
    })
    rows = rows_by_index(study.records, ['a', 'b', 'c'], 'standalone')
    assert [r['index'] for r in rows] == [0, 1]
    ranks = study.rank(rows, ['estimate'])
    assert ranks['estimate'] == rank_consistency([0.1, 0.2], [0.5, 0.4])
    assert ranks['estimate']['kendall_tau'] == pytest.approx(-1.0)
    csv_path = study.write_table(rows, ['index', 'estimate', 'standalone'])
    with open(csv_path) as f:
        assert f.read().splitlines() == [
            'index,estimate,standalone', '0,0.1,0.5', '1,0.2,0.4'
        ]
    assert osp.isfile(study.path)  # the state, with the table
    png = study.scatter(rows, 'standalone', 'estimate', 'x', 'y', 't')
    with open(png, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    assert study.summary(
        'est',
        ranks['estimate']).startswith('est, 2 subnets: Kendall tau -1.000')
