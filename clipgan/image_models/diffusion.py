"""CLIP-guided diffusion sampling, as a generator of steps (k-diffusion style: models and tensors in).

The schedulers are diffusers' own (DDIM, DDPM): this module only adds the guidance. At each step
the UNet's noise estimate gives the scheduler's estimate of the clean image x0; CLIP scores cutouts
of x0 against the targets (the same Guides and prompt losses as the VQGAN loop), range and TV
terms join in, and x0 is moved down the (unit-RMS) gradient while the noise estimate is kept:
the scheduler steps from the sample x + sqrt(alpha_bar) * shift, whose clean part is the moved x0.
So each step's shift stays in the picture (recomputing the noise from the moved x0 instead would
cancel most of it). The UNet is never differentiated: one forward pass per step.

Inpainting: with `known` and `mask` (1 = regenerate), the known region is re-noised to each
step's level and put back, so the UNet sees it and the new part grows to fit it.
"""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
from torch import Tensor

from clipgan.errors import NumericError
from clipgan.losses import tv_loss
from clipgan.losses.terms import Guide, GuideSchedule, guide_losses


@dataclass
class DiffusionStep:
    index: int  # 0 .. steps-1 of this run
    timestep: int  # the scheduler's timestep
    loss: float
    losses: dict[str, float]  # by target label, plus "range" and "tv"
    image: Tensor  # (1, 3, H, W) in [0, 1]: the guided estimate of the clean image (a progress frame)
    sample: Tensor  # the noisy sample after the step, in [-1, 1] units (the final one is the picture)


def to_x0_eps(output: Tensor, x: Tensor, alpha_bar: Tensor, prediction: str) -> tuple[Tensor, Tensor]:
    """The UNet's output at noise level alpha_bar -> (clean estimate, noise estimate)."""
    a, s = alpha_bar.sqrt(), (1 - alpha_bar).sqrt()
    if prediction == "epsilon":
        return (x - s * output) / a, output
    if prediction == "v_prediction":
        return a * x - s * output, s * x + a * output
    if prediction == "sample":
        return output, (x - a * output) / s
    raise ValueError(f"unsupported prediction type {prediction!r}")


def from_x0(x0: Tensor, x: Tensor, alpha_bar: Tensor, prediction: str) -> Tensor:
    """What the UNet would have output for clean estimate x0 at sample x (inverse of to_x0_eps)."""
    a, s = alpha_bar.sqrt(), (1 - alpha_bar).sqrt()
    eps = (x - a * x0) / s
    if prediction == "epsilon":
        return eps
    if prediction == "v_prediction":
        return a * eps - s * x0
    return x0


def guidance(guides: Sequence[Guide], x0: Tensor, scale: float, tv_weight: float, range_weight: float,
             mask: Tensor | None = None, wrt: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
    """The shift of x0 (in [-1, 1] units) that lowers the CLIP, TV and range losses, and the losses.

    The gradient is normalized to unit RMS (over the masked pixels when inpainting) so that `scale`
    is a step size in pixel units whatever the number of prompts, cutouts or pixels."""
    if wrt is None:
        x0 = x0.detach().float().requires_grad_(True)
    with torch.enable_grad():
        image = x0.clamp(-1, 1).add(1).div(2)
        losses = guide_losses(guides, image)
        if range_weight:
            losses["range"] = range_weight * (x0 - x0.clamp(-1, 1)).pow(2).mean()
        if tv_weight:
            losses["tv"] = tv_loss(image, tv_weight)
        total = sum(losses.values(), torch.zeros((), device=x0.device))
        if not torch.isfinite(total):
            raise NumericError(f"the guidance loss became {total.item()}; use --precision fp32")
        if not total.requires_grad:
            return torch.zeros_like(x0), losses
        (grad,) = torch.autograd.grad(total, x0 if wrt is None else wrt)
    if mask is not None:
        grad = grad * mask
    rms = grad.pow(2).mean().sqrt() if mask is None else (grad.pow(2).sum() / mask.sum().clamp(min=1)).sqrt()
    return -scale * grad / (rms + 1e-12), losses


def sample(
    unet,
    scheduler,
    guides: GuideSchedule,
    noise: Tensor,
    *,
    steps: int,
    guidance_scale: float = 24.0,
    tv_weight: float = 0.0,
    range_weight: float = 0.0,
    strength: float = 1.0,
    init: Tensor | None = None,
    known: Tensor | None = None,
    mask: Tensor | None = None,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
) -> Iterator[DiffusionStep]:
    """Denoise `noise` (1, 3, H, W) in `steps` scheduler steps, guided by CLIP.

    `guides` may be a callable step -> guides (a morph blends targets per frame this way).
    `guidance_scale` is the whole run's pull (spread over the steps, most of it early);
    `range_weight` adds a loss on the clean estimate's values outside [-1, 1] (for schedules
    without clip_sample: with it, the scheduler clamps the estimate itself), `tv_weight` a
    total-variation loss. `strength` < 1 with `init` (an image in [-1, 1]) skips the first (1 - strength) of the
    timesteps: the run starts from `init` noised to that level (a sketch or photo to refine).
    `known` and `mask` (1 = regenerate, broadcast to the sample) inpaint: outside the mask the
    sample is `known` at every step's noise level. `generator` draws the scheduler's and the
    re-noising's randomness, so a seed replays the run; `dtype` autocasts the UNet.
    """
    scheduler.set_timesteps(steps, device=noise.device)
    skip = skipped_steps(len(scheduler.timesteps), strength) if init is not None else 0
    timesteps = scheduler.timesteps[skip:]
    alphas = scheduler.alphas_cumprod.to(noise.device)
    prediction = scheduler.config.prediction_type
    x = noise
    if init is not None and skip:
        x = scheduler.add_noise(init, noise, timesteps[:1])
    if known is not None:
        x = _keep(scheduler, x, known, mask, timesteps[0], generator)
    autocast = torch.autocast(noise.device.type, dtype=dtype) if dtype else contextlib.nullcontext()
    for i, t in enumerate(timesteps):
        active = guides(i) if callable(guides) else guides
        a = alphas[t]
        with torch.no_grad(), autocast:
            out = unet(x, t).sample.float()
        x0, _ = to_x0_eps(out, x, a, prediction)
        # each step's shift stays in the sample, so the run's pull adds up: 1/steps of the scale
        # per step keeps it the same whatever the number of steps; sqrt(1 - a) puts it early,
        # where the layout and colours are decided, and fades it as the picture settles
        share = (1 - a).sqrt().item() / len(timesteps)
        shift, losses = guidance(active, x0, guidance_scale * share, tv_weight, range_weight,
                                 None if mask is None else mask.expand_as(x0))
        # move the clean estimate by the shift and keep the noise estimate: the scheduler sees the
        # sample x + sqrt(a) shift, whose clean part is x0 + shift and whose noise part is unchanged
        x = x + a.sqrt() * shift
        out = from_x0(x0 + shift, x, a, prediction)
        with torch.no_grad():
            x = scheduler.step(out, t, x, generator=generator).prev_sample
            last = i == len(timesteps) - 1
            if known is not None:
                x = mask * x + (1 - mask) * known if last else \
                    _keep(scheduler, x, known, mask, timesteps[i + 1], generator)
        if not torch.isfinite(x).all():
            raise NumericError(f"the sample became NaN at step {i}; use --precision fp32")
        image = (x if last else x0 + shift).detach().clamp(-1, 1).add(1).div(2)
        total = sum(v.item() for v in losses.values())
        yield DiffusionStep(i, int(t), total, {k: v.item() for k, v in losses.items()}, image, x.detach())


def skipped_steps(steps: int, strength: float) -> int:
    """How many of `steps` a run from a picture at `strength` skips (it always runs one at least)."""
    return min(int(round(steps * (1 - strength))), steps - 1)


def guide_score(step: DiffusionStep) -> float:
    """The CLIP part of a step's loss (the prompts' terms, without range and TV): lower is better."""
    return sum(v for k, v in step.losses.items() if k not in ("range", "tv"))


def best_of(runs: Sequence[Iterator[DiffusionStep]], prefix: int) -> Iterator[DiffusionStep]:
    """Runs each candidate run `prefix` steps and continues only the one CLIP scores best.

    The first steps decide a denoising run's layout (which shape, where): drawing several and keeping
    the one that fits the prompt is a cheap search over the prior, where guidance alone can only
    nudge the one start it was given. Yields the chosen run's steps, its prefix included."""
    if len(runs) == 1:
        yield from runs[0]
        return
    heads = [list(itertools.islice(run, prefix)) for run in runs]
    best = min(range(len(runs)), key=lambda k: guide_score(heads[k][-1]))
    yield from heads[best]
    yield from runs[best]


def _keep(scheduler, x: Tensor, known: Tensor, mask: Tensor, t, generator) -> Tensor:
    """x inside the mask, `known` noised to timestep t outside it."""
    fresh = torch.randn(known.shape, generator=generator, device=known.device)
    return mask * x + (1 - mask) * scheduler.add_noise(known, fresh, t.reshape(1))
