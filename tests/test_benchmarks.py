"""The benchmark run on the GPU machine replaces mmcv's compiled ops by
``benchmarks/gpu/mmcv_ext_shim.py``: it must compute what mmcv computes."""
import importlib.util
import os.path as osp

import pytest
import torch


@pytest.fixture(scope='module')
def shim(repo_root):
    path = osp.join(repo_root, 'benchmarks', 'gpu', 'mmcv_ext_shim.py')
    spec = importlib.util.spec_from_file_location('mmcv_ext_shim', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _boxes(n, seed):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 100
    wh = torch.rand(n, 2, generator=g) * 40 + 1
    return torch.cat([xy, xy + wh], 1), torch.rand(n, generator=g)


@pytest.mark.parametrize('seed', [0, 1])
def test_shim_nms_keeps_what_mmcv_keeps(shim, seed):
    from mmcv.utils import ext_loader
    mmcv_ext = ext_loader.load_ext('_ext', ['nms'])
    boxes, scores = _boxes(300, seed)
    for thr in (0.3, 0.6):
        expected = mmcv_ext.nms(boxes, scores, iou_threshold=thr, offset=0)
        got = shim.nms(boxes, scores, iou_threshold=thr, offset=0)
        assert got.tolist() == expected.tolist()
        assert 0 < len(got) < len(boxes)
    assert shim.nms(boxes[:0], scores[:0], 0.5, 0).numel() == 0


def test_shim_focal_loss_equals_mmdets_pure_torch_one(shim):
    from mmdet.models.losses.focal_loss import py_sigmoid_focal_loss
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 10, generator=g)
    target = torch.randint(0, 11, (64, ), generator=g)  # 10 = background
    onehot = torch.nn.functional.one_hot(target, 11)[:, :10].float()
    x = logits.clone().requires_grad_(True)
    expected = py_sigmoid_focal_loss(
        x, onehot, gamma=2.0, alpha=0.25, reduction='none')
    expected.sum().backward()
    out = torch.zeros_like(logits)
    shim.sigmoid_focal_loss_forward(
        logits, target, logits.new_empty(0), out, gamma=2.0, alpha=0.25)
    grad = torch.zeros_like(logits)
    shim.sigmoid_focal_loss_backward(
        logits, target, logits.new_empty(0), grad, gamma=2.0, alpha=0.25)
    assert torch.allclose(out, expected.detach(), atol=1e-6)
    assert torch.allclose(grad, x.grad, atol=1e-6)


def test_shim_names_an_op_it_lacks(shim):
    with pytest.raises(NotImplementedError, match='roi_align_forward'):
        shim.roi_align_forward(None)


def _main_job_module(repo_root, monkeypatch):
    return _bench_module(repo_root, monkeypatch, 'main_job')


def _bench_module(repo_root, monkeypatch, name):
    import sys
    monkeypatch.chdir(repo_root)
    monkeypatch.syspath_prepend(osp.join(repo_root, 'benchmarks'))
    spec = importlib.util.spec_from_file_location(
        name, osp.join(repo_root, 'benchmarks', f'{name}.py'))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    sys.modules.pop('common', None)
    return bench


def test_reallocation_probe_subnet_variant_is_a_plain_exported_subnet(
        repo_root, monkeypatch, tmp_path):
    """A probe variant given as a subnet of the whole-detector space is
    written as the plain config the search would export: no searchable
    module left, the chosen tower depth and input size in it, and the
    FLOPs of that subnet inside the supernet."""
    from mmnas_tricks.models import subnet_resources
    from mmnas_tricks.models.mutables import named_mutables
    from mmnas_tricks.models.resources import input_size
    from mmnas_tricks.utils import build_model, load_config
    bench = _bench_module(repo_root, monkeypatch, 'reallocation_probe')
    name = 'towers2_160px_w8_d1112'
    path, gflops, _ = bench.export(name, str(tmp_path))
    plain = load_config(path)
    model = build_model(plain)
    assert not named_mutables(model)
    assert len(model.bbox_head.cls_convs) == 2
    assert len(model.bbox_head.reg_convs) == 2
    assert input_size(plain).shape[1:] == (160, 160)
    supernet_cfg = load_config(bench.WHOLE)
    supernet = build_model(supernet_cfg)
    changes = bench.VARIANTS[name][1]['_subnet']
    subnet = {n: m.choices[0] for n, m in named_mutables(supernet).items()}
    subnet.update(changes)
    # the supernet is traced at its config's size; the size choice scales it
    inside = subnet_resources(
        supernet, subnet, input_shape=input_size(supernet_cfg).shape)
    assert gflops == round(inside['flops'] / 1e9, 4)
    assert gflops < 0.27 * bench.export('baseline', str(tmp_path))[1]


def test_main_job_hand_rules_are_the_grid_within_its_flops_window(
        repo_root, monkeypatch):
    """benchmarks/main_job.py's hand rules: every width with every input
    size and one block per stage at each size, those within 0.2x-1.2x the
    baseline's FLOPs (FLOPs go with the square of the width and of the
    size); a name it cannot read is refused."""
    bench = _main_job_module(repo_root, monkeypatch)
    base = bench.resources(bench._load(bench.BASELINE))['gflops']
    rules = {
        n: bench.resources(c)['gflops'] / base
        for n, _, c in bench.hand_rules()
    }
    assert all(0.2 <= r <= 1.2 for r in rules.values())
    # the levers alone and together; the FLOPs window cuts the extremes
    for name in ('width_x0.5', 'width_x0.625', 'width_x0.875', 'res96',
                 'depth1', 'width_x0.5_res192', 'width_x0.75_res160',
                 'width_x0.625_res144', 'res96_depth1'):
        assert name in rules
    for name in ('baseline', 'res160', 'width_x0.5_res96', 'res192'):
        assert name not in rules
    assert 0.2 < rules['width_x0.5'] < 0.35
    assert rules['res96'] == pytest.approx((96 / 128)**2, rel=0.15)
    assert rules['width_x0.5_res192'] == pytest.approx(
        rules['width_x0.5'] * (192 / 128)**2, rel=0.05)
    assert len(rules) == 20
    with pytest.raises(KeyError, match='not a hand rule'):
        bench.scaled_config('depth_x2')


def test_main_job_verdict_applies_the_bars_to_test_means(
        repo_root, monkeypatch):
    """The verdict: at each budget the found subnet against the best hand
    point at no more FLOPs + 0.005, at 1.0x the baseline + 0.015, and no
    hand-front point above the found front in 0.3x-1.0x."""
    bench = _main_job_module(repo_root, monkeypatch)

    def row(model, role, gflops, mean):
        return dict(
            model=model,
            role=role,
            gflops=gflops,
            mean=mean,
            range=[mean, mean],
            scores=[mean],
            test_scores=[mean])

    hand = [
        row('baseline', 'baseline', 1.0, 0.777),
        row('w5', 'scaled-baseline', 0.5, 0.75),
        row('w75', 'scaled-baseline', 0.75, 0.78)
    ]
    found = [
        row('found_0.5x', 'found', 0.5, 0.756),
        row('found_0.75x', 'found', 0.74, 0.786),
        row('found_1x', 'found', 0.98, 0.79)
    ]
    rows = hand + found
    summary = bench.summarise(
        [dict(r, scores=[r['mean']], test_scores=[r['mean']]) for r in rows])
    # the baseline (0.777 at 1.0x) lies below width x0.75's 0.78 at 0.75x
    assert [p['model'] for p in summary['hand_front']] == ['w5', 'w75']
    v = summary['verdict']
    assert v['budgets']['0.5x']['beats_hand']
    # 0.786 at 0.74x against the best hand point at <= 0.74x: w5 (0.75)
    assert v['budgets']['0.75x']['hand'] == 'w5'
    assert v['budgets']['1x']['hand'] == 'w75'
    assert v['budgets']['1x']['beats_hand']  # 0.79 >= 0.78 + 0.005
    assert not v['budgets']['1x']['beats_baseline']  # 0.79 < 0.777 + 0.015
    assert not v['holds'] and v['hand_front_above_found'] == []
    # a hand point above the found front inside the window
    higher = [
        dict(r, test_scores=[0.80]) if r['model'] == 'w75' else r for r in rows
    ]
    v = bench.verdict(higher, bench.summarise(higher)['hand_front'])
    assert v['hand_front_above_found'] == ['w75']
    assert not v['budgets']['1x']['beats_hand']
    assert bench.verdict(
        hand,
        bench.summarise(hand)['hand_front']) == dict(complete=False)


def test_main_job_takes_the_reranked_pick_where_the_pipeline_reranked(
        repo_root, tmp_path, monkeypatch):
    """benchmarks/main_job.py's found rows: a budget the pipeline re-ranked
    (rerank/choice.json) retrains the re-ranked pick, not the search's best
    candidate; a budget it did not re-rank retrains the search's best."""
    import json

    from mmnas_tricks.engine.pipeline import stage_configs
    from mmnas_tricks.models.mutables import named_mutables
    from mmnas_tricks.utils import build_model, load_config
    bench = _main_job_module(repo_root, monkeypatch)
    model = build_model(
        stage_configs(load_config(bench.NAS_CONFIG),
                      bench.NAS_CONFIG)['search'])
    mutables = named_mutables(model)
    base = {n: m.choices[0] for n, m in mutables.items()}
    wide = dict(base, **{'neck.width': 80})
    big = dict(base, **{'data_preprocessor.size': 160})

    def key(subnet):
        return json.dumps(subnet, sort_keys=True)

    search = tmp_path / 'search' / 'search'
    search.mkdir(parents=True)
    # best first: the wide one (over 1x), then the baseline
    (search / 'candidates.json').write_text(
        json.dumps([
            dict(subnet=key(big), score=0.9, flops=3.0),
            dict(subnet=key(base), score=0.8, flops=1.0),
            dict(subnet=key(wide), score=0.7, flops=0.95),
        ]))
    (search / 'reference.json').write_text(json.dumps(dict(flops=1.0)))
    found = bench.found_configs(str(tmp_path))
    assert set(found) == {'found_1x'}
    assert found['found_1x'][1]['subnet'] == key(base)
    (tmp_path / 'rerank').mkdir()
    (tmp_path / 'rerank' / 'choice.json').write_text(
        json.dumps(
            dict(
                picks={
                    'best_subnet_1x':
                    dict(
                        search='candidate0',
                        reranked='candidate1',
                        changed=True)
                },
                candidates=[
                    dict(
                        name='candidate0',
                        subnet=key(base),
                        score=0.8,
                        flops=1.0,
                        finetuned_score=0.70),
                    dict(
                        name='candidate1',
                        subnet=key(wide),
                        score=0.7,
                        flops=0.95,
                        finetuned_score=0.75),
                ])))
    found = bench.found_configs(str(tmp_path))
    cfg, row = found['found_1x']
    assert row['name'] == 'candidate1'
    assert cfg.model.neck.fixed_subnet['width'] == 80


def test_main_job_reads_the_pipelines_own_run_of_the_same_config_and_seed(
        repo_root, tmp_path, monkeypatch):
    """benchmarks/main_job.py reads a seed the main job trained (its
    baseline stage) instead of training it again, but only where the config
    that stage dumped trains the same model with the same recipe and seed."""
    import copy
    import json
    bench = _main_job_module(repo_root, monkeypatch)
    cfg = bench._load(bench.BASELINE)
    stage = tmp_path / 'baseline'
    stage.mkdir()
    assert bench.pipeline_run(str(tmp_path), 'baseline', cfg, 0) is None
    dumped = copy.deepcopy(cfg)
    dumped.merge_from_dict({'randomness.seed': 0, 'work_dir': str(stage)})
    dumped.dump(str(stage / 'fcos.py'))
    (stage / 'final_metrics.json').write_text(
        json.dumps({'coco/bbox_mAP': 0.77}))
    # a stage without the test split's score does not stand for a seed
    assert bench.pipeline_run(str(tmp_path), 'baseline', cfg, 0) is None
    (stage / 'test_metrics.json').write_text(
        json.dumps({'coco/bbox_mAP': 0.76}))
    (metrics,
     test), work = bench.pipeline_run(str(tmp_path), 'baseline', cfg, 0)
    assert metrics == {'coco/bbox_mAP': 0.77} and work == str(stage)
    assert test == {'coco/bbox_mAP': 0.76}
    assert bench.pipeline_run(str(tmp_path), 'baseline', cfg, 1) is None
    wider = copy.deepcopy(cfg)
    wider.model.neck.out_channels = 80
    assert bench.pipeline_run(str(tmp_path), 'baseline', wider, 0) is None


def test_main_job_reads_recorded_seeds_by_config_fingerprint(
        repo_root, tmp_path, monkeypatch):
    """benchmarks/main_job.py --recorded: a seed recorded in an earlier
    results file stands for a training only under the same config
    fingerprint and with its test score (a row without either is not
    used), and the committed hand rules are the configs the benchmark
    builds today (else their seeds would not apply and must be trained
    again)."""
    import json

    from mmnas_tricks.engine.rank import config_fingerprint
    bench = _main_job_module(repo_root, monkeypatch)
    path = tmp_path / 'earlier.json'
    path.write_text(
        json.dumps(
            dict(
                seeds=[0, 1],
                rows=[
                    dict(
                        model='a',
                        fingerprint='f1',
                        scores=[0.7, 0.71],
                        test_scores=[0.69, None]),
                    dict(
                        model='b',
                        fingerprint='f2',
                        seeds=[2],
                        scores=[0.6],
                        test_scores=[0.61]),
                    dict(model='c', scores=[0.5, 0.5], test_scores=[0.5, 0.5]),
                    dict(model='d', fingerprint='f4', scores=[0.5, 0.5]),
                ])))
    got = bench.recorded_scores([str(path)])
    assert got == {
        ('f1', 0): (0.7, 0.69, str(path)),
        ('f2', 2): (0.6, 0.61, str(path)),
    }
    committed = json.loads(
        open(
            osp.join(repo_root, 'benchmarks', 'results', 'main_job',
                     'hand_rules.json')).read())
    assert committed['rows']
    for row in committed['rows']:
        cfg = bench._load(bench.BASELINE) if row['model'] == 'baseline' \
            else bench.scaled_config(row['model'])
        assert config_fingerprint(cfg) == row['fingerprint'], row['model']


def test_main_job_searches_a_budget_the_pipeline_did_not_export(
        repo_root, tmp_path, monkeypatch):
    """The search config of a budget the main job does not export: the main
    job's pipeline with that budget its only export, within the main job's
    FLOPs window or the lower one SEARCH_WINDOWS gives (0.27x lies below
    the main job's 0.3x)."""
    from mmnas_tricks.engine.pipeline import stage_configs
    from mmnas_tricks.utils import load_config
    bench = _main_job_module(repo_root, monkeypatch)
    main = stage_configs(load_config(bench.NAS_CONFIG),
                         bench.NAS_CONFIG)['search'].train_cfg
    for fraction in (0.75, 0.27):
        path = str(tmp_path / f'search_{fraction:g}x.py')
        bench.search_config(fraction, path)
        cfg = load_config(path)
        stages = stage_configs(cfg, path)
        search = stages['search'].train_cfg
        assert tuple(search.export_flops) == (fraction, )
        window = bench.SEARCH_WINDOWS.get(fraction, main.constraints['flops'])
        assert tuple(search.constraints['flops']) == tuple(window)
        assert search.islands == main.islands
        assert stages['baseline'] == osp.abspath(bench.BASELINE)
        assert stages['rerank'] is not None
    with pytest.raises(FileNotFoundError, match='run the main job first'):
        (tmp_path / 'nas').mkdir()
        (tmp_path / 'nas' / 'nas_state.json').write_text('{}')
        bench.search_budget(
            str(tmp_path / 'nas'), 0.75, str(tmp_path / 'bench'))


def test_main_job_latency_pass_measures_every_model_each_round(
        repo_root, monkeypatch):
    """The side-by-side latency pass: every model once a round, the
    fastest round reported beside every round's value."""
    bench = _main_job_module(repo_root, monkeypatch)
    cfgs = [bench._load(bench.BASELINE), bench.scaled_config('width_x0.5')]
    out = bench.latencies(cfgs, rounds=3, repeats=1)
    assert len(out) == 2
    for fastest, rounds in out:
        assert len(rounds) == 3 and all(v > 0 for v in rounds)
        assert fastest == round(min(rounds), 2)


def test_rank_ablation_taus_scores_each_supernet_against_the_truth(
        repo_root, tmp_path):
    """benchmarks/rank_ablation_taus.py: one row per supernet, its Kendall
    taus over all subnets and inside the window against the stand-alone
    scores, FLOPs alone's beside; subnets not yet trained alone left out;
    a supernet lacking an estimate is refused by name."""
    import json
    spec = importlib.util.spec_from_file_location(
        'rank_ablation_taus',
        osp.join(repo_root, 'benchmarks', 'rank_ablation_taus.py'))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    flops = [1.0, 0.9, 0.95, 0.5, 2.0]
    alone = [0.7, 0.8, 0.6, 0.5, None]  # the last not trained yet
    records = {
        str(i): dict(
            name=f's{i}',
            index=i,
            subnet={'x': i},
            flops_ratio=f,
            estimate_calibrated=[0.3, 0.2, 0.1, 0.0, 0.9][i],
            **({} if a is None else dict(standalone=a)))
        for i, (f, a) in enumerate(zip(flops, alone))
    }
    truth = tmp_path / 'truth.json'
    truth.write_text(json.dumps(dict(records=records)))
    other = tmp_path / 'est.json'
    other.write_text(
        json.dumps(
            dict(
                estimates=dict(
                    good=dict(s0=0.7, s1=0.8, s2=0.6, s3=0.5),
                    short=dict(s0=1.0)))))
    out = tmp_path / 'taus.json'
    bench.main([
        str(truth), '--window', '0.85', '1.0', '--out',
        str(out), '--estimates', f'main={truth}', f'good={other}:good'
    ])
    result = json.loads(out.read_text())
    assert (result['subnets'], result['subnets_in_window']) == (4, 3)
    main, good = result['rows']
    assert good['tau_all'] == pytest.approx(1.0)
    assert good['tau_window'] == pytest.approx(1.0)
    # main: 0.3, 0.2, 0.1, 0.0 against 0.7, 0.8, 0.6, 0.5: 5 of the 6
    # pairs in order, (s0, s1) not
    assert main['tau_all'] == pytest.approx((5 - 1) / 6)
    assert main['flops_tau_all'] == good['flops_tau_all']
    assert osp.isfile(tmp_path / 'taus.csv')
    with pytest.raises(SystemExit):
        bench.main([
            str(truth), '--out',
            str(out), '--estimates', f'short={other}:short'
        ])
    with pytest.raises(KeyError, match="no estimates 'nope'"):
        bench.main(
            [str(truth), '--out',
             str(out), '--estimates', f'x={other}:nope'])


def _peer_args(tmp_path, **kw):
    import argparse
    return argparse.Namespace(**dict(
        dict(
            work_dir=str(tmp_path),
            candidates=2,
            val_images=6,
            calib_images=8,
            batch_size=4,
            supernet_epochs=1,
            mmrazor_venv='work_dirs/peers/mmrazor'), **kw))


def _tiny_backbone_space(bench, tiny_digits, tmp_path):
    from mmnas_tricks.testing import shrink_digits_cfg
    from mmnas_tricks.utils import load_config
    cfg = load_config(bench.SPACES['backbone'])
    cfg.digits_heldout_dataloader.dataset.subset = (0.5, 1.0)
    cfg = shrink_digits_cfg(cfg, tiny_digits,
                            dict(num_train=48, num_val=16, seed=3),
                            str(tmp_path))
    return cfg


def test_mmrazor_setting_is_our_search_setting(repo_root, monkeypatch,
                                               tiny_digits, tmp_path):
    """The setting MMRazor's half of the side-by-side search runs: our FCOS
    without its backbone, our ShuffleNetV2 space (stem, channels, blocks),
    our training images and exactly the held-out images our search scores,
    with their annotations."""
    import json

    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner
    bench = _bench_module(repo_root, monkeypatch, 'search_throughput')
    cfg = _tiny_backbone_space(bench, tiny_digits, tmp_path)
    args = _peer_args(tmp_path)
    setting = Config.fromfile(bench.peer_setting(args, cfg))
    assert 'backbone' not in setting.model
    assert setting.model.bbox_head.type == cfg.model.bbox_head.type
    assert (setting.stem_channels, setting.stage_channels,
            setting.stage_blocks) == (16, [16, 32, 64, 128], [4, 4, 8, 4])
    # as our search: two generations of max(2, candidates // 2)
    assert setting.population == 2 and setting.generations == 2
    with DefaultScope.overwrite_default_scope('mmdet'):
        ours = Runner.build_dataloader(
            bench.heldout_dataloader(cfg, args.val_images, args.batch_size),
            seed=0).dataset
    ids = [ours.get_data_info(i)['img_id'] for i in range(len(ours))]
    with open(setting.heldout_ann) as f:
        heldout = json.load(f)
    assert sorted(i['id'] for i in heldout['images']) == sorted(ids)
    assert len(ids) == args.val_images
    assert {a['image_id'] for a in heldout['annotations']} <= set(ids)
    assert heldout['annotations']
    assert setting.train_ann == cfg.train_dataloader.dataset.ann_file
    # our optimizer settings, on mmengine's own constructor
    assert setting.optim_wrapper.optimizer == cfg.optim_wrapper.optimizer
    assert 'constructor' not in setting.optim_wrapper


def test_mmrazor_search_runs_in_its_venv(repo_root, monkeypatch, tiny_digits,
                                         tmp_path):
    """MMRazor's half of the side-by-side search, on the tiny digits: it
    trains its supernet, searches, and times every candidate. Needs MMRazor
    in its own venv (benchmarks/peers/install_mmrazor.sh)."""
    import json
    venv = osp.join(repo_root, 'work_dirs', 'peers', 'mmrazor')
    if not osp.isfile(osp.join(venv, 'bin', 'python')):
        pytest.skip(f'no MMRazor venv at {venv} (optional: '
                    'bash benchmarks/peers/install_mmrazor.sh)')
    bench = _bench_module(repo_root, monkeypatch, 'search_throughput')
    cfg = _tiny_backbone_space(bench, tiny_digits, tmp_path)
    args = _peer_args(tmp_path, mmrazor_venv=venv)
    row = bench.measure_mmrazor(bench.peer_setting(args, cfg), args)
    assert row['candidates'] == 4 and row['candidates_per_minute'] > 0
    assert row['supernet_params'] == 784826
    with open(tmp_path / 'mmrazor' / 'candidates.json') as f:
        rows = json.load(f)
    assert all(r['seconds'] > 0 and 'score' in r for r in rows)
    assert len(rows[0]['choices']) == 20  # the DetNAS space's 20 blocks
    # its supernet overhead, as supernet_overhead.py runs it: each subnet
    # in the supernet and as MMRazor's static export, the same loss
    import subprocess
    out = tmp_path / 'overhead.json'
    subprocess.run([
        osp.join(venv, 'bin', 'python'), 'benchmarks/peers/mmrazor_search.py',
        str(tmp_path / 'mmrazor' / 'setting.py'), '--overhead',
        str(out), '--batches', '1', '--repeats', '1', '--subnets', '1'
    ],
                   check=True,
                   capture_output=True)
    with open(out) as f:
        overhead = json.load(f)
    assert [r['subnet'] for r in overhead['rows']
            ] == ['baseline (every first choice)', 'random 1']
    for r in overhead['rows']:
        a, b = r['losses_first_batch']
        assert abs(a - b) <= 1e-3 * max(1, abs(a)) and r['ratio'] > 0
        assert r['params_supernet'] == 784826 > r['params_static']
    assert set(overhead['rows'][0]['choices'].values()) == {'shuffle_3x3'}


def test_coco_cost_model_adds_up(repo_root, monkeypatch):
    """The COCO cost model's arithmetic: with every measured ratio 1 and a
    free evaluation, the neck/head supernet costs a 1x training and a
    candidate one val pass at the published speed; the whole-detector
    search adds the baseline, its supernet epochs at the main job's
    measured epoch ratio, calibration and the re-rank epochs."""
    bench = _bench_module(repo_root, monkeypatch, 'coco_cost_model')
    ones = dict(
        neck_head_train=1.0, neck_head_infer=1.0, whole_detector_infer=1.0)
    model = bench.cost_model(ones, 0.0)
    p, mj = bench.PUBLISHED, bench.MAIN_JOB
    epoch_s = 118287 / 16 * 0.396 * 4
    assert model['static_1x_gpu_days'] == round(12 * epoch_s / 86400, 2)
    neck_head, whole = model['rows']
    val_s = 5000 / p['inference_fps']
    assert neck_head['seconds_per_candidate'] == round(val_s, 1)
    assert neck_head['stages'] == dict(
        supernet=round(12 * epoch_s / 86400, 2),
        candidates=round(128 * val_s / 86400, 2))
    ratio = (6.22 / 6) / (4.58 / 12)
    assert whole['supernet_epoch_ratio'] == round(ratio, 2)
    assert whole['stages']['supernet'] == round(6 * ratio * epoch_s / 86400, 2)
    assert whole['seconds_per_candidate'] == round(
        (5000 + mj['calib_images']) / p['inference_fps'], 1)
    assert whole['stages']['rerank'] == round(6 * epoch_s / 86400, 2)
    slower = bench.cost_model(dict(ones, neck_head_train=2.0), 10.0)
    assert slower['rows'][0]['stages']['supernet'] == round(
        24 * epoch_s / 86400, 2)
    assert slower['rows'][0]['seconds_per_candidate'] == round(val_s + 10, 1)
    assert 'NAS-FCOS' in bench.table(model) and '| 28 |' in bench.table(model)


def test_coco_cost_model_times_a_real_evaluation(repo_root, monkeypatch):
    """The synthetic COCO predictions are boxes near the ground truth, most
    with its class: the metric matches them (mAP well above 0), as real
    detections would make it work."""
    bench = _bench_module(repo_root, monkeypatch, 'coco_cost_model')
    timed = bench.coco_eval_seconds(images=30, repeats=1)
    assert timed['images'] == 30 and timed['detections'] == 3000
    assert timed['bbox_mAP'] > 0.1 and timed['median_seconds'] > 0


@pytest.mark.heavy
def test_rank_truth_records_seeds_ceiling_and_reuses_its_subnets(
        repo_root, tmp_path, monkeypatch):
    """benchmarks/rank_truth.py: every subnet of each rank set with every
    seed (val and test), the seed-to-seed Kendall tau over each set and
    within each input size, and a rerun that reads the subnets from its
    results file instead of drawing (and tracing) them again; a changed
    rank set is drawn again."""
    import json
    bench = _bench_module(repo_root, monkeypatch, 'rank_truth')
    truth = tmp_path / 'truth.yaml'
    truth.write_text(
        'named:\n  baseline: {}\n  res160: {data_preprocessor.size: 160}\n'
        '  w48: {neck.width: 48}\n'
        'random:\n  - {flops: [0.01, 50.0], num: 2, seed: 0,\n'
        '     fixed: {data_preprocessor.size: 160}}\n')
    held = tmp_path / 'held.yaml'
    held.write_text('disjoint_from: [truth.yaml]\nnamed:\n'
                    '  w32: {bbox_head.width: 32}\n')
    trained = []

    def fake_train_many(tasks, jobs, done):
        for config, run_dir, seed, tag in tasks:
            trained.append((run_dir, seed))
            # seed 1 swaps the two 160 px random subnets' order
            k, r = tag
            value = {'random0': 0.6, 'random1': 0.5}.get(r['name'], 0.7)
            if seed == 1 and r['name'].startswith('random'):
                value = 1.1 - value
            done(tag, {'coco/bbox_mAP': value + 0.01 * len(r['name'])},
                 {'coco/bbox_mAP': value}, 1.0)

    monkeypatch.setattr(bench, 'train_many', fake_train_many)
    out = str(tmp_path / 'truth.json')
    bench_config = 'configs/nas/nsga2_fcos_whole-elastic_r18w16_digits.py'
    argv = [
        bench_config, '--rank-sets',
        str(truth),
        str(held), '--seeds', '0', '1', '--work-dir',
        str(tmp_path / 'work'), '--out', out
    ]
    bench.main(argv)
    result = json.load(open(out))
    assert result['config'] == bench_config
    records = result['records']
    assert [(r['set'], r['name']) for r in records] == [('truth', 'baseline'),
                                                        ('truth', 'res160'),
                                                        ('truth', 'w48'),
                                                        ('truth', 'random0'),
                                                        ('truth', 'random1'),
                                                        ('held', 'w32')]
    assert len(trained) == 12 and sorted({s for _, s in trained}) == [0, 1]
    for r in records:
        assert None not in r['scores'] and None not in r['test_scores']
        assert osp.isfile(r['config'])
    sizes = {r['name']: r['input_size'] for r in records}
    assert sizes['res160'] == sizes['random0'] == 160 == sizes['random1']
    assert sizes['baseline'] == 128
    # within 160 px the seeds disagree on the random pair only: of the 3
    # pairs, 2 concordant, 1 discordant
    ceiling = result['ceiling']['truth']
    assert ceiling['n'] == 5
    assert ceiling['by_size']['128'] is None  # two subnets: no tau
    assert ceiling['by_size']['160'] == pytest.approx(1 / 3, abs=1e-3)
    assert result['ceiling']['held']['all'] is None
    assert osp.isfile(out[:-5] + '.csv') and osp.isfile(out[:-5] + '.png')
    # the tuning tools read the truth (the seeds' mean), never the held-out
    # set unless asked for it
    from mmnas_tricks.engine.tune import read_truth
    rows = read_truth(out)
    assert [r['name'] for r in rows
            ] == ['baseline', 'res160', 'w48', 'random0', 'random1']
    assert rows[3]['standalone'] == pytest.approx((0.67 + 0.57) / 2)
    assert rows[3]['input_size'] == 160
    with pytest.raises(ValueError, match='1 subnets have a stand-alone'):
        read_truth(out, held_out=True)

    # a rerun reads the subnets from the results file: nothing drawn
    import mmnas_tricks.engine.rank as rank

    def refuse(*args, **kwargs):
        raise AssertionError('drawn again')

    monkeypatch.setattr(rank, 'rank_set_subnets', refuse)
    bench.main(argv + ['--dry-run'])
    assert json.load(open(out))['records'][3]['subnet'] == \
        records[3]['subnet']
    truth.write_text('named:\n  baseline: {}\n')
    with pytest.raises(AssertionError, match='drawn again'):
        bench.main(argv + ['--dry-run'])


def _truth_file(path, n_per_size=4):
    """A rank_truth results file: truth and held-out subnets at two input
    sizes whose stand-alone score rises with FLOPs within each size and is
    higher at the larger size."""
    import json
    records = []
    for held in (False, True):
        for size in (128, 160):
            for i in range(n_per_size):
                flops = 0.4 + 0.15 * i + (0.05 if held else 0.0)
                score = 0.6 + 0.1 * flops + (0.05 if size == 160 else 0.0)
                records.append(
                    dict(
                        set='held' if held else 'truth',
                        held_out=held,
                        name=f's{size}_{i}',
                        key=f'{held}-{size}-{i}',
                        subnet={},
                        flops_ratio=flops,
                        input_size=size,
                        scores=[score, score + 0.001],
                        train_seconds=[100.0, 100.0]))
    path.write_text(json.dumps(dict(records=records, ceiling={})))
    return records


def test_rank_estimators_table_of_taus_costs_and_a_predictor(
        repo_root, tmp_path, monkeypatch):
    """benchmarks/rank_estimators.py: each estimator's Kendall tau on the
    truth and the held-out set, over all and within each input size; an
    estimate already recorded is not made again; the predictor, fitted on
    the truth set only, orders the held-out set by size and FLOPs, which
    FLOPs alone cannot across sizes; estimator names are checked."""
    import json
    bench = _bench_module(repo_root, monkeypatch, 'rank_estimators')
    truth = tmp_path / 'truth.json'
    records = _truth_file(truth)
    work = tmp_path / 'work'
    work.mkdir()
    # a recorded supernet estimate: the truth reversed within 160 px
    values = {
        r['key']:
        (r['flops_ratio'] if r['input_size'] == 128 else -r['flops_ratio'])
        for r in records
    }
    (work / 'estimates.json').write_text(
        json.dumps(
            dict(
                values={'supernet:main': values},
                seconds={'supernet:main': {k: 5.0
                                           for k in values}})))
    config = 'configs/nas/nsga2_fcos_whole-elastic_r18w16_digits.py'
    out = str(tmp_path / 'est.json')
    bench.main([
        '--truth',
        str(truth), '--supernet', f'main={config}:{config}', '--estimators',
        'flops', 'supernet:main', 'predictor:flops', '--work-dir',
        str(work), '--out', out
    ])
    rows = {r['estimator']: r for r in json.load(open(out))['rows']}
    flops = rows['flops']
    assert flops['truth']['by_size'] == {'128': 1.0, '160': 1.0}
    assert flops['truth']['all'] < 1.0  # sizes interleave in FLOPs
    sup = rows['supernet:main']
    assert sup['held_out']['by_size'] == {'128': 1.0, '160': -1.0}
    assert sup['held_out']['min_within'] == -1.0
    assert sup['standalone_equivalents_per_subnet'] == pytest.approx(0.05)
    pred = rows['predictor:flops']
    assert pred['held_out']['all'] == 1.0 and pred['landmark_trainings'] == 8
    assert pred['held_out']['all'] > flops['held_out']['all']
    assert osp.isfile(out[:-5] + '.csv') and osp.isfile(out[:-5] + '.png')
    for bad, match in (('finetune0:main', 'k >= 1'),
                       ('supernet:other', "no --supernet named 'other'"),
                       ('proxy', 'is not among'), ('zc:naswot',
                                                   'zc:PROXY takes one of'),
                       ('predictor:predictor:flops', 'of a predictor')):
        with pytest.raises(ValueError, match=match):
            bench.parse_estimator(bad, {'main': None})
    # two inputs: the supernet estimate and FLOPs; the store's estimates
    loo, held = bench.predictor_values(
        'flops+supernet:main', [r for r in bench.read_sets(str(truth))[0]],
        bench.read_sets(str(truth))[1], bench.Estimates(str(work)))
    assert len(loo) == 8 and len(held) == 8


def test_rank_estimators_zero_cost_proxies_of_the_exported_subnets(
        repo_root, tmp_path, monkeypatch, tiny_digits):
    """zc:PROXY: each subnet's stand-alone config (its exported model at
    its seeded initial weights) on a batch of its own pipeline; recorded,
    not computed again."""
    from mmnas_tricks.engine.hand_rules import HandRule, scale_config
    from mmnas_tricks.testing import shrink_digits_cfg
    from mmnas_tricks.utils import load_config
    from .conftest import TINY_SPEC
    bench = _bench_module(repo_root, monkeypatch, 'rank_estimators')
    base = load_config(
        osp.join(repo_root, 'configs', 'baselines',
                 'fcos_r18w16_fpn_gn-head_12e_digits.py'))
    records = []
    for i, width in enumerate((0.25, 0.5)):
        cfg = shrink_digits_cfg(
            scale_config(base, HandRule(width)),
            tiny_digits,
            TINY_SPEC,
            work_dir=str(tmp_path / 'unused'),
            batch_size=2)
        path = str(tmp_path / f'w{i}.py')
        cfg.dump(path)
        records.append(
            dict(key=str(i), config=path, input_size=128, set='t', name=i))
    store = bench.Estimates(str(tmp_path))
    args = type('Args', (), dict(seed=0))
    bench.zc_estimates('zc:synflow', 'synflow', records, args, store, {})
    values = [store.get('zc:synflow', r['key']) for r in records]
    assert 0 < values[0] < values[1]
    bench.zc_estimates('zc:synflow', 'synflow', records, args,
                       bench.Estimates(str(tmp_path)), None)  # nothing to do
