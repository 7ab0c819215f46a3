"""inherit_plain on a small model: the plain choice takes the plain weights,
a smaller kernel of the same op the centre, a different op nothing (said
why), and the report lists unused plain weights."""
import torch
import torch.nn as nn

from mmnas_tricks.models.inherit import inherit_plain, report_lines
from mmnas_tricks.models.mutables import OpChoice, static_copy


class Small(nn.Module):

    def __init__(self):
        super().__init__()
        self.edge = OpChoice(
            dict(
                conv3x3=dict(type='ConvOp', kernel_size=3),
                conv1x1=dict(type='ConvOp', kernel_size=1),
                conv5x5=dict(type='ConvOp', kernel_size=5),
                sep=dict(type='SepConv', kernel_size=3),
                skip=dict(type='Identity')),
            4,
            4,
            norm_cfg=dict(type='BN'))
        self.out = nn.Conv2d(4, 2, 1)


def test_plain_weights_land_where_they_match():
    model = Small()
    plain, _ = static_copy(Small(), {'edge': 'conv3x3'})
    state = {
        k: torch.randn_like(v) if v.is_floating_point() else v
        for k, v in plain.state_dict().items()
    }
    state['extra.weight'] = torch.zeros(1)
    sep_before = model.edge.candidates['sep'].state_dict()
    sep_before = {k: v.clone() for k, v in sep_before.items()}
    model.edge.current_choice = 'sep'
    report = inherit_plain(model, state)
    assert model.edge.current_choice == 'sep'  # choices kept
    cands = model.edge.candidates
    w = state['edge.conv.weight']
    assert torch.equal(cands['conv3x3'].conv.weight, w)
    assert torch.equal(cands['conv1x1'].conv.weight, w[:, :, 1:2, 1:2])
    assert torch.equal(cands['conv1x1'].bn.weight, state['edge.bn.weight'])
    assert torch.equal(model.out.weight, state['out.weight'])
    assert all(
        torch.equal(v, sep_before[k])
        for k, v in cands['sep'].state_dict().items())
    spread = {s['candidate']: s['how'] for s in report['spread']}
    assert spread == {'conv1x1': 'centre'}
    why = {x['where']: x['why'] for x in report['left_at_init']}
    assert 'SepConv' in why['edge.candidates.sep']
    assert '(4, 4, 5, 5)' in why['edge.candidates.conv5x5']
    assert report['unused'] == [
        dict(
            key='extra.weight',
            why='the plain architecture (subnet) has no such weight')
    ]
    assert report['into'] == {'edge': 'conv3x3'}
    text = '\n'.join(report_lines(report))
    assert 'left at init: edge.candidates.sep' in text
    # spread=False seeds only the plain choice
    fresh = Small()
    report = inherit_plain(fresh, state, spread=False)
    assert report['spread'] == []
    assert not torch.equal(fresh.edge.candidates['conv1x1'].conv.weight,
                           w[:, :, 1:2, 1:2])
