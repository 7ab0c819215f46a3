"""tools/trick_ablation.py on a tiny segmentation pipeline: one row per
trick, variants with the same supernet share its training, a search-only
trick changes the estimates, and a rerun trains nothing."""
import importlib.util
import json
import os.path as osp

import pytest
from mmengine.runner import Runner

import mmnas_tricks.engine.rank as rank
from mmnas_tricks.utils import load_config
from .test_nas import SEG, tiny_pipeline


def _tool(repo_root):
    spec = importlib.util.spec_from_file_location(
        'trick_ablation_tool', osp.join(repo_root, 'tools',
                                        'trick_ablation.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.heavy
def test_ablation_table_shares_supernets_and_resumes(repo_root, tiny_digits,
                                                     tmp_path, monkeypatch):
    path = tiny_pipeline(repo_root, tiny_digits, tmp_path, SEG, 'ablation')
    cfg = load_config(path)
    cfg.randomness = dict(seed=0)
    cfg.ablation = dict(
        supernet_epochs=1,
        rank_subnets=3,
        rank_seed=0,
        standalone_epochs=1,
        search=dict(max_generations=1, population_size=3),
        tricks=dict(
            baseline=dict(),
            no_bn_calibration=dict(search=dict(calibrate_bn=0)),
            tunas_warmup=dict(hooks=[
                dict(type='mmnas_tricks.AllOpsWarmupHook', warmup_ratio=0.5)
            ])))
    cfg.dump(path)
    tool = _tool(repo_root)
    work = str(tmp_path / 'ablation')
    state = tool.main([path, '--work-dir', work])

    rows = state['table']
    assert [r['trick'] for r in rows
            ] == ['baseline', 'no_bn_calibration', 'tunas_warmup']
    for r in rows:
        assert -1 <= r['kendall_tau'] <= 1 or r['kendall_tau'] != r[
            'kendall_tau']  # NaN when a side is constant
        assert 0 <= r['found_standalone'] <= 100
        assert r['search_seconds'] > 0 and r['supernet_seconds'] > 0
    variants = state['variants']
    # the search-only trick reuses the baseline's supernet ...
    assert variants['baseline']['supernet'] == \
        variants['no_bn_calibration']['supernet']
    assert variants['tunas_warmup']['supernet'] != \
        variants['baseline']['supernet']
    assert len(state['supernets']) == 2
    # ... and scores without BN calibration (BN in the searched heads)
    assert variants['baseline']['estimates'] != \
        variants['no_bn_calibration']['estimates']
    # three rank subnets trained once, shared by the variants
    assert len(state['standalone']) >= 3
    for f in ('ablation.csv', 'ablation.md', 'ablation.png'):
        assert osp.isfile(osp.join(work, f))
    with open(osp.join(work, 'ablation.md')) as f:
        assert f.read().count('\n') == 5

    # a rerun trains and searches nothing
    def refuse(*args, **kwargs):
        raise AssertionError('trained again')

    monkeypatch.setattr(rank, 'train_resumable', refuse)
    monkeypatch.setattr(rank, 'train_standalone', refuse)
    monkeypatch.setattr(Runner, 'train', refuse)
    again = tool.main([path, '--work-dir', work])
    assert again['table'] == json.loads(json.dumps(state['table']))


def test_unknown_trick_keys_are_named(repo_root, tiny_digits, tmp_path):
    path = tiny_pipeline(repo_root, tiny_digits, tmp_path, SEG, 'ablation_bad')
    cfg = load_config(path)
    tool = _tool(repo_root)
    with pytest.raises(ValueError, match="valid: \\['supernet', 'hooks'"):
        tool.variant_configs(cfg, path, {}, 'x', dict(hook=[]))
    cfg.ablation = dict(tricks=dict(baseline=dict()))
    cfg.dump(path)
    with pytest.raises(SystemExit, match="valid: \\['baseline'\\]"):
        tool.main([path, '--tricks', 'warmup'])
