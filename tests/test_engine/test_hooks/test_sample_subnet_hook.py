"""SampleSubnetHook: a mock-runner unit test of its behaviour."""
from types import SimpleNamespace

import pytest
import torch.nn as nn

from mmnas_tricks.engine.hooks import SampleSubnetHook
from mmnas_tricks.models.mutables import get_subnet, set_subnet
from ...test_models.test_mutables import Toy


def runner_at(model, it):
    return SimpleNamespace(model=model, iter=it)


def test_same_seed_and_iteration_give_the_same_subnet_everywhere():
    """Two ranks (two hooks, two models) agree without communicating, and
    the sequence varies over iterations."""
    a, b = Toy(), Toy()
    hook_a, hook_b = SampleSubnetHook(seed=3), SampleSubnetHook(seed=3)
    seen = set()
    for it in range(20):
        hook_a.before_train_iter(runner_at(a, it), it)
        hook_b.before_train_iter(runner_at(b, it), it)
        assert get_subnet(a) == get_subnet(b)
        seen.add(tuple(sorted(get_subnet(a).items())))
    assert len(seen) > 5
    other, differs = Toy(), False
    for it in range(10):
        SampleSubnetHook(seed=4).before_train_iter(runner_at(other, it), it)
        hook_a.before_train_iter(runner_at(a, it), it)
        differs |= get_subnet(other) != get_subnet(a)
    assert differs  # another seed, another sequence
    # a resumed run (fresh hook) continues the same sequence
    again = Toy()
    SampleSubnetHook(seed=3).before_train_iter(runner_at(again, 7), 7)
    hook_a.before_train_iter(runner_at(a, 7), 7)
    assert get_subnet(again) == get_subnet(a)


def test_include_restricts_sampling():
    model = Toy()
    set_subnet(model, dict(block1='conv1x1', block2='conv', pick=0))
    hook = SampleSubnetHook(include='block2')
    for it in range(10):
        hook.before_train_iter(runner_at(model, it), it)
        assert get_subnet(model)['block1'] == 'conv1x1'
        assert get_subnet(model)['pick'] == 0


@pytest.mark.parametrize('eval_subnet', ['first', 'last', 'keep'])
def test_validation_subnet_and_restore(eval_subnet):
    model = Toy()
    hook = SampleSubnetHook(eval_subnet=eval_subnet)
    hook.before_train_iter(runner_at(model, 2), 2)
    train_subnet = get_subnet(model)
    hook.before_val_epoch(runner_at(model, 2))
    during = get_subnet(model)
    if eval_subnet == 'keep':
        assert during == train_subnet
    else:
        index = 0 if eval_subnet == 'first' else -1
        assert during == {
            n: c[index]
            for n, c in dict(
                block1=list(Toy().block1.choices),
                block2=list(Toy().block2.choices),
                pick=list(Toy().pick.choices)).items()
        }
    hook.after_val_epoch(runner_at(model, 2))
    assert get_subnet(model) == train_subnet


def test_bad_arguments_and_no_mutables():
    with pytest.raises(ValueError, match=r"eval_subnet='best'.*'first'"):
        SampleSubnetHook(eval_subnet='best')
    with pytest.raises(ValueError, match='no searchable mutable'):
        SampleSubnetHook().before_train(runner_at(nn.Conv2d(1, 1, 1), 0))


def test_fair_sampling_takes_every_choice_once_per_block():
    model = Toy()
    hook = SampleSubnetHook(seed=1, strategy='fair')
    sizes = {
        n: len(c)
        for n, c in dict(
            block1=model.block1.choices,
            block2=model.block2.choices,
            pick=model.pick.choices).items()
    }
    seen = {n: [] for n in sizes}
    for it in range(12):
        hook.before_train_iter(runner_at(model, it), it)
        for n, c in get_subnet(model).items():
            seen[n].append(c)
    for n, size in sizes.items():
        for start in range(0, 12 - size + 1, size):
            block = seen[n][start:start + size]
            assert sorted(map(str, block)) == sorted(
                map(str,
                    getattr(model, n).choices))


def test_sandwich_cycles_max_min_random():
    from mmnas_tricks.models.mutables import extreme_subnet
    model = Toy()
    hook = SampleSubnetHook(strategy='sandwich')
    for it in range(6):
        hook.before_train_iter(runner_at(model, it), it)
        if it % 3 == 0:
            assert get_subnet(model) == extreme_subnet(model, 'max')
        elif it % 3 == 1:
            assert get_subnet(model) == extreme_subnet(model, 'min')
    with pytest.raises(ValueError, match=r"strategy='greedy'"):
        SampleSubnetHook(strategy='greedy')


def test_flops_window_draws_the_random_subnets_from_a_pool():
    """The random subnets come from a pool drawn once from the seed, every
    one within the window of the first subnet's FLOPs; the sandwich's
    extremes stay the space's; a second hook (another rank, a resumed run)
    builds the same pool; a window nothing falls in is refused."""
    from mmnas_tricks.models import subnet_resources
    from mmnas_tricks.models.mutables import extreme_subnet, named_mutables
    shape = (3, 8, 8)
    model = Toy()
    first = {n: m.choices[0] for n, m in named_mutables(model).items()}
    base = subnet_resources(model, first, shape)['flops']
    hook = SampleSubnetHook(
        seed=1, strategy='sandwich', flops_window=(1.2, 3.0), pool_size=40)
    records = hook.build_pool(model, shape)
    kept = [r for r in records if r['kept']]
    assert 0 < len(kept) == len(hook.pool) < len(records)  # some dropped
    for subnet in hook.pool:
        ratio = subnet_resources(model, subnet, shape)['flops'] / base
        assert 1.2 <= ratio <= 3.0
    keys = {json_key(s) for s in hook.pool}
    for it in range(12):
        subnet = hook.subnet_at(model, it)
        if it % 3 == 2:
            assert json_key(subnet) in keys
        else:
            assert subnet == extreme_subnet(model,
                                            'max' if it % 3 == 0 else 'min')
    other = SampleSubnetHook(
        seed=1, strategy='sandwich', flops_window=(1.2, 3.0), pool_size=40)
    other.build_pool(Toy(), shape)
    assert other.pool == hook.pool
    uniform = SampleSubnetHook(seed=2, flops_window=(1.2, 3.0), pool_size=40)
    uniform.build_pool(model, shape)
    assert all(
        json_key(uniform.subnet_at(model, it)) in
        {json_key(s)
         for s in uniform.pool} for it in range(10))
    empty = SampleSubnetHook(flops_window=(5.0, 6.0), pool_size=10)
    with pytest.raises(
            ValueError,
            match=r'none of \d+ random subnets is '
            r'within flops_window=\[5.0, 6.0\]'):
        empty.build_pool(model, shape)


@pytest.mark.parametrize('kwargs,match', [
    (dict(flops_window=(0.9, 0.3)), 'must be'),
    (dict(flops_window=(0.3, )), 'must be'),
    (dict(flops_window=(0.3, 1.0), strategy='fair'), "strategy='fair'"),
    (dict(flops_window=(0.3, 1.0), include='block1'), 'include or fixed'),
    (dict(flops_window=(0.3, 1.0), pool_size=0), 'pool_size'),
])
def test_flops_window_arguments_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SampleSubnetHook(**kwargs)


def json_key(subnet):
    from mmnas_tricks.structures import subnet_key
    return subnet_key(subnet)


def test_flops_window_pool_is_built_before_training_and_written(tmp_path):
    import json
    model = Toy()
    hook = SampleSubnetHook(
        seed=1, flops_window=(1.2, 3.0), pool_size=20, input_shape=(3, 8, 8))
    runner = SimpleNamespace(
        model=model, iter=0, cfg=None, work_dir=str(tmp_path))
    hook.before_train(runner)
    written = json.load(open(tmp_path / 'subnet_pool.json'))
    assert written['flops_window'] == [1.2, 3.0]
    assert written['input_size'] == [8, 8]
    assert sum(r['kept'] for r in written['subnets']) == len(hook.pool) > 0
