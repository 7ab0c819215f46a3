"""EvolutionSearchLoop on a tiny supernet and tiny digits: results, and a
killed-and-resumed search ending with the same best subnet."""
import json
import os.path as osp

import pytest
from mmengine.runner import Runner

from mmnas_tricks.structures import read_subnet_file
from mmnas_tricks.testing import config_dir, shrink_digits_cfg
from mmnas_tricks.utils import load_config

from ..conftest import TINY_SPEC

SUPERNET = osp.join(config_dir(), 'supernets',
                    'fcos_detnas-shufflenetv2_fpn_gn-head_12e_digits.py')


def search_cfg(tiny_digits, work_dir, name, generations, **loop):
    cfg = load_config(SUPERNET)
    cfg = shrink_digits_cfg(cfg, tiny_digits, TINY_SPEC, work_dir=work_dir,
                            experiment_name=name)
    cfg.model.backbone.stage_blocks = (1, 1, 2, 1)  # 4^5 subnets
    cfg.model.test_cfg.score_thr = 0.0
    cfg.custom_hooks = []
    cfg.default_hooks.checkpoint = None
    cfg.train_cfg = dict(
        type='mmnas_tricks.EvolutionSearchLoop', max_generations=generations,
        population_size=4, top_k=2, num_mutation=2, num_crossover=1,
        mutate_prob=0.5, calibrate_bn=2, seed=3, **loop)
    return cfg


def run(cfg, resume=False):
    cfg.resume = resume
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def test_search_writes_results_and_resumes_identically(tiny_digits, tmp_path):
    full = run(search_cfg(tiny_digits, str(tmp_path / 'full'), 'evo_full', 3))
    loop = full.train_loop
    out = osp.join(str(tmp_path / 'full'), 'search')
    rows = json.load(open(osp.join(out, 'candidates.json')))
    assert len(rows) == len(loop.records) >= 8  # new subnets each generation
    assert len({r['subnet'] for r in rows}) == len(rows)  # deduplicated
    assert {r['generation'] for r in rows} == {0, 1, 2}
    assert all(r['flops'] > 0 and r['params'] > 0 for r in rows)
    for name in ('candidates.csv', 'score_vs_flops.png', 'state.json'):
        assert osp.isfile(osp.join(out, name))
    best, meta = read_subnet_file(osp.join(out, 'best_subnet.yaml'))
    assert meta['score'] == rows[0]['score']
    assert json.loads(rows[0]['subnet']) == best

    # killed after generation 1, then resumed with --resume
    part_dir = str(tmp_path / 'part')
    run(search_cfg(tiny_digits, part_dir, 'evo_part', 2))
    state = json.load(open(osp.join(part_dir, 'search', 'state.json')))
    assert state['generation'] == 2
    resumed = run(search_cfg(tiny_digits, part_dir, 'evo_resumed', 3),
                  resume=True)
    assert resumed.train_loop.records == json.loads(json.dumps(loop.records))
    assert read_subnet_file(osp.join(part_dir, 'search',
                                     'best_subnet.yaml'))[0] == best


def test_constraints_reject_and_bad_arguments(tiny_digits, tmp_path):
    cfg = search_cfg(tiny_digits, str(tmp_path / 'c'), 'evo_c', 1,
                     constraints=dict(params=(None, 1)))
    with pytest.raises(RuntimeError, match='no subnet was scored'):
        run(cfg)
    cfg = search_cfg(tiny_digits, str(tmp_path / 'b'), 'evo_b', 1,
                     constraints=dict(latency=(0, 1)))
    with pytest.raises(ValueError, match=r"constraints \['latency'\]"):
        run(cfg)
