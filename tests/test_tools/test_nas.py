"""tools/nas.py: the whole pipeline (baseline -> supernet -> search ->
export -> retrain -> table) on tiny digits, skipping finished stages when
run again; the stage configs it writes run alone."""
import json
import os
import os.path as osp

import pytest

from mmnas_tricks.testing import shrink_digits_cfg
from mmnas_tricks.utils import load_config
from ..conftest import TINY_SPEC
from .test_train_test import _run

DET = 'configs/nas/spos_fcos_r18w16_fpn-elastic_gn-head-elastic_digits.py'
MAIN = 'configs/nas/nsga2_fcos_whole-elastic_r18w16_digits.py'
SEG = 'configs/nas/spos_fpn_r18w16_fpn-search_head-search_digits-seg.py'


def tiny_pipeline(repo_root, tiny_digits, tmp_path, config, name):
    cfg = shrink_digits_cfg(
        load_config(osp.join(repo_root, config)),
        tiny_digits,
        TINY_SPEC,
        work_dir=str(tmp_path / 'unused'),
        experiment_name=name)
    nas = cfg.nas
    nas.search.update(max_generations=2, population_size=3, calibrate_bn=2)
    if 'NSGA2' in nas.search.type:
        nas.search.update(num_offspring=2)  # the config's FLOPs window kept
    else:
        nas.search.update(
            top_k=2, num_mutation=1, num_crossover=1, constraints=None)
    nas.retrain.train_cfg.max_epochs = 1
    nas.retrain.train_cfg.val_interval = 1
    if nas.get('finetune'):
        nas.finetune.train_cfg.update(max_epochs=1, val_interval=1)
        nas.finetune.param_scheduler = []
    nas.retrain.param_scheduler = cfg.param_scheduler
    if nas.get('rerank'):  # the best of each budget: one or two candidates
        nas.rerank.update(topk=1, group_by=None)
    if 'bbox_head' in cfg.model:
        cfg.model.test_cfg.score_thr = 0.0
        cfg.model.test_cfg.nms_pre = 100
    baseline = shrink_digits_cfg(
        load_config(
            osp.join(osp.dirname(osp.join(repo_root, config)), nas.baseline)),
        tiny_digits,
        TINY_SPEC,
        work_dir=str(tmp_path / 'unused'),
        experiment_name=name + '_baseline')
    if 'bbox_head' in baseline.model:
        baseline.model.test_cfg.score_thr = 0.0
        baseline.model.test_cfg.nms_pre = 100
    baseline_path = str(tmp_path / f'{name}_baseline.py')
    baseline.dump(baseline_path)
    nas.baseline = baseline_path
    path = str(tmp_path / f'{name}.py')
    cfg.dump(path)
    return path


# the segmentation pipeline's stages through real command lines (nas.py
# starting python tools/train.py per stage: the end-to-end test of the
# pipeline), the main job's (five stages) in-process: the same command
# lines, parsed by the same tools/train.py, without an interpreter start per
# stage (~8 s each here)
@pytest.mark.heavy
@pytest.mark.parametrize('config,key,in_process',
                         [(MAIN, 'coco/bbox_mAP', True), (SEG, 'mIoU', False)])
def test_pipeline_runs_every_stage_and_skips_finished_ones(
        repo_root, tiny_digits, tmp_path, config, key, in_process, run_tool):
    name = 'nas_det' if config == MAIN else 'nas_seg'
    path = tiny_pipeline(repo_root, tiny_digits, tmp_path, config, name)
    work = str(tmp_path / 'nas')

    def nas(*args):
        return run_tool('tools/nas.py', *args, stages_in_process=in_process)

    log = nas(path, '--work-dir', work)
    stages = ('baseline', 'supernet', 'search')
    assert [log.index(f'[nas] stage {s}: ') for s in stages
            ] == sorted(log.index(f'[nas] stage {s}: ')
                        for s in stages)  # in this order
    search = osp.join(work, 'search', 'search')
    # the main job exports the best subnet at <= 0.5x and <= 1x the
    # baseline's FLOPs, the segmentation one the best subnet
    names = ['best_subnet_0.5x', 'best_subnet_1x'] if config == MAIN else \
        ['best_subnet']
    exported = [n for n in names if osp.isfile(osp.join(search, f'{n}.py'))]
    assert exported and (config != MAIN or 'best_subnet_1x' in exported)
    for n in exported:
        for f in (f'{n}.yaml', f'{n}.py', f'{n}.pth'):
            assert osp.isfile(osp.join(search, f)), f
    for f in ('candidates.csv', 'score_vs_flops.png', 'reference.json',
              'pareto_front.json'):
        assert osp.isfile(osp.join(search, f)), f
    results = json.load(open(osp.join(work, 'results.json')))
    *founds, base = results['rows']
    assert base['model'] == 'baseline'
    tuned = [r for r in founds if r['trained'] != 'from scratch']
    founds = [r for r in founds if r['trained'] == 'from scratch']
    assert len(founds) == len(exported)
    found = founds[-1]  # best_subnet (seg) or best_subnet_1x (main job)
    # every trained model is also scored on the test split, its final
    # weights (here the test loader reads the tiny build's val canvases, as
    # the val loader does: the two scores are equal)
    for row in results['rows']:
        assert row['test_score'] == pytest.approx(row['score'], abs=1e-4)
    for stage in ['baseline'
                  ] + [f'retrain{n[len("best_subnet"):]}' for n in exported]:
        assert osp.isfile(osp.join(work, stage, 'test_metrics.json')), stage
    assert not osp.isfile(osp.join(work, 'supernet', 'test_metrics.json'))
    # the main job also fine-tunes each exported subnet from its supernet
    # weights: the same architecture, its own score and training time
    assert len(tuned) == (len(exported) if config == MAIN else 0)
    for row, plain in zip(tuned, founds):
        assert row['model'] == plain['model'] + ', fine-tuned'
        assert row['trained'] == 'fine-tuned from the supernet'
        assert (row['gflops'], row['params_m'],
                row['input_size']) == (plain['gflops'], plain['params_m'],
                                       plain['input_size'])
        assert row['train_min'] > 0
        tuned_cfg = load_config(row['config'])
        assert tuned_cfg.load_from.endswith(
            osp.basename(plain['config'])[:-3] + '.pth')
        assert tuned_cfg.train_cfg.max_epochs == 1
    assert found['model'] == ('found'
                              if config == SEG else 'found (<= 1x FLOPs)')
    assert found['score_key'] == key
    assert found['gflops'] > 0 and base['gflops'] > 0
    assert found['latency_ms'] > 0 and base['latency_ms'] > 0
    assert found['search_min'] > 0 and found['train_min'] > 0
    assert found['gflops'] <= base['gflops'] * 1.0001 or config == SEG
    for f in ('results.md', 'results.csv', 'results.png'):
        assert osp.isfile(osp.join(work, f))
    # model-zoo entries: the exported subnet, and the retrained found model
    import yaml
    last = exported[-1]
    metafile = yaml.safe_load(open(osp.join(search, f'{last}.metafile.yml')))
    entry = metafile['Models'][0]
    assert entry['Config'] == f'{last}.py'
    assert entry['Weights'] == f'{last}.pth'
    assert entry['Metadata']['Subnet'] == f'{last}.yaml'
    # FLOPs beside the input size they were counted at (one rule), the
    # found subnet's own where the space chooses the resolution
    assert base['input_size'] == '128x128'
    assert entry['Metadata']['Input size'] == found['input_size']
    assert entry['Metadata']['Input size from']
    assert 'input size' in open(osp.join(work, 'results.md')).read().lower()
    suffix = last[len('best_subnet'):]
    zoo = yaml.safe_load(open(osp.join(work,
                                       f'model_zoo{suffix}.yml')))['Models'][0]
    assert osp.isfile(osp.join(work, zoo['Weights']))
    assert osp.isfile(osp.join(work, zoo['Config']))
    assert zoo['Results'][0]['Metrics'][key] == pytest.approx(
        found['score'], abs=1e-4)
    assert zoo['Metadata']['FLOPs (G)'] == pytest.approx(found['gflops'])
    if key == 'mIoU':
        # mmseg's own, unmodified tools/test.py (from its wheel) tests the
        # exported segmentor (mmdet's: tests/test_tools/test_supernets.py)
        from mmengine.utils import get_installed_path
        mmseg_test = osp.join(
            get_installed_path('mmseg'), '.mim', 'tools', 'test.py')
        log = _run(repo_root, mmseg_test, osp.join(search, f'{last}.py'),
                   osp.join(search, f'{last}.pth'), '--work-dir',
                   str(tmp_path / 'mmseg_test'))
        assert 'mIoU' in log
    # the exported config trains the full training split, not the supernet's
    retrain = load_config(osp.join(search, f'{last}.py'))
    assert retrain.train_dataloader.dataset.get('subset') is None
    assert retrain.train_cfg.type == 'EpochBasedTrainLoop'
    assert not retrain.get('custom_hooks')

    reranked = 0
    if config == MAIN:
        # the search's best subnet of each budget re-ranked by a one-epoch
        # fine-tune from its exported weights, on the supernet's data,
        # scored on the search's held-out split; each budget retrains the
        # best fine-tuned candidate within it
        choice = json.load(open(osp.join(work, 'rerank', 'choice.json')))
        assert results['rerank'] == choice
        assert sorted(choice['picks']) == sorted(exported)
        names = {c['name'] for c in choice['candidates']}
        reranked = len(names)
        assert 1 <= reranked <= len(exported)
        for cand in choice['candidates']:
            assert cand['finetuned_score'] is not None
            assert set(cand['budgets']) <= set(exported)
            rc = load_config(
                osp.join(work, 'configs', f'rerank_{cand["name"]}.py'))
            assert rc.load_from == osp.abspath(
                osp.join(search, f'{cand["name"]}.pth'))
            assert rc.train_cfg.max_epochs == 1
            assert tuple(rc.train_dataloader.dataset.subset) == (0.0, 0.875)
            assert rc.val_evaluator.type == 'mmnas_tricks.PreciseCocoMetric'
        pick = choice['picks']['best_subnet_1x']['reranked']
        assert found['config'] == osp.join(search, f'{pick}.py')
        score = {
            c['name']: c['finetuned_score']
            for c in choice['candidates']
        }[pick]
        assert found['finetuned_estimate'] == pytest.approx(score, abs=1e-4)
        assert 're-ranked by a 1-epoch fine-tune' in open(
            osp.join(work, 'results.md')).read()

    # run again: every stage is skipped, the report is rewritten
    log = nas(path, '--work-dir', work)
    assert log.count(': done, skipped') == 3 + reranked + len(exported) + \
        len(tuned)
    assert json.load(open(osp.join(work, 'results.json')))['rows'] == \
        results['rows']


def test_bad_pipeline_config(repo_root, tmp_path, run_tool):
    cfg = load_config(osp.join(repo_root, DET))
    cfg.nas.pop('baseline')
    path = str(tmp_path / 'bad.py')
    cfg.dump(path)
    # the command fails (uncaught, so a non-zero exit) naming the key
    with pytest.raises(Exception, match='nas.baseline is missing'):
        run_tool('tools/nas.py', path)


def test_the_search_ranks_by_the_pipelines_score_key(repo_root):
    """The score key is set once (nas.score_key): the search stage takes
    it, and a search that names another one is refused."""
    from mmnas_tricks.engine.pipeline import stage_configs
    path = osp.join(repo_root, DET)
    cfg = load_config(path)
    assert 'score_key' not in cfg.nas.search
    stages = stage_configs(cfg, path)
    assert stages['search'].train_cfg.score_key == stages['score_key'] == \
        cfg.nas.score_key
    cfg.nas.search.score_key = 'coco/bbox_mAP_50'
    with pytest.raises(
            ValueError,
            match=r"nas.search.score_key='coco/bbox_mAP_50' in .* "
            r"is not nas.score_key='coco/bbox_mAP'"):
        stage_configs(cfg, path)


def test_stage_bookkeeping(repo_root, tmp_path, monkeypatch):
    """Finished stages are skipped, a rerun stage makes the stages that use
    its product run again, --fresh does not resume (stages faked)."""
    import importlib.util

    from mmnas_tricks.engine.nas_pipeline import NASPipeline
    spec = importlib.util.spec_from_file_location(
        'nas_tool', osp.join(repo_root, 'tools', 'nas.py'))
    nas = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(nas)
    calls = []

    def fake_train(self, stage, config, options):
        calls.append((stage, self.fresh))
        product = self.product(stage)
        os.makedirs(osp.dirname(product), exist_ok=True)
        open(product, 'w').write('{}')
        self.state.setdefault(stage, dict(seconds=1.0))
        if stage == 'supernet':
            open(osp.join(self.dir('supernet'), 'last_checkpoint'),
                 'w').write('ckpt.pth')
        if stage == 'search':
            open(
                osp.join(self.dir('search'), 'search', 'best_subnet.py'),
                'w').write('')

    monkeypatch.setattr(NASPipeline, 'run_train', fake_train)
    config = osp.join(repo_root, DET)
    work = str(tmp_path / 'w')

    def run(*extra):
        calls.clear()
        nas.build_pipeline(
            nas.parse_args([
                config, '--work-dir', work, '--stages', 'supernet', 'search',
                'retrain', 'baseline', *extra
            ])).run()
        return [c[0] for c in calls]

    assert run() == ['baseline', 'supernet', 'search', 'retrain']
    assert run() == []
    calls.clear()
    nas.build_pipeline(
        nas.parse_args(
            [config, '--work-dir', work, '--stages', 'search',
             '--fresh'])).run()
    assert calls == [('search', True)]
    assert run() == ['retrain']  # out of date after the new search
    assert json.load(open(osp.join(work, 'nas_state.json')))['retrain']['done']


def test_report_prints_the_recorded_hand_front_beside_the_found(
        repo_root, tmp_path):
    """nas.hand_front: the report's section with the recorded hand front
    (test means) and, for each found subnet retrained from scratch, the
    best hand rule at no more FLOPs and the margin; the recipe check by
    the baseline's config fingerprint; a missing file is refused."""
    from mmnas_tricks.engine.nas_pipeline import NASPipeline
    from mmnas_tricks.engine.rank import config_fingerprint
    base = load_config(
        osp.join(repo_root, 'configs', 'baselines',
                 'fcos_r18w16_fpn_gn-head_12e_digits.py'))
    front = [
        dict(model='width_x0.5', gflops=0.04, mean=0.73, range=[0.72, 0.74]),
        dict(
            model='width_x0.5_res192',
            gflops=0.10,
            mean=0.78,
            range=[0.77, 0.79]),
    ]
    recorded = tmp_path / 'hand.json'
    recorded.write_text(
        json.dumps(
            dict(
                seeds=[0, 1, 2],
                hand_front=front,
                rows=[
                    dict(
                        model='baseline', fingerprint=config_fingerprint(base))
                ])))
    config = tmp_path / 'main.py'
    baseline = osp.join(repo_root, 'configs', 'baselines',
                        'fcos_r18w16_fpn_gn-head_12e_digits.py')
    config.write_text(f'_base_ = [{osp.join(repo_root, MAIN)!r}]\n'
                      f'nas = dict(baseline={baseline!r}, '
                      f'hand_front={str(recorded)!r})\n')
    pipe = NASPipeline(
        str(config),
        osp.join(repo_root, 'tools'),
        work_dir=str(tmp_path / 'w'))
    found = [
        dict(
            model='found (<= 0.5x FLOPs)',
            trained='from scratch',
            gflops=0.08,
            test_score=0.75),
        dict(
            model='found (<= 1x FLOPs)',
            trained='from scratch',
            gflops=0.16,
            test_score=0.79),
        dict(
            model='found (<= 1x FLOPs), fine-tuned',
            trained='fine-tuned from the supernet',
            gflops=0.16,
            test_score=0.70),
    ]
    hand = pipe.hand_front(found)
    assert hand['same_recipe'] and hand['seeds'] == [0, 1, 2]
    assert [(c['hand'], c['margin'])
            for c in hand['comparison']] == [('width_x0.5', 0.02),
                                             ('width_x0.5_res192', 0.01)]
    assert 'the hand front' in hand['text']
    assert '| width_x0.5_res192 | 0.1000 | 0.7800 (0.7700-0.7900) |' in \
        hand['text']
    assert '+0.0100' in hand['text']
    # another recipe's front is printed, but marked
    recorded.write_text(json.dumps(dict(seeds=[0], hand_front=front, rows=[])))
    assert 'NOT this baseline' in pipe.hand_front(found)['text']
    config.write_text(f'_base_ = [{osp.join(repo_root, MAIN)!r}]\n'
                      f'nas = dict(baseline={baseline!r}, '
                      "hand_front='missing.json')\n")
    with pytest.raises(FileNotFoundError, match='nas.hand_front .*missing'):
        NASPipeline(str(config), osp.join(repo_root, 'tools'))


def test_jobs_run_a_stages_runs_side_by_side(repo_root, tmp_path, monkeypatch):
    """tools/nas.py --jobs 2: the runs of one stage (here the re-rank
    candidates) run two at once, each a tools/train.py with half the cores'
    torch threads, and the state records every one (stages faked)."""
    import subprocess
    import threading
    import time

    from mmnas_tricks.engine.nas_pipeline import NASPipeline
    pipe = NASPipeline(
        osp.join(repo_root, MAIN),
        osp.join(repo_root, 'tools'),
        work_dir=str(tmp_path / 'w'),
        stages=['rerank'],
        jobs=2)
    names = ['c0', 'c1', 'c2']
    monkeypatch.setattr(
        NASPipeline, 'rerank_candidates', lambda self:
        [dict(name=n, budgets=['best_subnet_1x'], score=0.1) for n in names])
    monkeypatch.setattr(NASPipeline, 'write_rerank_config',
                        lambda self, name, path: None)
    monkeypatch.setattr(NASPipeline, 'write_rerank_choice', lambda self: None)
    lock, active, peak = threading.Lock(), [0], [0]

    def fake_run(cmd, check, env):
        assert env['OMP_NUM_THREADS'] == str(max(1, os.cpu_count() // 2))
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.5)
        work = cmd[cmd.index('--work-dir') + 1]
        os.makedirs(work, exist_ok=True)
        open(osp.join(work, 'final_metrics.json'),
             'w').write('{"coco/bbox_mAP": 0.5}')
        with lock:
            active[0] -= 1

    monkeypatch.setattr(subprocess, 'run', fake_run)
    pipe.run()
    assert peak[0] == 2
    state = json.load(open(osp.join(str(tmp_path / 'w'), 'nas_state.json')))
    assert all(state[f'rerank_{n}']['done'] for n in names)
    assert pipe.rerank_scores() == {n: 0.5 for n in names}


def test_jobs_refuses_distributed_stages(repo_root, capsys):
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'nas_tool_jobs', osp.join(repo_root, 'tools', 'nas.py'))
    nas = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(nas)
    for extra in (['--gpus', '2'], ['--slurm', 'p'], []):
        with pytest.raises(SystemExit):
            nas.parse_args(['x.py', '--jobs', '0' if not extra else '2'] +
                           extra)
    assert 'need >= 1' in capsys.readouterr().err
    assert nas.parse_args(['x.py', '--jobs', '2']).jobs == 2
