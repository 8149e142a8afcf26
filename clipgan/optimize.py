"""The optimization loop, as a generator of steps. It knows nothing of files or printing."""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import torch
from torch import Tensor, nn

from clipgan import accel as _accel
from clipgan.config import Settings
from clipgan.cutouts import Cutouts
from clipgan.errors import NumericError
from clipgan.models import lowmem
from clipgan.losses import clamp_with_grad, init_loss, prompt_loss, tv_loss, vector_quantize

OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "adagrad": torch.optim.Adagrad,
    "adamax": torch.optim.Adamax,
    "radam": torch.optim.RAdam,
    "rmsprop": torch.optim.RMSprop,
    "sgd": torch.optim.SGD,
}


@dataclass
class Target:
    """One prompt as seen by one perceptor: unit embeddings (M, D) with weight and stop."""

    label: str
    embeds: Tensor
    weight: float = 1.0
    stop: float = float("-inf")


@dataclass
class Guide:
    """A perceptor, the cutouts made for it, and the targets it scores against."""

    perceptor: nn.Module  # anything with encode_image(images in [0, 1]) -> unit embeddings
    cutouts: Cutouts
    targets: list[Target] = field(default_factory=list)


@dataclass
class Step:
    index: int
    loss: float
    losses: dict[str, float]  # by target label, averaged over perceptors
    z: Tensor  # the latent this step decoded (before the update)
    image: Tensor  # (1, 3, H, W) in [0, 1], decoded from z: save it without decoding again
    snapshot: Callable[[], dict] | None = None  # what resuming after this step needs


def _snapshot(z: Tensor, opt: torch.optim.Optimizer, next_step: int) -> Callable[[], dict]:
    """Deferred: copying the optimizer state every step would cost for nothing."""
    return lambda: {"z": z.detach().cpu().clone(), "optimizer": copy.deepcopy(opt.state_dict()), "next_step": next_step}


GuideSchedule = Sequence[Guide] | Callable[[int], Sequence[Guide]]


def synth(vqgan, z: Tensor) -> Tensor:
    """Latent -> image in [0, 1], quantized straight-through and clamped with gradient."""
    image = vqgan.decode(vector_quantize(z, vqgan.codebook))
    return clamp_with_grad(image.float().add(1).div(2), 0.0, 1.0)


def make_optimizer(name: str, params, lr: float) -> torch.optim.Optimizer:
    return OPTIMIZERS[name](params, lr=lr)


def iterate(
    vqgan,
    guides: GuideSchedule,
    z: Tensor,
    *,
    steps: int,
    lr: float = Settings.lr,
    optimizer: str = Settings.optimizer,
    init_weight: float = Settings.init_weight,
    tv_weight: float = Settings.tv_weight,
    dtype: torch.dtype | None = None,
    start: int = 0,
    optimizer_state: dict | None = None,
    z_init: Tensor | None = None,
    z_mask: Tensor | None = None,
    low_memory: bool = Settings.low_memory,
    compile: bool = False,
    cuda_graphs: bool = False,
) -> Iterator[Step]:
    """Optimize latent `z` (B, C, h, w) so that CLIP finds the decoded image close to the targets.

    `guides` may be a callable step -> guides, for prompts that change during the run.
    `dtype` (bf16/fp16) runs the decoder and CLIP under autocast; z and the optimizer stay fp32.
    Breaking out of the loop early is fine: every yielded step is complete. To resume, pass
    the z and optimizer state of a step's `snapshot()` with `start` at its `next_step`, and
    the run's first z as `z_init` (what `init_weight` pulls towards). `z_mask` (bool, broadcast
    to z) limits the change to some latent cells: the others keep their value in z.
    `low_memory` recomputes the decoder's activations in the backward pass (same gradients).
    `compile` runs the decoder and CLIP image towers through torch.compile, `cuda_graphs` also
    replays them as CUDA graphs (clipgan.accel); a failure there means eager, with a notice.
    """
    mode = _accel.compile_mode(compile, cuda_graphs)
    with lowmem.low_memory(vqgan, low_memory):
        yield from _iterate(vqgan, guides, z, steps, lr, optimizer, init_weight, tv_weight, dtype,
                            start, optimizer_state, z_init, z_mask, mode)


def _iterate(vqgan, guides, z, steps, lr, optimizer, init_weight, tv_weight, dtype,
             start, optimizer_state, z_init, z_mask, mode) -> Iterator[Step]:
    z_init = (z if z_init is None else z_init).detach().clone()
    z = z.detach().clone().requires_grad_(True)
    z_keep = z.detach().clone() if z_mask is not None else None
    codebook = vqgan.codebook
    z_min = codebook.min(0).values.view(1, -1, 1, 1)
    z_max = codebook.max(0).values.view(1, -1, 1, 1)
    opt = make_optimizer(optimizer, [z], lr)
    if optimizer_state is not None:
        opt.load_state_dict(optimizer_state)
    device_type = z.device.type
    scaler = torch.amp.GradScaler(device_type, enabled=dtype == torch.float16)
    accel = None
    try:
        for i in range(start, steps):
            active = guides(i) if callable(guides) else guides
            if mode is not None and accel is None:
                accel = _accel.Accelerated(_accel.accelerated_modules(vqgan, [g.perceptor for g in active]), mode)
            train = i < steps - 1  # the last step only scores: its update would never be seen
            # gradients whatever the caller's mode (a no_grad, or one a Ctrl-C left half-exited), never across the yield
            with torch.enable_grad():
                while True:
                    try:
                        image, losses, total = _forward_backward(vqgan, active, z, z_init, init_weight, tv_weight,
                                                                 dtype, scaler, i, train, accel)
                        break
                    except Exception as e:
                        if not _accel.can_fall_back(accel, e):
                            raise
                        accel.fallback(e)  # eager from now on; z and the optimizer are untouched so far
                        opt.zero_grad(set_to_none=True)
                z_used = z.detach().clone()
                if train and total.requires_grad:
                    scaler.step(opt)
                    scaler.update()
                    with torch.no_grad():
                        z.copy_(torch.maximum(torch.minimum(z, z_max), z_min))
                        if z_mask is not None:
                            z.copy_(torch.where(z_mask, z, z_keep))
                        if not torch.isfinite(z).all():
                            raise NumericError(f"the latent became NaN at step {i}; lower --lr or use --precision fp32")
            yield Step(i, total.item(), {k: v.item() for k, v in losses.items()}, z_used, image.detach(),
                       _snapshot(z, opt, i + 1))
    finally:
        if accel is not None:
            accel.restore()


def _forward_backward(vqgan, active, z, z_init, init_weight, tv_weight, dtype, scaler, i, train, accel):
    """One step's losses and, when training, the gradient in z.grad."""
    if accel is not None:
        accel.step_begin()
    z.grad = None
    autocast = torch.autocast(z.device.type, dtype=dtype) if dtype else contextlib.nullcontext()
    with autocast:
        image = synth(vqgan, z)
        losses = _guide_losses(active, image)
    if init_weight:
        losses["init"] = init_loss(z, z_init, init_weight)
    if tv_weight:
        losses["tv"] = tv_loss(image, tv_weight)
    total = sum(losses.values(), torch.zeros((), device=z.device))
    if not torch.isfinite(total):
        raise NumericError(f"the loss became {total.item()} at step {i}; lower --lr or use --precision fp32")
    if train and total.requires_grad:
        scaler.scale(total).backward()
    return image, losses, total


def _guide_losses(guides: Sequence[Guide], image: Tensor) -> dict[str, Tensor]:
    """Prompt losses by label, averaged over perceptors so an ensemble keeps the loss scale."""
    out: dict[str, Tensor] = {}
    for g in guides:
        embeds = g.perceptor.encode_image(g.cutouts(image))
        for t in g.targets:
            loss = prompt_loss(embeds, t.embeds, t.weight, t.stop) / len(guides)
            out[t.label] = out[t.label] + loss if t.label in out else loss
    return out
