"""EvolutionSearchLoop on a tiny trained supernet and tiny digits: results,
the exported best subnet, and searches killed (between and inside
generations) and resumed ending with the same result. Also the failures of
MMRazor's search this guards against: BN statistics left over in the
exported subnet, miscounted generations on resume (rounded, tied scores:
test_precise_coco_metric.py),
and resume needing weights_only=False."""
import json
import os
import os.path as osp
import shutil

import pytest
import torch
from mmengine.runner import Runner

from mmnas_tricks.engine.runner import EvolutionSearchLoop
from mmnas_tricks.structures import read_subnet_file
from mmnas_tricks.utils import build_model, load_config
from ...conftest import seg_supernet_cfg


@pytest.fixture
def supernet_ckpt(tiny_seg_supernet):
    """conftest's segmentation supernet trained 2 epochs by mmengine (the
    session's shared tiny_seg_supernet): a real checkpoint (message hub,
    HistoryBuffer), loaded with weights_only=True."""
    return tiny_seg_supernet.epoch_2


def search_cfg(tiny_digits, ckpt, work_dir, name, generations, **loop):
    cfg = seg_supernet_cfg(tiny_digits, work_dir, name)
    cfg.custom_hooks = []
    cfg.default_hooks.checkpoint = None
    cfg.train_cfg = dict(
        type='mmnas_tricks.EvolutionSearchLoop',
        retrain=dict(train_cfg=dict(type='EpochBasedTrainLoop', max_epochs=1)),
        max_generations=generations,
        population_size=4,
        top_k=2,
        num_mutation=2,
        num_crossover=1,
        mutate_prob=0.5,
        calibrate_bn=2,
        seed=3,
        supernet_checkpoint=ckpt,
        score_key='mIoU')
    cfg.train_cfg.update(loop)
    return cfg


def run(cfg, resume=False):
    cfg.resume = resume
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def tiny_digits_size(loop):
    """The (H, W) the search counts FLOPs at: its config's preprocessor
    size."""
    return tuple(loop.runner.cfg.model.data_preprocessor.size)


class Killed(Exception):
    pass


@pytest.mark.heavy
def test_search_writes_results_and_resumes_identically(tiny_digits,
                                                       supernet_ckpt, tmp_path,
                                                       monkeypatch):
    full = run(
        search_cfg(tiny_digits, supernet_ckpt, str(tmp_path / 'full'),
                   'evo_full', 3))
    loop = full.train_loop
    out = osp.join(str(tmp_path / 'full'), 'search')
    rows = json.load(open(osp.join(out, 'candidates.json')))
    assert len(rows) == len(loop.records) >= 8  # new subnets each generation
    assert len({r['subnet'] for r in rows}) == len(rows)  # deduplicated
    assert {r['generation'] for r in rows} == {0, 1, 2}
    assert all(r['flops'] > 0 and r['params'] > 0 for r in rows)
    # what each candidate cost, kept apart from the (machine-free) records
    assert all(r['seconds'] > 0 for r in rows)
    assert set(loop.seconds) == set(loop.records)
    assert all('seconds' not in r for r in loop.records.values())
    # every figure beside the input size it was counted at (one rule: the
    # seg config's data preprocessor size), the rule's result in the state
    size = list(tiny_digits_size(loop))
    assert all(r['input_size'] == size for r in rows)
    saved = json.load(open(osp.join(out, 'state.json')))
    assert saved['input_size'] == size
    assert saved['input_source'] == 'model.data_preprocessor.size'
    with open(osp.join(out, 'candidates.csv')) as f:
        assert f.readline().strip().split(',') == [
            'generation', 'score', 'flops', 'params', 'input_size', 'seconds',
            'subnet'
        ]
        assert f.readline().split(',')[4] == 'x'.join(map(str, size))
    assert read_subnet_file(osp.join(
        out, 'best_subnet.yaml'))[1]['input_size'] == size
    for name in ('candidates.csv', 'score_vs_flops.png', 'state.json'):
        assert osp.isfile(osp.join(out, name))
    best, meta = read_subnet_file(osp.join(out, 'best_subnet.yaml'))
    assert meta['score'] == rows[0]['score']
    assert json.loads(rows[0]['subnet']) == best
    scores = [r['score'] for r in rows]
    assert len(set(scores)) > len(scores) // 2  # few ties

    # the exported best subnet scores what the search scored: its BN
    # statistics are the subnet's own, not left over from other candidates
    exported = load_config(osp.join(out, 'best_subnet.py'))
    assert exported.train_cfg.type == 'EpochBasedTrainLoop'  # retrain
    static = build_model(exported)
    state = torch.load(
        osp.join(out, 'best_subnet.pth'), map_location='cpu')['state_dict']
    static.load_state_dict(state, strict=True)
    static.eval()
    evaluator = loop.evaluator
    with torch.no_grad():
        for data in loop.val_dataloader:
            evaluator.process(
                data_samples=static.val_step(data), data_batch=data)
    metrics = evaluator.evaluate(len(loop.val_dataloader.dataset))
    assert metrics['mIoU'] == pytest.approx(meta['score'], abs=1e-9)

    # killed after generation 1, then resumed with --resume: only the
    # remaining generation is scored
    part_dir = str(tmp_path / 'part')
    run(search_cfg(tiny_digits, supernet_ckpt, part_dir, 'evo_part', 2))
    state = json.load(open(osp.join(part_dir, 'search', 'state.json')))
    assert state['generation'] == 2
    mid_dir = str(tmp_path / 'mid')  # the same run, killed later (below)
    shutil.copytree(part_dir, mid_dir)
    scored = []
    real_score = EvolutionSearchLoop._score

    def counting(self, subnet):
        scored.append(self._generation)
        return real_score(self, subnet)

    monkeypatch.setattr(EvolutionSearchLoop, '_score', counting)
    resumed = run(
        search_cfg(tiny_digits, supernet_ckpt, part_dir, 'evo_resumed', 3),
        resume=True)
    assert set(scored) == {2}
    assert len(scored) == len(loop.records) - len(state['records'])
    assert resumed.train_loop.records == json.loads(json.dumps(loop.records))
    assert read_subnet_file(osp.join(part_dir, 'search',
                                     'best_subnet.yaml'))[0] == best

    # the same 2-generation run resumed, killed inside generation 2 (after 1
    # of its candidates), resumed again
    calls = []

    def dying(self, subnet):
        calls.append(1)
        if len(calls) == 2:
            raise Killed()
        return real_score(self, subnet)

    monkeypatch.setattr(EvolutionSearchLoop, '_score', dying)
    with pytest.raises(Killed):
        run(search_cfg(tiny_digits, supernet_ckpt, mid_dir, 'evo_mid_b', 3),
            resume=True)
    monkeypatch.setattr(EvolutionSearchLoop, '_score', real_score)
    again = run(
        search_cfg(tiny_digits, supernet_ckpt, mid_dir, 'evo_mid_c', 3),
        resume=True)
    assert again.train_loop.records == json.loads(json.dumps(loop.records))
    assert read_subnet_file(osp.join(mid_dir, 'search',
                                     'best_subnet.yaml'))[0] == best


@pytest.mark.heavy
def test_kept_and_regrouped_scoring_batches_give_the_same_scores(
        tiny_digits, supernet_ckpt, tmp_path):
    """The search keeps its held-out batches in memory (default), scores
    them regrouped (eval_batch_size) or loads them for every candidate
    (eval_cache_mb=0): the same candidates, the same scores."""
    from mmnas_tricks.engine.scoring import CachedBatches
    loops = {}
    for name, extra in (('kept', {}), ('loaded', dict(eval_cache_mb=0)),
                        ('regrouped', dict(eval_batch_size=16))):
        loops[name] = run(
            search_cfg(
                tiny_digits,
                supernet_ckpt,
                str(tmp_path / name),
                f'evo_{name}',
                1,
                export_best=False,
                **extra)).train_loop
    for loop in loops.values():
        assert isinstance(loop.val_dataloader, CachedBatches)
    assert loops['kept'].val_dataloader.kept
    assert not loops['loaded'].val_dataloader.kept
    regrouped = loops['regrouped'].val_dataloader
    assert regrouped.kept and len(regrouped) == 1  # the 16 val images
    records = {n: loop.records for n, loop in loops.items()}
    assert records['kept'].keys() == records['loaded'].keys(
    ) == records['regrouped'].keys()
    for key in records['kept']:
        scores = {n: r[key]['score'] for n, r in records.items()}
        assert len(set(scores.values())) == 1, (key, scores)
    # bad values are refused under the loop's own argument names
    for extra, message in ((dict(eval_cache_mb=-1), 'eval_cache_mb=-1'),
                           (dict(eval_batch_size=0), 'eval_batch_size=0')):
        with pytest.raises(ValueError, match=message):
            run(
                search_cfg(
                    tiny_digits,
                    supernet_ckpt,
                    str(tmp_path / 'bad'),
                    'evo_bad',
                    1,
                    export_best=False,
                    **extra))
    # what the loop needs comes as its own arguments, named when missing
    cfg = search_cfg(tiny_digits, supernet_ckpt, str(tmp_path / 'bad'),
                     'evo_bad', 1)
    cfg.train_cfg.pop('retrain')
    with pytest.raises(ValueError, match="needs the loop's retrain argument"):
        run(cfg)
    cfg = search_cfg(tiny_digits, supernet_ckpt, str(tmp_path / 'bad'),
                     'evo_bad', 1)
    for key in ('val_dataloader', 'val_evaluator', 'val_cfg'):
        cfg.pop(key)
    with pytest.raises(
            ValueError,
            match='give it val_dataloader and '
            'evaluator, or give the config'):
        run(cfg)


@pytest.mark.heavy
def test_bn_calibration_changes_the_scores(tiny_digits, supernet_ckpt,
                                           tmp_path):
    """The same candidates scored with and without BN calibration: the
    supernet's running statistics give other scores."""
    with_bn = run(
        search_cfg(
            tiny_digits,
            supernet_ckpt,
            str(tmp_path / 'bn'),
            'evo_bn',
            1,
            export_best=False)).train_loop.records
    without = run(
        search_cfg(
            tiny_digits,
            supernet_ckpt,
            str(tmp_path / 'nobn'),
            'evo_nobn',
            1,
            calibrate_bn=0,
            export_best=False)).train_loop.records
    assert with_bn.keys() == without.keys()
    assert any(with_bn[k]['score'] != without[k]['score'] for k in with_bn)


@pytest.mark.heavy
def test_constraints_reject_and_bad_arguments(tiny_digits, tmp_path):
    cfg = search_cfg(
        tiny_digits,
        None,
        str(tmp_path / 'c'),
        'evo_c',
        1,
        constraints=dict(params=(None, 1)))
    with pytest.raises(RuntimeError, match='no subnet was scored'):
        run(cfg)
    cfg = search_cfg(
        tiny_digits,
        None,
        str(tmp_path / 'b'),
        'evo_b',
        1,
        constraints=dict(energy=(0, 1)))
    with pytest.raises(ValueError, match=r"constraints \['energy'\]"):
        run(cfg)
    cfg = search_cfg(
        tiny_digits,
        None,
        str(tmp_path / 'd'),
        'evo_d',
        1,
        constraints=dict(flops=(None, 'half*first')))
    with pytest.raises(ValueError, match='optionally scaled'):
        run(cfg)
    # bounds relative to the first subnet (the plain FPN + head)
    cfg = search_cfg(
        tiny_digits,
        None,
        str(tmp_path / 'r'),
        'evo_r',
        1,
        constraints=dict(flops=('0.8*first', 'first')),
        export_best=False)
    loop = run(cfg).train_loop
    low, high = loop.constraints['flops']
    first = loop._resources(
        {n: m.choices[0]
         for n, m in loop._searchable().items()})['flops']
    assert (low, high) == (pytest.approx(0.8 * first), first)
    assert loop.records and all(low <= r['flops'] <= high
                                for r in loop.records.values())
    assert loop.rejected


@pytest.mark.heavy
def test_resume_loads_the_supernet_named_by_load_from(tiny_digits,
                                                      supernet_ckpt, tmp_path,
                                                      monkeypatch):
    """A search config that names its supernet with ``load_from`` (not
    ``supernet_checkpoint``): ``tools/train.py --resume`` clears load_from,
    and the resumed generations must still score the trained supernet,
    not the untrained weights."""

    def cfg(work, name, generations, load_from=None, ckpt=None):
        c = search_cfg(tiny_digits, ckpt, work, name, generations)
        c.load_from = load_from
        return c

    full = run(cfg(str(tmp_path / 'full'), 'lf_full', 2, ckpt=supernet_ckpt))
    part = str(tmp_path / 'part')
    run(cfg(part, 'lf_part', 1, load_from=supernet_ckpt))
    state = json.load(open(osp.join(part, 'search', 'state.json')))
    assert state['supernet'] == supernet_ckpt
    resumed = run(cfg(part, 'lf_resumed', 2), resume=True)  # load_from=None
    assert resumed.train_loop.records == json.loads(
        json.dumps(full.train_loop.records))
    # mmseg's IoUMetric gives numpy float32s: kept in every record
    assert all('mIoU' in r['metrics'] and 'aAcc' in r['metrics']
               for r in resumed.train_loop.records.values())
    search = osp.join(part, 'search')
    complete = json.load(open(osp.join(search, 'complete.json')))
    assert {'best_subnet.py', 'best_subnet.pth', 'state.json'} <= set(
        complete['files'])

    # killed while exporting: the folder does not say it is complete, and
    # --resume finishes it (nothing scored again)
    for name in ('best_subnet.py', 'best_subnet.pth'):
        os.remove(osp.join(search, name))

    def dying(self, *args, **kwargs):
        raise Killed()

    with monkeypatch.context() as m:
        m.setattr(EvolutionSearchLoop, '_export', dying)
        with pytest.raises(Killed):
            run(cfg(part, 'lf_export_killed', 2), resume=True)
    assert not osp.exists(osp.join(search, 'complete.json'))
    assert not osp.exists(osp.join(search, 'best_subnet.py'))
    with monkeypatch.context() as m:
        m.setattr(EvolutionSearchLoop, '_score', dying)
        run(cfg(part, 'lf_export_resumed', 2), resume=True)
    assert osp.isfile(osp.join(search, 'complete.json'))
    assert osp.isfile(osp.join(search, 'best_subnet.pth'))

    # resuming onto another supernet, or one that is not known, is refused
    other = str(tmp_path / 'other.pth')
    shutil.copy(supernet_ckpt, other)
    with pytest.raises(RuntimeError, match='was run on the supernet'):
        run(cfg(part, 'lf_other', 3, ckpt=other), resume=True)
    state.pop('supernet')
    with open(osp.join(part, 'search', 'state.json'), 'w') as f:
        json.dump(state, f)
    with pytest.raises(RuntimeError, match='does not say which supernet'):
        run(cfg(part, 'lf_unknown', 3), resume=True)
