"""Few-shot NAS (docs/tricks.md, T5.1) on a tiny segmentation supernet: the
split pins one mutable and inherits every weight exactly, each sub-supernet
trains only its own candidate of the split mutable, tools/few_shot.py
resumes without retraining, and the search scores each candidate with the
sub-supernet that matches it."""
import importlib.util
import json
import os.path as osp

import pytest
import torch
from mmengine.runner import Runner

from mmnas_tricks.engine.few_shot import (FewShotRouter, choice_key,
                                          split_choices, sub_supernet_config)
from mmnas_tricks.engine.scoring import score_subnet
from mmnas_tricks.models.mutables import SubnetError, named_mutables
from mmnas_tricks.utils import build_model, load_config

SPLIT = 'neck.lateral_convs.0'  # conv1x1 / conv3x3 / sep_conv_3x3


def _state(path):
    return torch.load(path, map_location='cpu')['state_dict']


def _tool(repo_root):
    spec = importlib.util.spec_from_file_location(
        'few_shot_tool', osp.join(repo_root, 'tools', 'few_shot.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def one_shot(tiny_seg_supernet):
    """A tiny one-shot supernet (conftest's SEG_SUPERNET, the session's
    shared tiny_seg_supernet) after its first epoch: its config file and
    checkpoint."""
    return tiny_seg_supernet.config, tiny_seg_supernet.epoch_1


def test_sub_supernet_inherits_every_weight_and_pins_the_split(
        one_shot, tmp_path):
    cfg_path, ckpt = one_shot
    cfg = load_config(cfg_path)
    sub = sub_supernet_config(cfg, ckpt, SPLIT, 'conv3x3', max_epochs=1)
    sampler = [
        h for h in sub.custom_hooks if h.type.endswith('SampleSubnetHook')
    ][0]
    assert sampler.fixed == {SPLIT: 'conv3x3'}
    assert sub.load_from == ckpt and sub.train_cfg.max_epochs == 1
    sub.work_dir = str(tmp_path)
    sub.experiment_name = 'few_shot_transfer'
    runner = Runner.from_cfg(sub)
    runner.load_or_resume()
    model = runner.model
    one = _state(ckpt)
    assert set(model.state_dict()) == set(one)
    assert all(torch.equal(v, one[k]) for k, v in model.state_dict().items())

    hook = [h for h in runner.hooks
            if type(h).__name__ == 'SampleSubnetHook'][0]
    hook.pin(model)
    mutable = named_mutables(model)[SPLIT]
    assert mutable.mode == 'fixed' and mutable.current_choice == 'conv3x3'
    # never sampled, and kept for validation
    sampled = hook.subnet_at(model, 5)
    assert sampled[SPLIT] == 'conv3x3'
    assert hook._eval_subnet(model)[SPLIT] == 'conv3x3'

    # the one-shot supernet with the same subnet predicts the same
    one_model = build_model(cfg)
    one_model.load_state_dict(one)
    from mmnas_tricks.models.mutables import set_subnet
    set_subnet(one_model, sampled)
    set_subnet(model, sampled)
    x = torch.rand(2, 3, 64, 64)
    one_model.eval()
    model.eval()
    with torch.no_grad():
        assert torch.equal(
            one_model(x, mode='tensor'), model(x, mode='tensor'))


def test_split_errors_name_the_valid_values(one_shot):
    cfg_path, ckpt = one_shot
    cfg = load_config(cfg_path)
    with pytest.raises(KeyError, match='neck.lateral_convs.0'):
        split_choices(build_model(cfg), 'neck.lateral_conv.0')
    no_sampler = cfg.copy()
    no_sampler.custom_hooks = []
    with pytest.raises(ValueError, match='SampleSubnetHook'):
        sub_supernet_config(no_sampler, ckpt, SPLIT, 'conv1x1')
    twice = sub_supernet_config(cfg, ckpt, SPLIT, 'conv1x1')
    with pytest.raises(ValueError, match='already fixed'):
        sub_supernet_config(twice, ckpt, SPLIT, 'conv3x3')
    # a choice that is not a candidate fails when the hook pins it
    from mmnas_tricks.engine.hooks import SampleSubnetHook
    hook = SampleSubnetHook(fixed={SPLIT: 'conv5x5'})
    with pytest.raises(SubnetError, match='sep_conv_3x3'):
        hook.pin(build_model(cfg))


@pytest.mark.heavy
def test_few_shot_tool_trains_routes_searches_and_resumes(
        one_shot, repo_root, tmp_path, capsys):
    cfg_path, ckpt = one_shot
    tool = _tool(repo_root)
    work = str(tmp_path / 'split')
    args = [
        cfg_path, ckpt, '--split', SPLIT, '--epochs', '1', '--work-dir', work
    ]
    state = tool.main(args)
    manifest = osp.join(work, 'few_shot.json')
    assert json.load(open(manifest)) == json.loads(json.dumps(state))
    choices = ['conv1x1', 'conv3x3', 'sep_conv_3x3']
    assert sorted(state['sub_supernets']) == sorted(map(choice_key, choices))

    one = _state(ckpt)
    prefix = f'{SPLIT}.candidates.'
    for choice in choices:
        sub = _state(state['sub_supernets'][choice_key(choice)]['checkpoint'])
        changed = {k for k in one if not torch.equal(one[k], sub[k])}
        # only the pinned candidate of the split mutable trained ...
        split_changed = {
            k[len(prefix):].split('.')[0]
            for k in changed if k.startswith(prefix)
        }
        assert split_changed == {choice}
        # ... and the rest of the supernet trained further
        assert any(k.startswith('decode_head.') for k in changed)

    # a rerun trains nothing
    capsys.readouterr()
    again = tool.main(args)
    assert capsys.readouterr().out.count(': done') == 3
    assert again['sub_supernets'] == state['sub_supernets']

    # routing: the weights of the sub-supernet of the subnet's choice
    router = FewShotRouter(manifest)
    model = build_model(load_config(cfg_path))
    router.check(model)
    subnet = {n: m.choices[0] for n, m in named_mutables(model).items()}
    subnet[SPLIT] = 'sep_conv_3x3'
    assert router.load_for(model, subnet) == choice_key('sep_conv_3x3')
    want = _state(
        state['sub_supernets'][choice_key('sep_conv_3x3')]['checkpoint'])
    assert all(torch.equal(v, want[k]) for k, v in model.state_dict().items())
    partial = FewShotRouter(
        dict(
            mutable=SPLIT,
            sub_supernets={
                choice_key('conv1x1'):
                state['sub_supernets'][choice_key('conv1x1')]
            }))
    with pytest.raises(KeyError, match='tools/few_shot.py'):
        partial.check(model)
    with pytest.raises(KeyError, match='no sub-supernet'):
        partial.load_for(model, subnet)

    # a search scores each candidate with its sub-supernet
    search = load_config(cfg_path)
    search.custom_hooks = []
    search.default_hooks.checkpoint = None
    search.work_dir = str(tmp_path / 'search')
    search.experiment_name = 'few_shot_search'
    search.train_cfg = dict(
        type='mmnas_tricks.EvolutionSearchLoop',
        max_generations=1,
        population_size=4,
        top_k=2,
        num_mutation=0,
        num_crossover=0,
        calibrate_bn=1,
        seed=1,
        supernet_checkpoint=ckpt,
        score_key='mIoU',
        export_best=False,
        few_shot=manifest)
    runner = Runner.from_cfg(search)
    runner.train()
    loop = runner.train_loop
    assert len(loop.records) == 4
    checked = 0
    for key, rec in loop.records.items():
        subnet = json.loads(key)
        model.load_state_dict(
            _state(state['sub_supernets'][choice_key(
                subnet[SPLIT])]['checkpoint']))
        score = score_subnet(model, subnet, loop.val_dataloader,
                             loop.evaluator, loop.calib_batches, 1,
                             'mIoU')['mIoU']
        assert score == pytest.approx(rec['score'], abs=1e-9)
        checked += 1
    assert checked == 4
