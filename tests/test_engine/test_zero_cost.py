"""Zero-cost proxies of a detector at its initial weights: finite and
positive, synflow larger for a wider network and independent of the data,
and the model left as it was."""
import os.path as osp

import pytest
import torch

from mmnas_tricks.engine.hand_rules import HandRule, scale_config
from mmnas_tricks.engine.zero_cost import PROXIES, zero_cost_scores
from mmnas_tricks.testing import config_dir
from mmnas_tricks.utils import build_model, load_config

DET = osp.join(config_dir(), 'baselines',
               'fcos_r18w16_fpn_gn-head_12e_digits.py')


def _batch(seed, size=64):
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    g = torch.Generator().manual_seed(seed)
    shape = (size, size)
    samples = []
    for _ in range(2):
        s = DetDataSample(
            metainfo=dict(
                img_shape=shape,
                ori_shape=shape,
                pad_shape=shape,
                scale_factor=(1., 1.),
                batch_input_shape=shape))
        s.gt_instances = InstanceData(
            bboxes=torch.tensor([[4., 4., 30., 30.], [30., 20., 60., 50.]]),
            labels=torch.tensor([1, 3]))
        samples.append(s)
    return dict(
        inputs=[
            torch.randint(0, 255, (3, *shape), generator=g, dtype=torch.uint8)
            for _ in samples
        ],
        data_samples=samples)


def _model(width):
    torch.manual_seed(0)
    return build_model(scale_config(load_config(DET), HandRule(width)))


def test_proxies_grow_with_width_and_leave_the_model_as_it_was():
    scores = {}
    for width in (0.25, 0.5):
        model = _model(width)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        scores[width] = zero_cost_scores(
            model, _batch(0), input_shape=(3, 64, 64))
        assert all(
            torch.equal(before[k], v)
            for k, v in model.state_dict().items())  # BN stats too
        assert all(p.grad is None or not p.grad.any()
                   for p in model.parameters())
        assert set(scores[width]) == set(PROXIES)
        assert all(0 < v < float('inf') for v in scores[width].values())
        # synflow sees no data: another batch, the same value
        again = zero_cost_scores(
            model, _batch(1), ('synflow', 'snip'), input_shape=(3, 64, 64))
        assert again['synflow'] == pytest.approx(scores[width]['synflow'])
        assert again['snip'] != pytest.approx(scores[width]['snip'])
    # synflow sums over the paths of the network: more of them when wider
    # (grad_norm and snip follow the loss, not only the size)
    assert scores[0.5]['synflow'] > 1.2 * scores[0.25]['synflow']
    with pytest.raises(KeyError, match=r"\['naswot'\] are not among"):
        zero_cost_scores(_model(0.25), _batch(0), ('naswot', ))
