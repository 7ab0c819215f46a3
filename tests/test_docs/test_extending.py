"""docs/extending.md's worked examples, run as the page writes them: the
trick hook acts on the mutables' outputs through forward hooks it removes,
the searchable head keeps the module contract and exports to mmdet's head,
the search strategy searches and writes its results."""
import os.path as osp
import re

import pytest
import torch


def _examples(repo_root) -> dict:
    """Every python block of the page (code and config snippets), executed
    in order; returns their namespace."""
    with open(osp.join(repo_root, 'docs', 'extending.md')) as f:
        blocks = re.findall(r'```python\n(.*?)```', f.read(), re.S)
    assert len(blocks) == 6  # three recipes: code, then its config
    namespace = {}
    for block in blocks:
        exec(compile(block, 'docs/extending.md', 'exec'), namespace)
    return namespace


def test_the_trick_hook_example(repo_root):
    from mmnas_tricks.models.mutables import set_mode
    from mmnas_tricks.registry import HOOKS
    from tests.test_engine.test_hooks.toy import Toy, mock_runner, scalar
    hook_cfg, = _examples(repo_root)['custom_hooks']
    hook = HOOKS.build(dict(hook_cfg, sigma0=0.5))
    assert type(hook).__name__ == 'OutputNoiseHook'
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
    doc_cfg = _examples(repo_root)['train_cfg']
    cfg = search_cfg(tiny_digits, supernet_ckpt, str(tmp_path), 'local', 2)
    for key in ('top_k', 'num_mutation', 'num_crossover'):
        cfg.train_cfg.pop(key)
    assert set(doc_cfg) - set(cfg.train_cfg) == {'neighbours'}
    cfg.train_cfg.update(
        type=doc_cfg['type'], neighbours=3, mutate_prob=0.5, export_best=False)
    loop = run(cfg).train_loop
    assert type(loop).__name__ == 'LocalSearchLoop'
    assert loop.best == loop.best_key() == loop.ranked()[0]
    with open(osp.join(str(tmp_path), 'search', 'candidates.json')) as f:
        rows = json.load(f)
    assert sorted({r['generation'] for r in rows}) == [0, 1]
    assert len(rows) == len(loop.records) == 8  # two generations of 4


ATSS = dict(
    num_classes=3,
    in_channels=32,
    feat_channels=32,
    stacked_convs=2,
    anchor_generator=dict(
        type='AnchorGenerator',
        ratios=[1.0],
        octave_base_scale=8,
        scales_per_octave=1,
        strides=[8, 16]))


def test_the_searchable_head_example(repo_root):
    from mmdet.models.dense_heads import ATSSHead
    from mmengine.registry import DefaultScope

    from mmnas_tricks.models import export_config, inherit_weights
    from mmnas_tricks.models.mutables import (export_static, get_subnet,
                                              named_mutables, space_size)
    from mmnas_tricks.registry import MODELS
    namespace = _examples(repo_root)
    # the page's config snippet builds (ATSS's own defaults for the rest)
    assert type(MODELS.build(namespace['model']['bbox_head'])).__name__ == \
        'ATSSHead'
    head = MODELS.build(dict(type='mmnas_tricks.SearchableATSSHead', **ATSS))
    assert space_size(head) == 4**4
    assert set(get_subnet(head).values()) == {'conv3x3'}  # mmdet's first
    # the default subnet is mmdet's head: same weights, same outputs
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmdet'):
        plain = ATSSHead(**ATSS)
    inherit_weights(head, plain.state_dict())
    static = export_static(head)
    assert type(static) is ATSSHead and not list(named_mutables(static))
    assert static.state_dict().keys() == plain.state_dict().keys()
    feats = [torch.randn(1, 32, 8, 8), torch.randn(1, 32, 4, 4)]
    head.eval()
    plain.eval()
    with torch.no_grad():
        for ours, theirs in zip(head(feats), plain(feats)):
            for a, b in zip(ours, theirs):
                assert torch.allclose(a, b, atol=1e-6)
    # an exported config builds the plain head of the chosen ops
    subnet = {
        'bbox_head.cls_convs.0': 'sep_conv_3x3',
        'bbox_head.cls_convs.1': 'skip_connect',
        'bbox_head.reg_convs.0': 'conv5x5',
        'bbox_head.reg_convs.1': 'conv3x3'
    }
    from mmengine.config import Config
    cfg = export_config(
        Config(
            dict(
                model=dict(
                    type='ATSS',
                    bbox_head=dict(
                        type='mmnas_tricks.SearchableATSSHead', **ATSS)))),
        subnet)
    fixed = MODELS.build(cfg.model.bbox_head)
    assert type(fixed) is ATSSHead and not list(named_mutables(fixed))
    assert type(fixed.cls_convs[1]).__name__ == 'Identity'
    assert fixed.reg_convs[0].conv.kernel_size == (5, 5)


def test_the_searchable_contract_names_what_is_missing(repo_root):
    from mmdet.models.dense_heads import ATSSHead
    from mmengine.registry import DefaultScope

    from mmnas_tricks.models import SearchableModuleError, searchable
    namespace = _examples(repo_root)

    with pytest.raises(SearchableModuleError, match='no fixed_subnet'):

        @searchable
        def no_fixed_subnet(**kwargs):
            return ATSSHead(**kwargs)

    @searchable
    def forgets_fix_in_place(fixed_subnet=None, **kwargs):
        # the example's head without its last step
        return namespace['searchable_atss_head'].__wrapped__(**kwargs)

    with pytest.raises(
            SearchableModuleError,
            match=r'forgets_fix_in_place\(fixed_subnet=...\) left '
            r"mutables or elastic layers \['cls_convs.0'"):
        forgets_fix_in_place(fixed_subnet={'cls_convs.0': 'conv3x3'}, **ATSS)

    @searchable
    def searches_nothing(fixed_subnet=None, **kwargs):
        with DefaultScope.overwrite_default_scope('mmdet'):
            return ATSSHead(**kwargs)

    with pytest.raises(SearchableModuleError, match='holds no mutable'):
        searches_nothing(**ATSS)
