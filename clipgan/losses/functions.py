"""Loss functions and the custom gradients of the VQGAN+CLIP recipe. Tensors in, tensors out."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


class _ReplaceGrad(torch.autograd.Function):
    """Forward value of `forward_x`, gradient routed to `backward_x`."""

    @staticmethod
    def forward(ctx, forward_x, backward_x):
        ctx.shape = backward_x.shape
        return forward_x

    @staticmethod
    def backward(ctx, grad):
        return None, grad.sum_to_size(ctx.shape)


replace_grad = _ReplaceGrad.apply


class _ClampWithGrad(torch.autograd.Function):
    """Clamp whose gradient still flows where it pushes a value back inside [lo, hi]."""

    @staticmethod
    def forward(ctx, x, lo, hi):
        ctx.lo, ctx.hi = lo, hi
        ctx.save_for_backward(x)
        return x.clamp(lo, hi)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        # descent moves x by -grad: keep grad where that moves x towards the range
        inward = grad * (x - x.clamp(ctx.lo, ctx.hi)) >= 0
        return grad * inward, None, None


def clamp_with_grad(x: Tensor, lo: float, hi: float) -> Tensor:
    return _ClampWithGrad.apply(x, lo, hi)


def vector_quantize(z: Tensor, codebook: Tensor) -> Tensor:
    """Snap each latent cell of z (B, C, H, W) to its nearest codebook row; straight-through gradient."""
    flat = z.movedim(1, -1).reshape(-1, z.shape[1])
    d = flat.pow(2).sum(1, keepdim=True) + codebook.pow(2).sum(1) - 2 * flat @ codebook.T
    zq = codebook[d.argmin(1)].view(z.shape[0], z.shape[2], z.shape[3], -1).movedim(-1, 1)
    return replace_grad(zq, z)


def spherical_distance(x: Tensor, y: Tensor) -> Tensor:
    """Pairwise squared great-circle distance of unit vectors: x (N, D), y (M, D) -> (N, M)."""
    chord = (x[:, None, :] - y[None, :, :]).norm(dim=-1)
    return chord.div(2).clamp(max=1).arcsin().pow(2).mul(2)


def prompt_loss(embeds: Tensor, targets: Tensor, weight: float = 1.0, stop: float = float("-inf")) -> Tensor:
    """Mean distance of cutout embeddings to a prompt's target embeddings (both unit-normalized).

    A negative weight pushes away. Once a (signed) distance is below `stop`, that pair
    stops pulling: its gradient is zero while the reported value stays the true distance.
    """
    dists = spherical_distance(embeds, targets) * (1.0 if weight >= 0 else -1.0)
    floored = torch.maximum(dists, torch.full_like(dists, stop))
    return abs(weight) * replace_grad(dists, floored).mean()


def init_loss(z: Tensor, z_init: Tensor, weight: float) -> Tensor:
    """Keeps z near where it started (not near zero)."""
    return F.mse_loss(z, z_init) * weight / 2


def tv_loss(image: Tensor, weight: float) -> Tensor:
    """Total variation of an image batch (B, C, H, W): mean squared neighbour difference."""
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return weight * (dx.pow(2).mean() + dy.pow(2).mean())
