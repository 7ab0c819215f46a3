"""Modulated deformable conv v2 with a fast pure-PyTorch path on CPU."""
import torch
import torch.nn.functional as F
from mmcv.ops import ModulatedDeformConv2dPack

from mmnas_tricks.registry import MODELS


def modulated_deform_conv2d_torch(x: torch.Tensor, offset: torch.Tensor,
                                  mask: torch.Tensor, weight: torch.Tensor,
                                  bias, stride, padding, dilation, groups: int,
                                  deform_groups: int) -> torch.Tensor:
    """DCNv2 (Zhu et al., CVPR 2019) with ``grid_sample``: the same
    sampling as mmcv's kernel (bilinear, zero outside the map; offsets laid
    out ``[group][kernel position][dy, dx]``, masks ``[group][position]``),
    differentiable by autograd. One ``grid_sample`` gathers every kernel
    position, then a (grouped) matrix product applies the weights."""
    n, c, h, w = x.shape
    out_c, c_per_group, kh, kw = weight.shape
    k = kh * kw
    g = deform_groups
    ho, wo = offset.shape[-2:]
    dev, dt = x.device, x.dtype
    # base sampling positions (pixel units) of every output x kernel position
    ys = (torch.arange(ho, device=dev, dtype=dt) * stride[0] - padding[0])
    xs = (torch.arange(wo, device=dev, dtype=dt) * stride[1] - padding[1])
    ky = torch.arange(kh, device=dev, dtype=dt) * dilation[0]
    kx = torch.arange(kw, device=dev, dtype=dt) * dilation[1]
    base_y = (ky.view(kh, 1, 1, 1) + ys.view(1, 1, ho, 1)).expand(
        kh, kw, ho, wo).reshape(k, ho, wo)
    base_x = (kx.view(1, kw, 1, 1) + xs.view(1, 1, 1, wo)).expand(
        kh, kw, ho, wo).reshape(k, ho, wo)
    off = offset.view(n, g, k, 2, ho, wo)
    py = base_y + off[:, :, :, 0]  # (n, g, k, ho, wo)
    px = base_x + off[:, :, :, 1]
    # pixel -> normalised coordinates for align_corners=False
    grid = torch.stack(((2 * px + 1) / w - 1, (2 * py + 1) / h - 1), dim=-1)
    grid = grid.view(n * g, k * ho, wo, 2)
    sampled = F.grid_sample(
        x.reshape(n * g, c // g, h, w),
        grid,
        mode='bilinear',
        padding_mode='zeros',
        align_corners=False)  # (n*g, c/g, k*ho, wo)
    sampled = sampled.view(n, g, c // g, k, ho, wo) * mask.view(
        n, g, 1, k, ho, wo)
    cols = sampled.reshape(n, groups, (c // groups) * k, ho * wo)
    wmat = weight.view(groups, out_c // groups, c_per_group * k)
    out = torch.einsum('gok,ngkl->ngol', wmat, cols).reshape(n, out_c, ho, wo)
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out


@MODELS.register_module()
class TorchCPUDCNv2(ModulatedDeformConv2dPack):
    """mmcv's ``DCNv2`` (``ModulatedDeformConv2dPack``: same arguments,
    parameters and names, so checkpoints move freely between the two) whose
    forward on CPU tensors runs :func:`modulated_deform_conv2d_torch`
    instead of mmcv's CPU kernel, with the same results (tested to 1e-5)
    in a fraction of the time (``benchmarks/dcn_cpu_speed.py``; figures in
    docs/search_and_training.md). On CUDA it is mmcv's kernel.

    Example:
        >>> conv_cfg = dict(type='mmnas_tricks.TorchCPUDCNv2')
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_cuda:
            return super().forward(x)
        out = self.conv_offset(x)
        o1, o2, mask = torch.chunk(out, 3, dim=1)
        offset = torch.cat((o1, o2), dim=1)
        return modulated_deform_conv2d_torch(x, offset, torch.sigmoid(mask),
                                             self.weight, self.bias,
                                             self.stride, self.padding,
                                             self.dilation, self.groups,
                                             self.deform_groups)
