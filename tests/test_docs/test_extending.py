"""docs/extending.md's worked examples, run as the page writes them: the
trick hook acts on the mutables' outputs through forward hooks it removes,
the search strategy searches and writes its results."""
import os.path as osp
import re

import pytest
import torch


def _examples(repo_root) -> dict:
    """The page's python blocks that define a class, executed; returns
    their namespace."""
    with open(osp.join(repo_root, 'docs', 'extending.md')) as f:
        blocks = re.findall(r'```python\n(.*?)```', f.read(), re.S)
    namespace = {}
    for block in blocks:
        if 'class ' in block:
            exec(compile(block, 'docs/extending.md', 'exec'), namespace)
    return namespace


def test_the_trick_hook_example(repo_root):
    from mmnas_tricks.models.mutables import set_mode
    from tests.test_engine.test_hooks.toy import Toy, mock_runner, scalar
    hook = _examples(repo_root)['OutputNoiseHook'](sigma0=0.5)
    model = Toy()
    set_mode(model, 'sampled')
    runner = mock_runner(
        model, [hook], epochs=2, iters_per_epoch=5, name='extending')
    hook.before_train(runner)
    x = torch.randn(2, 4, 6, 6)
    model.train()
    clean = model.a(x)  # sigma 0 before the first iteration
    runner.iter = 5  # halfway
    hook.before_train_iter(runner, 0)
    assert hook.sigma == pytest.approx(0.25)
    assert scalar(runner, 'train/output_noise') == pytest.approx(0.25)
    noisy = model.a(x)
    assert float((noisy - clean).std()) == pytest.approx(0.25, rel=0.3)
    model.eval()  # never in eval mode
    with torch.no_grad():
        with_noise = model.a(x)
        hook.sigma = 0.0
        assert torch.equal(model.a(x), with_noise)
    hook.after_train(runner)  # off, and its forward hooks gone
    model.train()
    hook.sigma = 0.5
    assert torch.equal(model.a(x), clean)
    assert not model.a._forward_hooks


@pytest.fixture
def supernet_ckpt(tiny_seg_supernet):
    return tiny_seg_supernet.epoch_2


@pytest.mark.heavy
def test_the_search_strategy_example(repo_root, tiny_digits, supernet_ckpt,
                                     tmp_path):
    import json

    from tests.test_engine.test_runner.test_evolution_search_loop import (
        run, search_cfg)
    _examples(repo_root)
    cfg = search_cfg(tiny_digits, supernet_ckpt, str(tmp_path), 'local', 2)
    for key in ('top_k', 'num_mutation', 'num_crossover'):
        cfg.train_cfg.pop(key)
    cfg.train_cfg.update(
        type='mmnas_tricks.LocalSearchLoop',
        neighbours=3,
        mutate_prob=0.5,
        export_best=False)
    loop = run(cfg).train_loop
    assert type(loop).__name__ == 'LocalSearchLoop'
    assert loop.best == loop.best_key() == loop.ranked()[0]
    with open(osp.join(str(tmp_path), 'search', 'candidates.json')) as f:
        rows = json.load(f)
    assert sorted({r['generation'] for r in rows}) == [0, 1]
    assert len(rows) == len(loop.records) == 8  # two generations of 4
