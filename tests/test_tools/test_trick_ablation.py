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


RECIPE = 'configs/nas/ablation_recipe_fcos_whole-elastic_digits.py'


def test_truth_mode_rows_over_seeds_and_resume(repo_root, tmp_path,
                                               monkeypatch):
    """--truth: one supernet per variant and seed against the recorded
    truth, no search, nothing alone; rows of mean and range; a rerun
    trains nothing; the variants change the supernet as their names say."""
    import mmnas_tricks.engine.tune as tune
    truth = tmp_path / 'truth.json'
    truth.write_text(
        json.dumps(
            dict(
                score_key='coco/bbox_mAP',
                records={
                    f'k{i}': dict(
                        index=i,
                        name=f's{i}',
                        subnet={'data_preprocessor.size': 128},
                        flops_ratio=0.8 + 0.05 * i,
                        standalone=0.5 + 0.1 * i)
                    for i in range(4)
                })))
    calls = []

    def evaluate(scored, supernet, truth_rows, work, baseline, score_key, seed,
                 calib, window, config_path):
        head = supernet.model.bbox_head
        calls.append(
            dict(
                seed=seed,
                baseline=baseline,
                window=window,
                lr=supernet.optim_wrapper.optimizer.lr,
                scheduler=[s['type'] for s in supernet.param_scheduler],
                pipeline=[
                    t['type']
                    for t in supernet.train_dataloader.dataset.pipeline
                ],
                act=head.get('act_choices'),
                scored_act=scored.model.bbox_head.get('act_choices'),
                truth=len(truth_rows)))
        tau = 0.5 + 0.1 * seed + (0.2 if head.get('act_choices') else 0)
        return dict(
            tau_all=tau,
            tau_window=tau - 0.1,
            flops_tau_all=0.3,
            flops_tau_window=0.2,
            supernet_seconds=10.0 + seed)

    monkeypatch.setattr(tune, 'evaluate_supernet', evaluate)
    tool = _tool(repo_root)
    work = str(tmp_path / 'ablation')
    args = [
        osp.join(repo_root, RECIPE), '--truth',
        str(truth), '--window', '0.85', '1.0', '--baseline-checkpoint',
        'base.pth', '--work-dir', work
    ]
    tool.main(args + ['--seeds', '0'])
    state = tool.main(args + ['--seeds', '1'])
    names = ['main', 'augment', 'sgdr', 'act', 'tuned']
    assert [r['trick'] for r in state['table']] == names
    assert len(calls) == 10  # five variants, two seeds
    by = {(c['seed'], i % 5): c for i, c in enumerate(calls)}
    for c in calls:
        assert c['baseline'] == 'base.pth' and c['truth'] == 4
        assert c['window'] == [0.85, 1.0]
    main, augment, sgdr, act, tuned = (by[(0, i)] for i in range(5))
    assert 'CutOut' in augment['pipeline'] and 'CutOut' not in main['pipeline']
    assert sgdr['scheduler'] == ['LinearLR', 'CosineRestartLR']
    assert act['act'] == act['scored_act'] == ('ReLU', 'SiLU', 'GELU',
                                               'HSwish')
    assert main['act'] is None and main['lr'] == 0.001
    assert tuned['lr'] == pytest.approx(0.0089, abs=1e-5)
    row = state['table'][3]
    assert row['seeds'] == '0 1'
    assert row['tau_all'] == pytest.approx(0.75)
    assert (row['tau_all_min'], row['tau_all_max']) == pytest.approx(
        (0.7, 0.8))
    assert row['tau_window'] == pytest.approx(0.65)
    with open(osp.join(work, 'ablation.md')) as f:
        md = f.read()
    assert '| act | 0 1 | 0.750 (0.700 to 0.800) | 0.650 (0.600 to ' \
        '0.700) |' in md
    assert '| FLOPs alone | | 0.300 | 0.200 |' in md
    assert osp.isfile(osp.join(work, 'ablation.png'))

    # a rerun trains nothing; another truth needs another work dir
    again = tool.main(args + ['--seeds', '0', '1'])
    assert len(calls) == 10
    assert again['table'] == json.loads(json.dumps(state['table']))
    other = tmp_path / 'other.json'
    other.write_text(truth.read_text())
    with pytest.raises(SystemExit, match='use another --work-dir'):
        tool.main([
            args[0], '--truth',
            str(other), '--baseline-checkpoint', 'base.pth', '--work-dir', work
        ])


def test_truth_mode_needs_its_flags(repo_root, tmp_path, capsys):
    tool = _tool(repo_root)
    config = osp.join(repo_root, RECIPE)
    with pytest.raises(SystemExit):
        tool.parse_args([config, '--window', '0.85', '1.0'])
    assert '--window needs --truth' in capsys.readouterr().err
    truth = tmp_path / 'truth.json'
    truth.write_text('{}')
    with pytest.raises(SystemExit, match='--baseline-checkpoint'):
        tool.main(
            [config, '--truth',
             str(truth), '--work-dir',
             str(tmp_path / 'w')])


def test_rank_rows_plot_equal_seeds(repo_root, tmp_path):
    """Equal taus (a tau over 17 subnets has many digits; a float mean may
    lie a rounding error off them): the row keeps them, and its plot comes
    out with error bars of 0."""
    tool = _tool(repo_root)
    tau = 35 / 68  # Kendall tau over 17 subnets, 0.5147...
    seeds = {
        str(s): dict(tau_all=tau, tau_window=0.1, supernet_seconds=1.0)
        for s in range(3)
    }
    row = tool._rank_row('x', seeds)
    assert row['seeds'] == '0 1 2'
    assert row['tau_all'] == pytest.approx(tau, abs=1e-12)
    assert row['tau_all_min'] == row['tau_all_max'] == tau
    tool._plot_rank_only([row], True, str(tmp_path / 'a.png'))
    assert osp.getsize(tmp_path / 'a.png') > 0
