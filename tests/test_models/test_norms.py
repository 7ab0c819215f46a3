"""Ghost BatchNorm (docs/tricks.md, T3.3) and the BatchNorm conversion behind
ConvertNormHook (GN, Ghost BN, SyncBN)."""
import pytest
import torch
import torch.nn as nn
from mmcv.cnn import ConvModule, build_norm_layer

from mmnas_tricks.models.ops import GhostBatchNorm2d, convert_batchnorms


def test_ghost_bn_normalises_each_virtual_batch_with_its_own_statistics():
    torch.manual_seed(0)
    x = torch.randn(8, 3, 5, 5) * 3 + 1
    ghost = GhostBatchNorm2d(3, virtual_batch_size=2, momentum=0.1)
    ref = nn.BatchNorm2d(3, momentum=0.1)
    ref.load_state_dict(ghost.state_dict())
    y = ghost(x)
    # equal to plain BN applied to every chunk of 2 separately
    want = torch.cat([ref(c) for c in x.split(2)])
    assert torch.allclose(y, want, atol=1e-6)
    for c in y.split(2):
        assert torch.allclose(c.mean((0, 2, 3)), torch.zeros(3), atol=1e-4)
        assert torch.allclose(
            c.var((0, 2, 3), unbiased=False), torch.ones(3), atol=1e-3)
    # running statistics: updated once per chunk (closed form)
    m, run = 0.1, torch.zeros(3)
    for c in x.split(2):
        run = (1 - m) * run + m * c.mean((0, 2, 3))
    assert torch.allclose(ghost.running_mean, run, atol=1e-6)
    assert int(ghost.num_batches_tracked) == 4
    # virtual batch >= batch: exactly BatchNorm; eval: running statistics
    big = GhostBatchNorm2d(3, virtual_batch_size=8)
    plain = nn.BatchNorm2d(3)
    assert torch.equal(big(x), plain(x))
    ghost.eval()
    ref.eval()
    assert torch.allclose(ghost(x), ref(x), atol=1e-6)


def test_ghost_bn_builds_from_a_norm_cfg():
    name, layer = build_norm_layer(
        dict(type='mmnas_tricks.GhostBN', virtual_batch_size=4), 16)
    assert name == 'bn' and isinstance(layer, GhostBatchNorm2d)
    assert layer.virtual_batch_size == 4
    with pytest.raises(ValueError, match='virtual_batch_size=0'):
        GhostBatchNorm2d(4, virtual_batch_size=0)


class Net(nn.Module):

    def __init__(self):
        super().__init__()
        self.backbone = ConvModule(
            3, 16, 3, padding=1, norm_cfg=dict(type='BN'))
        self.neck = nn.Sequential(
            ConvModule(16, 16, 3, padding=1, norm_cfg=dict(type='BN')),
            nn.BatchNorm2d(16))
        self.head = ConvModule(16, 8, 1, norm_cfg=dict(type='BN'))

    def forward(self, x):
        return self.head(self.neck(self.backbone(x)))


def test_group_norm_takes_the_place_and_the_parameters_of_batchnorm():
    net = Net()
    old = {n: p for n, p in net.named_parameters()}
    optim = torch.optim.SGD(net.parameters(), lr=0.1)
    names = convert_batchnorms(net, 'GN', ['neck', 'head'], num_groups=4)
    assert names == ['neck.0.bn', 'neck.1', 'head.bn']
    left = [n for n, m in net.named_modules() if isinstance(m, nn.BatchNorm2d)]
    assert left == ['backbone.bn']  # outside the given paths
    assert isinstance(net.head.norm, nn.GroupNorm)  # ConvModule's .norm
    assert net.head.norm.num_groups == 4
    # the same parameter objects: an optimizer built before holds them
    new = dict(net.named_parameters())
    assert new.keys() == old.keys()
    assert all(new[k] is old[k] for k in new)
    held = {id(p) for g in optim.param_groups for p in g['params']}
    assert all(id(p) in held for p in net.parameters())
    # batch independent: sample 0 alone == sample 0 in a batch
    net.train()
    x = torch.randn(4, 3, 8, 8)
    convert_batchnorms(net, 'GN', num_groups=8)  # the rest; twice is a no-op
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    assert torch.allclose(net(x)[:1], net(x[:1]), atol=1e-5)


def test_conversion_errors_name_the_bad_value():
    with pytest.raises(ValueError, match="to='LN'.*GN"):
        convert_batchnorms(Net(), 'LN')
    with pytest.raises(
            ValueError, match=r'neck.0.bn \(16 channels\).*'
            'num_groups=3'):
        convert_batchnorms(Net(), 'GN', ['neck'], num_groups=3)
    with pytest.raises(ValueError, match=r"\['bbox_head'\]"):
        convert_batchnorms(Net(), 'GN', ['bbox_head'], num_groups=4)


@pytest.mark.parametrize('to,cls', [('GhostBN', GhostBatchNorm2d),
                                    ('SyncBN', nn.SyncBatchNorm)])
def test_ghost_and_sync_bn_keep_parameters_and_statistics(to, cls):
    net = Net()
    net.train()
    net(torch.randn(4, 3, 8, 8))  # some running statistics
    state = {k: v.clone() for k, v in net.state_dict().items()}
    convert_batchnorms(net, to, virtual_batch_size=2)
    assert all(
        isinstance(m, cls) for m in net.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm))
    after = net.state_dict()
    assert after.keys() == state.keys()
    assert all(torch.equal(after[k], state[k]) for k in state)
    # not distributed: SyncBN computes plain BN
    if to == 'SyncBN':
        net.eval()
        ref = Net()
        ref.load_state_dict(state)
        ref.eval()
        x = torch.randn(2, 3, 8, 8)
        assert torch.allclose(net(x), ref(x), atol=1e-6)
