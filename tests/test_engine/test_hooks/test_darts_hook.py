"""DartsHook: first-order DARTS in a real tiny Runner (alpha trained on the
held-out split only, weights on the training split only, argmax subnet
files, checkpoints and resume)."""
import os.path as osp

import pytest
import torch
from mmengine.runner import Runner

from mmnas_tricks.engine.hooks import DartsHook
from mmnas_tricks.models.mutables import named_mutables
from mmnas_tricks.structures import read_subnet_file
from mmnas_tricks.testing import config_dir, tiny_supernet_cfg
from ...conftest import TINY_SPEC
from .toy import Toy, mock_runner

DARTS = osp.join(config_dir(), 'supernets',
                 'darts_fcos_r18w16_fpn-search_gn-head-search_6e_digits.py')


def darts_cfg(tiny_digits, work_dir, name, epochs=1):
    # a small space: the neck and two tower layers are searched
    return tiny_supernet_cfg(DARTS, tiny_digits, TINY_SPEC, work_dir, name,
                             epochs)


def hook_of(runner) -> DartsHook:
    return next(h for h in runner.hooks if isinstance(h, DartsHook))


def test_darts_trains_alpha_on_the_heldout_split_and_resumes(
        tiny_digits, tmp_path):
    work = str(tmp_path / 'darts')
    cfg = darts_cfg(tiny_digits, work, 'darts_a', epochs=2)
    runner = Runner.from_cfg(cfg)
    model = runner.model
    mutables = named_mutables(model, searchable_only=True)
    alpha0 = {n: m.arch_alpha.detach().clone() for n, m in mutables.items()}
    runner.train()
    hook = hook_of(runner)

    # alpha moved, by the arch optimizer only
    moved = [
        n for n, m in mutables.items()
        if not torch.equal(m.arch_alpha.detach(), alpha0[n])
    ]
    assert len(moved) == len(mutables)
    in_weight_opt = {
        id(p)
        for g in runner.optim_wrapper.optimizer.param_groups
        for p in g['params']
    }
    assert not any(
        id(m.arch_alpha) in in_weight_opt for m in mutables.values())
    assert all(m.mode == 'differentiable' for m in mutables.values())
    assert not any(m.arch_alpha.requires_grad for m in mutables.values())
    state = hook.arch_optimizer.state
    steps = {int(s['step']) for s in state.values()}
    assert steps == {runner.iter}  # one arch step per weight step

    # the two splits do not overlap and together are the training set
    def ids(dataset):
        return {
            dataset.get_data_info(i)['img_id']
            for i in range(len(dataset))
        }

    train_ids = ids(runner.train_dataloader.dataset)
    arch_ids = ids(hook._loader.dataset)
    assert train_ids and arch_ids and not train_ids & arch_ids

    # argmax subnet files every epoch and at the end
    darts_dir = osp.join(work, 'darts')
    for tag in ('epoch_1', 'epoch_2', 'final'):
        subnet, meta = read_subnet_file(
            osp.join(darts_dir, f'argmax_{tag}.yaml'))
        assert set(subnet) == set(named_mutables(model))
        assert osp.isfile(osp.join(darts_dir, f'alpha_{tag}.json'))
    final, _ = read_subnet_file(osp.join(darts_dir, 'argmax_subnet.yaml'))
    assert final == hook.argmax(model)
    assert all(final[n] == m.argmax_choice() for n, m in mutables.items())

    # the checkpoint holds alpha and the arch optimizer; resume restores both
    ckpt = torch.load(osp.join(work, 'epoch_2.pth'), map_location='cpu')
    assert 'darts' in ckpt and ckpt['darts']['arch_optimizer']['state']
    cfg2 = darts_cfg(tiny_digits, work, 'darts_b', epochs=2)
    cfg2.resume = True
    cfg2.load_from = osp.join(work, 'epoch_1.pth')
    resumed = Runner.from_cfg(cfg2)
    resumed._train_loop = resumed.build_train_loop(resumed._train_loop)
    resumed.optim_wrapper = resumed.build_optim_wrapper(resumed.optim_wrapper)
    resumed.call_hook('before_run')
    resumed.load_or_resume()
    ckpt1 = torch.load(osp.join(work, 'epoch_1.pth'), map_location='cpu')
    r_hook = hook_of(resumed)
    r_mutables = named_mutables(resumed.model, searchable_only=True)
    for n, m in r_mutables.items():
        assert torch.equal(m.arch_alpha.detach(),
                           ckpt1['state_dict'][f'{n}.arch_alpha'])
    want = ckpt1['darts']['arch_optimizer']['state']
    got = r_hook.arch_optimizer.state_dict()['state']
    assert want.keys() == got.keys()
    for k in want:
        assert torch.equal(want[k]['exp_avg'], got[k]['exp_avg'])


def test_arch_step_leaves_the_weights_alone(tiny_digits, tmp_path):
    cfg = darts_cfg(tiny_digits, str(tmp_path / 'step'), 'darts_step')
    runner = Runner.from_cfg(cfg)
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    hook = hook_of(runner)
    hook.before_run(runner)
    hook.before_train(runner)
    weights = {
        n: p.detach().clone()
        for n, p in runner.model.named_parameters() if 'arch_alpha' not in n
    }
    alphas = [
        p.detach().clone() for n, p in runner.model.named_parameters()
        if 'arch_alpha' in n
    ]
    loss = hook.arch_step(runner, hook._next_batch())
    assert loss > 0
    for n, p in runner.model.named_parameters():
        if 'arch_alpha' in n:
            continue
        assert p.grad is None, n
        assert torch.equal(p.detach(), weights[n]), n
    after = [
        p.detach() for n, p in runner.model.named_parameters()
        if 'arch_alpha' in n
    ]
    assert all(not torch.equal(a, b) for a, b in zip(alphas, after))
    # switched off (weights warm-up): no batch drawn, nothing updated
    hook.arch_update_enabled = False
    before = [a.clone() for a in after]
    hook.before_train_iter(runner, 0, None)
    assert all(
        torch.equal(a, p.detach())
        for a, p in zip(before, (p for n, p in runner.model.named_parameters()
                                 if 'arch_alpha' in n)))


def test_bad_arguments():
    with pytest.raises(ValueError, match='dataloader config'):
        DartsHook(arch_dataloader=[1])
    with pytest.raises(ValueError, match='has no type'):
        DartsHook(arch_dataloader={}, arch_optimizer=dict(lr=1))
    with pytest.raises(ValueError, match='must not set params'):
        DartsHook(
            arch_dataloader={}, arch_optimizer=dict(type='Adam', params=[]))


def test_arch_weight_decay_is_the_arch_optimizer_setting():
    from mmengine.optim import OptimWrapper
    model = Toy()
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    darts = DartsHook(
        arch_dataloader={},
        arch_optimizer=dict(
            type='Adam', lr=3e-4, betas=(0.5, 0.999), weight_decay=5e-3))
    runner = mock_runner(model, [darts], name='wd')
    runner.optim_wrapper = wrapper
    darts.before_run(runner)
    assert [g['weight_decay'] for g in darts.arch_optimizer.param_groups] \
        == [5e-3]
    alphas = {id(m.arch_alpha) for m in (model.a, model.b, model.down)}
    in_arch = {
        id(p)
        for g in darts.arch_optimizer.param_groups for p in g['params']
    }
    in_weights = {
        id(p)
        for g in wrapper.optimizer.param_groups for p in g['params']
    }
    assert in_arch == alphas and not in_arch & in_weights
    assert DartsHook(
        arch_dataloader={}
    ).arch_optimizer_cfg['weight_decay'] == 1e-3  # DARTS's default
