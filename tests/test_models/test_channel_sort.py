"""Channel importance sorting of a plain FCOS checkpoint (Once-for-All's
channel re-organisation): the sorted network computes what the unsorted
one does, every channel space ends up ordered by importance (GroupNorm
groups whole), and the supernet that inherits the sorted checkpoint still
starts its first subnet as the baseline while its narrower widths take
the most important channels."""
import copy
from types import SimpleNamespace

import pytest
import torch

from mmnas_tricks.engine.hooks import InheritWeightsHook
from mmnas_tricks.models.channel_sort import (fcos_channel_spaces, fcos_layout,
                                              importance, sort_fcos_checkpoint,
                                              sort_order)
from mmnas_tricks.models.mutables import named_mutables, set_subnet
from mmnas_tricks.testing import demo_det_batch, trained_looking
from mmnas_tricks.utils import build_model, load_config
from .test_whole_detector_space import BASELINE, SPACE


@pytest.fixture(scope='module')
def baseline():
    torch.manual_seed(0)
    return trained_looking(
        build_model(load_config(BASELINE)), spread=0.2).eval()


def _outputs(model, data):
    with torch.no_grad():
        return [t for level in model._forward(data['inputs']) for t in level]


def test_sort_order_keeps_groups_whole():
    score = torch.tensor([1., 5., 0., 0., 2., 2., 9., 0.])
    assert sort_order(score).tolist() == [6, 1, 4, 5, 0, 2, 3, 7]
    # groups of 2 by their sums (6, 0, 4, 9), within a group by score
    assert sort_order(score, 2).tolist() == [6, 7, 1, 0, 4, 5, 2, 3]
    with pytest.raises(ValueError, match='whole groups of 3'):
        sort_order(score, 3)


def test_sorted_checkpoint_computes_the_same(baseline):
    state = copy.deepcopy(baseline.state_dict())
    orders = sort_fcos_checkpoint(state, baseline)
    assert sum(o != sorted(o) for o in orders.values()) >= 20
    assert set(state) == set(baseline.state_dict())
    resorted = build_model(load_config(BASELINE)).eval()
    resorted.load_state_dict(state)
    data = demo_det_batch(baseline, training=False, size=128)
    for a, b in zip(
            _outputs(resorted, data), _outputs(baseline, data), strict=True):
        assert (a - b).abs().max().item() <= 1e-4
    # every space is now in importance order; sorting again changes nothing
    for space in fcos_channel_spaces(state, **fcos_layout(baseline)):
        score = importance(state, space).view(-1, space.group).sum(1)
        assert (score[:-1] >= score[1:] - 1e-6).all(), space.name
    again = sort_fcos_checkpoint(state, baseline)
    assert all(o == sorted(o) for o in again.values())


def test_channel_spaces_cover_the_layout(baseline):
    state = baseline.state_dict()
    spaces = {
        s.name: s
        for s in fcos_channel_spaces(state, **fcos_layout(baseline))
    }
    # one stream per stage: stem + layer1 (no downsample), layers 2-4
    assert {
        'backbone.stem', 'backbone.layer2', 'backbone.layer3',
        'backbone.layer4'
    } <= set(spaces)
    assert 'neck.lateral_convs.2.conv.weight' in \
        spaces['backbone.layer4'].consumers
    assert spaces['bbox_head.cls_convs.0'].group == 4
    assert 'bbox_head.conv_centerness.weight' in \
        spaces['bbox_head.reg_convs.3'].consumers
    moved = [k for s in spaces.values() for k in s.producers + s.consumers]
    assert len(moved) == len(
        set((k, i) for s in spaces.values()
            for i, ks in enumerate((s.producers, s.consumers)) for k in ks))


def test_channel_spaces_refuse_another_layout(baseline):
    state = dict(baseline.state_dict())
    state['backbone.layer1.0.conv3.weight'] = torch.zeros(1)
    with pytest.raises(ValueError, match='basic blocks only'):
        fcos_channel_spaces(state, [1, 2, 3])
    with pytest.raises(ValueError, match='3 FPN laterals but out_indices'):
        fcos_channel_spaces(baseline.state_dict(), [2, 3])
    with pytest.raises(ValueError, match='needs a ResNet'):
        fcos_channel_spaces({}, [1, 2, 3])


def test_hook_inherits_the_sorted_baseline(baseline, tmp_path):
    torch.manual_seed(0)
    space = build_model(load_config(SPACE))
    hook = InheritWeightsHook(preserve_function=True, sort_channels=True)
    checkpoint = dict(state_dict=copy.deepcopy(baseline.state_dict()))
    hook.after_load_checkpoint(
        SimpleNamespace(model=space, work_dir=str(tmp_path)), checkpoint)
    assert hook.report['sorted_channel_spaces'] >= 20
    assert hook.report['unused'] == []
    first = {n: m.choices[0] for n, m in named_mutables(space).items()}
    set_subnet(space, first)
    space.load_state_dict(checkpoint['state_dict'])
    space.eval()
    data = demo_det_batch(space, training=False, size=128)
    for a, b in zip(
            _outputs(space, data), _outputs(baseline, data), strict=True):
        assert (a - b).abs().max().item() <= 1e-4
    # the narrower widths take the sorted checkpoint's first channels: the
    # lateral at width 32 is the sorted baseline's first 32 outputs (an
    # elastic-kernel conv: the 1x1 lateral is the centre tap of its 3x3)
    ordered = copy.deepcopy(baseline.state_dict())
    sort_fcos_checkpoint(ordered, baseline)
    lateral = ordered['neck.lateral_convs.0.conv.weight']
    got = space.state_dict()
    key = next(
        k for k in got if k.startswith('neck.lateral_convs.0')
        and k.endswith('weight') and got[k].dim() == 4)
    centre = got[key].shape[-1] // 2
    assert torch.allclose(
        got[key][:32, :lateral.shape[1], centre:centre + 1, centre:centre + 1],
        lateral[:32])
    assert not torch.allclose(
        lateral,
        baseline.state_dict()['neck.lateral_convs.0.conv.weight'])


def test_semantic_fpn_sorts_and_its_space_inherits_it(tmp_path):
    """The same for the Semantic FPN baseline (mmseg's ResNetV1c deep stem,
    the FPN head's scale heads summed into one space) and the
    whole-segmentor space: the sorted checkpoint computes the same, every
    space ends up in importance order, and the supernet inheriting it with
    sorting starts its first subnet as the baseline."""
    from mmnas_tricks.models.channel_sort import (sem_fpn_channel_spaces,
                                                  sort_plain_checkpoint)
    from .test_whole_segmentor_space import BASELINE as SEG_BASELINE
    from .test_whole_segmentor_space import SPACE as SEG_SPACE
    torch.manual_seed(0)
    seg = trained_looking(
        build_model(load_config(SEG_BASELINE)), spread=0.2).eval()
    state = copy.deepcopy(seg.state_dict())
    orders = sort_plain_checkpoint(state, seg)
    spaces = {s.name: s for s in sem_fpn_channel_spaces(state, [0, 1, 2, 3])}
    # the deep stem's two inner spaces, one per inner scale-head conv (1 +
    # 2 of the 4 scale heads' 7 convs), the summed one
    assert {'backbone.stem.0', 'backbone.stem.3', 'decode_head.sum'
            } <= set(spaces)
    assert [n for n in spaces if 'scale_heads' in n] == [
        'decode_head.scale_heads.2.0', 'decode_head.scale_heads.3.0',
        'decode_head.scale_heads.3.2'
    ]
    assert len(spaces['decode_head.sum'].producers) == 4 * 5  # conv + bn
    assert sum(o != sorted(o) for o in orders.values()) >= 20
    x = torch.rand(2, 3, 128, 128)
    resorted = build_model(load_config(SEG_BASELINE)).eval()
    resorted.load_state_dict(state)
    with torch.no_grad():
        assert torch.allclose(resorted._forward(x), seg._forward(x), atol=1e-4)
    for space in spaces.values():
        score = importance(state, space)
        assert (score[:-1] >= score[1:] - 1e-6).all(), space.name

    space = build_model(load_config(SEG_SPACE))
    hook = InheritWeightsHook(preserve_function=True, sort_channels=True)
    checkpoint = dict(state_dict=copy.deepcopy(seg.state_dict()))
    hook.after_load_checkpoint(
        SimpleNamespace(model=space, work_dir=str(tmp_path)), checkpoint)
    assert hook.report['sorted_channel_spaces'] >= 20
    assert hook.report['unused'] == []
    set_subnet(space,
               {n: m.choices[0]
                for n, m in named_mutables(space).items()})
    space.load_state_dict(checkpoint['state_dict'])
    space.eval()
    with torch.no_grad():
        assert torch.allclose(space._forward(x), seg._forward(x), atol=1e-4)
    # a model that is neither an FCOS nor a Semantic FPN is refused, named
    with pytest.raises(ValueError, match='Linear has neither a bbox_head'):
        sort_plain_checkpoint({}, torch.nn.Linear(1, 1))
