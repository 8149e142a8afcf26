"""The optimization loop, as a generator of steps. It knows nothing of files, printing or VQGAN:
it optimizes an image model's parameters (clipgan.image_models) against loss terms (clipgan.losses)."""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import torch
from torch import Tensor

from clipgan import accel as _accel
from clipgan.config import Settings
from clipgan.errors import NumericError
from clipgan.losses.terms import Guide, GuideSchedule, LossTerm, Target  # noqa: F401  (re-exported)

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
class Step:
    index: int
    loss: float
    losses: dict[str, float]  # by label (a target's, "init", "tv"), averaged over perceptors
    z: Tensor  # the image model's parameters this step rendered (before the update)
    image: Tensor  # (1, 3, H, W) in [0, 1], rendered from z: save it without rendering again
    snapshot: Callable[[], dict] | None = None  # what resuming after this step needs


def _snapshot(z: Tensor, opt: torch.optim.Optimizer, next_step: int) -> Callable[[], dict]:
    """Deferred: copying the optimizer state every step would cost for nothing."""
    return lambda: {"z": z.detach().cpu().clone(), "optimizer": copy.deepcopy(opt.state_dict()), "next_step": next_step}


def stalled(losses: Sequence[float], window: int, gain: float) -> bool:
    """Whether the mean of the last `window` losses is not `gain` (relative) below the mean of the
    `window` before: the loss has stopped falling. Means, because each step's loss is noisy (random cutouts)."""
    if window < 1 or len(losses) < 2 * window:
        return False
    recent = sum(losses[-window:]) / window
    before = sum(losses[-2 * window:-window]) / window
    return recent > before - gain * abs(before)


def make_optimizer(name: str, params, lr: float) -> torch.optim.Optimizer:
    return OPTIMIZERS[name](params, lr=lr)


def iterate(
    model,
    losses: Sequence[LossTerm],
    *,
    steps: int,
    lr: float = Settings.lr,
    optimizer: str = Settings.optimizer,
    dtype: torch.dtype | None = None,
    start: int = 0,
    optimizer_state: dict | None = None,
    low_memory: bool = Settings.low_memory,
    compile: bool = False,
    cuda_graphs: bool = False,
    lr_schedule: Callable[[int], float] | None = None,
) -> Iterator[Step]:
    """Optimize the image model `model` (clipgan.image_models) so that the loss terms' sum falls.

    Each step renders the picture, sums the terms' labelled losses, steps the optimizer and
    calls `model.project()`. `dtype` (bf16/fp16) runs the render and the terms that ask for it
    under autocast; the parameters and the optimizer stay fp32. Breaking out of the loop early
    is fine: every yielded step is complete. To resume, load a step's `snapshot()["z"]` into
    the model (`load_state`) and pass its optimizer state with `start` at its `next_step`.
    `low_memory` lets the model recompute activations in the backward pass (same gradients).
    `compile` runs the model's and CLIP's image towers through torch.compile, `cuda_graphs`
    also replays them as CUDA graphs (clipgan.accel); a failure there means eager, with a notice.
    `lr_schedule(i)` is the share of `lr` step i uses (clipgan.schedules); a function of i alone, so a
    resumed run steps with the same lr as one that never stopped.
    """
    mode = _accel.compile_mode(compile, cuda_graphs)
    with model.low_memory(low_memory):
        yield from _iterate(model, list(losses), steps, lr, optimizer, dtype, start, optimizer_state, mode,
                            lr_schedule)


def _iterate(model, terms, steps, lr, optimizer, dtype, start, optimizer_state, mode, lr_schedule) -> Iterator[Step]:
    opt = make_optimizer(optimizer, model.parameters(), lr)
    if optimizer_state is not None:
        opt.load_state_dict(optimizer_state)
    device_type = model.z.device.type
    scaler = torch.amp.GradScaler(device_type, enabled=dtype == torch.float16)
    accel = None
    try:
        for i in range(start, steps):
            if mode is not None and accel is None:
                perceptors = [p for t in terms for p in t.perceptors(i)]
                accel = _accel.Accelerated(_accel.accelerated_modules(model.accelerated_modules(), perceptors), mode)
            train = i < steps - 1  # the last step only scores: its update would never be seen
            if lr_schedule is not None:
                for group in opt.param_groups:
                    group["lr"] = lr * lr_schedule(i)
            # gradients whatever the caller's mode (a no_grad, or one a Ctrl-C left half-exited), never across the yield
            with torch.enable_grad():
                while True:
                    try:
                        image, losses, total = _forward_backward(model, terms, dtype, scaler, i, train, accel)
                        break
                    except Exception as e:
                        if not _accel.can_fall_back(accel, e):
                            raise
                        accel.fallback(e)  # eager from now on; the parameters and the optimizer are untouched so far
                        opt.zero_grad(set_to_none=True)
                z_used = model.z.detach().clone()
                if train and total.requires_grad:
                    scaler.step(opt)
                    scaler.update()
                    model.project()
                    if not torch.isfinite(model.z).all():
                        raise NumericError(f"the {model.what} became NaN at step {i}; lower --lr or use --precision fp32")
            yield Step(i, total.item(), {k: v.item() for k, v in losses.items()}, z_used, image.detach(),
                       _snapshot(model.z, opt, i + 1))
    finally:
        if accel is not None:
            accel.restore()


def _forward_backward(model, terms, dtype, scaler, i, train, accel):
    """One step's losses and, when training, the gradients in the model's parameters."""
    if accel is not None:
        accel.step_begin()
    for p in model.parameters():
        p.grad = None
    device = model.z.device
    autocast = torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()
    with autocast:
        image = model.forward()
    losses: dict[str, Tensor] = {}
    for term in terms:
        with autocast if term.autocast else contextlib.nullcontext():
            losses.update(term(image, model, i))
    total = sum(losses.values(), torch.zeros((), device=device))
    if not torch.isfinite(total):
        raise NumericError(f"the loss became {total.item()} at step {i}; lower --lr or use --precision fp32")
    if train and total.requires_grad:
        scaler.scale(total).backward()
    return image, losses, total
