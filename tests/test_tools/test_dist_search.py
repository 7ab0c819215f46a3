"""A short NSGA-II search on two processes (torchrun, gloo on CPU,
tools/dist_train.sh): every generation is scored across the ranks, the
ranks agree on the result (the loop checks it) and it is the
single-process search's with the same seed, Pareto front included. What is
distributed (scoring, state, export, the check) is the search skeleton's,
the same for every strategy; each strategy's determinism is its own
single-process resume test."""
import json
import os.path as osp

import pytest
from mmengine.runner import Runner

from mmnas_tricks.structures import read_subnet_file
from mmnas_tricks.utils import load_config
from .test_supernets import _launch


@pytest.mark.heavy
def test_two_process_search_equals_the_single_process_one(
        repo_root, tiny_seg_supernet, tmp_path):
    # the supernet: the session's shared tiny segmentation supernet
    search = load_config(tiny_seg_supernet.config)
    search.custom_hooks = []
    search.default_hooks.checkpoint = None
    search.train_cfg = dict(
        type='mmnas_tricks.NSGA2SearchLoop',
        num_offspring=2,
        max_generations=2,
        population_size=3,
        mutate_prob=0.5,
        seed=3,
        score_key='mIoU',
        export_best=False,
        # no BN calibration: with it each rank calibrates on its own shard
        # (statistics averaged over ranks), close to but not bit-equal with
        # one process calibrating on whole batches
        calibrate_bn=0,
        supernet_checkpoint=tiny_seg_supernet.epoch_1)
    search_path = str(tmp_path / 'search.py')
    search.dump(search_path)

    one, two = str(tmp_path / 'one'), str(tmp_path / 'two')
    single = search.copy()
    single.work_dir = one
    single.experiment_name = 'dist_search_single'
    Runner.from_cfg(single).train()
    _launch(repo_root, 29537, 'tools/dist_train.sh', search_path, '2',
            '--work-dir', two)

    rows = []
    for work in (one, two):
        with open(osp.join(work, 'search', 'candidates.json')) as f:
            rows.append({r['subnet']: r['score'] for r in json.load(f)})
    assert rows[0].keys() == rows[1].keys() and len(rows[0]) >= 4
    for key, score in rows[0].items():
        assert rows[1][key] == pytest.approx(score, abs=1e-6)
    best = [
        read_subnet_file(osp.join(w, 'search', 'best_subnet.yaml'))[0]
        for w in (one, two)
    ]
    assert best[0] == best[1]
    fronts = [
        json.load(open(osp.join(w, 'search', 'pareto_front.json')))
        for w in (one, two)
    ]
    assert [r['subnet'] for r in fronts[0]['subnets']
            ] == [r['subnet'] for r in fronts[1]['subnets']]
    assert fronts[0]['subnets']
