"""CLIP-guided diffusion runs (`--image-model diffusion`): settings -> seed -> models -> guides ->
`image_models.diffusion.sample` -> a Result, the same way `pipeline.generate` does for the VQGAN.

Text-to-image, start from a picture or sketch (`init_image`, `strength`), inpainting (`mask`) and
morphs between prompts (`morph_frames`). The prompt parsing, targets, cutouts, PNG settings and
Result are the VQGAN path's; only the image model differs.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch import Tensor

from clipgan.config import Settings
from clipgan.errors import ClipganError, ClipganNotice
from clipgan.image_models.diffusion import DiffusionStep, best_of, sample, skipped_steps
from clipgan.io import load_rgb, to_pil, to_tensor


@dataclass
class DiffusionModels:
    """A loaded UNet with its schedule, and the CLIP perceptors (reusable across calls)."""

    diffusion: object  # clipgan.models.diffusion.DiffusionModel
    perceptors: list
    device: torch.device
    contrast: list = field(default_factory=list)  # perceptors that pull only the contrast (runsetup.contrast_clips)
    vqgan = None  # build_guides and friends read only perceptors and device


def load_diffusion_models(s: Settings) -> DiffusionModels:
    from clipgan.interrupt import deferred_sigint
    from clipgan.models.diffusion import load_diffusion
    from clipgan.models.diffusion_registry import resolve_diffusion
    from clipgan.runsetup import load_perceptors, resolve_device

    with deferred_sigint():
        device = resolve_device(s.device)
        diffusion = load_diffusion(resolve_diffusion(s.diffusion), device)
        perceptors, contrast = load_perceptors(s, device)
    return DiffusionModels(diffusion, perceptors, device, contrast)


def run_size(s: Settings, models: DiffusionModels) -> tuple[int, int]:
    """The UNet's own size: a UNet makes pictures of the size it was trained at."""
    side = models.diffusion.size
    if s.size is not None and tuple(s.size) != (side, side):
        raise ClipganError(f"size {s.size[0]}x{s.size[1]} does not fit this diffusion model: it makes "
                           f"{side}x{side} pictures (leave the size out: no --size, or 0 x 0 in the web app)")
    return side, side


def _dtype(s: Settings, device: torch.device):
    from clipgan.runsetup import resolve_dtype

    return resolve_dtype(s.precision, device)


def _prepared(s: Settings, models: DiffusionModels | None):
    from clipgan.runsetup import draw_seed
    from clipgan.schedules import scheduled

    if scheduled(s):
        raise ClipganError("--lr-schedule and --cut-schedule shape an optimized run; a diffusion run's steps follow "
                           "its noise schedule (leave them at constant)")
    models = models or load_diffusion_models(s)
    seed = s.seed if s.seed is not None else draw_seed()
    s = s.replace(seed=seed, size=run_size(s, models))
    torch.manual_seed(seed)  # cutouts and augmentations draw from torch's generator
    return s, models, seed


# With several candidates, the share of a run's denoising steps each runs before the best goes on:
# by then the layout shows in the clean estimate (chosen by eye, not tuned; docs/benchmarks.md)
CANDIDATE_SHARE = 0.3


# The share of a run's denoising steps the contrast CLIPs guide (Settings.contrast_clip): the early
# steps lay the shape out; later ones at full weight cost colours (docs/benchmarks.md)
CONTRAST_SHARE = 0.5


def contrast_steps(s: Settings) -> int:
    return math.ceil(CONTRAST_SHARE * denoising_steps(s))


def _before(limit: int, step: int) -> bool:
    return step < limit


def contrast_schedule(s: Settings) -> Callable[[int], bool]:
    """Whether the contrast CLIPs guide denoising step i (build_guides' `contrast`): the first contrast_steps(s)."""
    return partial(_before, contrast_steps(s))


def _noise(seed: int, size: int, device, count: int = 1) -> list[Tensor]:
    """The starting noises of a seed, drawn one after another on the CPU (the same on every device);
    the first is the seed's noise whatever the count."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(1, 3, size, size, generator=g).to(device) for _ in range(count)]


def denoising_steps(s: Settings) -> int:
    """The steps a diffusion run of `s` makes: from an init image (not inpainting) it skips the first ones."""
    return s.iterations - (skipped_steps(s.iterations, s.strength) if s.init_image and s.mask is None else 0)


def steps_of(s: Settings, models: DiffusionModels, guides, noise: Tensor, seed: int, *,
             init: Tensor | None = None, known: Tensor | None = None, mask: Tensor | None = None) -> Iterator[DiffusionStep]:
    """The sampler for settings `s`, seeded: the scheduler's and the re-noising's draws come from
    their own generator, so a run replays exactly."""
    generator = torch.Generator(device=noise.device).manual_seed(seed + 1)
    return sample(models.diffusion.unet, models.diffusion.scheduler(s.scheduler), guides, noise,
                  steps=s.iterations, guidance_scale=s.guidance_scale, tv_weight=s.tv_weight,
                  strength=s.strength if init is not None else 1.0, init=init, known=known, mask=mask,
                  generator=generator, dtype=_dtype(s, noise.device))


def generate_diffusion(s: Settings, models: DiffusionModels | None = None,
                       callback: Callable[[DiffusionStep], None] | None = None, resume: dict | None = None):
    """What `pipeline.generate` runs for image_model "diffusion". Returns a pipeline.Result."""
    from clipgan.runsetup import Result, build_guides

    if s.image_model != "diffusion":
        raise ClipganError(f"generate_diffusion draws with diffusion, not {s.image_model!r}")
    if resume is not None:
        raise ClipganError("diffusion runs cannot be resumed; run them again with the same seed for the same picture")
    if s.upscale is not None:
        raise ClipganError("--upscale refines with the VQGAN; it does not combine with --image-model diffusion")
    if s.early_stop:
        raise ClipganError("--early-stop ends an optimized run whose loss stalls; a diffusion run's steps are its "
                           "noise schedule (leave --early-stop out)")
    s, models, seed = _prepared(s, models)
    side = s.size[0]
    device = models.device
    guides = build_guides(s, models, contrast=contrast_schedule(s))
    init = known = mask = soft = picture = None
    if s.init_image:
        picture = load_rgb(s.init_image)
    if s.mask is not None:
        from clipgan.config import default_feather
        from clipgan.edit import feather, hard, load_mask

        if picture.size != (side, side):
            raise ClipganError(f"the picture {s.init_image} is {picture.width}x{picture.height}, but this diffusion "
                               f"model inpaints {side}x{side} pictures")
        m = load_mask(s.mask, picture.size).to(device)
        if not hard(m).any():
            raise ClipganError("the mask is all black: nothing to regenerate")
        s = s.replace(feather=s.feather if s.feather is not None else default_feather(picture.size))
        soft = feather(m, s.feather)
        known = to_tensor(picture, device=device) * 2 - 1
        mask = soft.expand(1, 3, side, side)
        picture = to_tensor(picture, device=device)
    elif picture is not None:
        init = to_tensor(picture, (side, side), device) * 2 - 1
    losses, last = [], None
    runs = [steps_of(s, models, guides, noise, seed, init=init, known=known, mask=mask)
            for noise in _noise(seed, side, device, s.candidates)]
    prefix = max(1, math.ceil(CANDIDATE_SHARE * denoising_steps(s)))
    if len(runs) > 1:  # the progress shows only the chosen run: say what the wait is
        warnings.warn(f"trying {len(runs)} starting noises for {prefix} steps each; the one CLIP likes best goes "
                      "on (--candidates 1: one run)", ClipganNotice)
    for last in best_of(runs, prefix):
        if soft is not None:  # frames and the result show the picture as it will be saved
            from clipgan.edit import composite

            last = replace(last, image=composite(last.image, picture, soft))
        losses.append(last.loss)
        if callback is not None:
            callback(last)
    return Result(to_pil(last.image), seed, s, losses, None)


# ---------------------------------------------------------------- morphs

def morph_frames(prompts: list[str], frames_per_transition: int, *, loop: bool = False,
                 models: DiffusionModels | None = None, callback: Callable[[DiffusionStep], None] | None = None,
                 **settings) -> Iterator:
    """animate.Frame's going from prompt to prompt, `animate.morph_frame_count` of them.

    Keyframe j is a plain guided run from the noise of seed + j (with loop, the last transition
    returns to keyframe 0's noise). A frame at blend w between keyframes j and j+1 starts from
    slerp(noise_j, noise_j+1, w) and is guided by prompt j at weight 1 - w and prompt j+1 at w.
    DDIM is deterministic and every frame uses the same cutouts, so frames close in w start close
    and end close: the video changes smoothly. `callback` sees every denoising step of every frame."""
    from clipgan.animate import Frame, _blend, slerp
    from clipgan.runsetup import build_guides

    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    if len(prompts) < 2:
        raise ClipganError("a morph needs at least two prompts")
    if frames_per_transition < 1:
        raise ClipganError(f"frames-per-transition must be at least 1, got {frames_per_transition}")
    base = settings.pop("settings", None) or Settings()
    s = base.replace(**settings, image_model="diffusion")
    s, models, seed = _prepared(s, models)
    side, device = s.size[0], models.device
    keys = prompts + prompts[:1] if loop else prompts
    contrast = contrast_schedule(s)
    guides = [build_guides(s.replace(prompts=[p]), models, contrast=contrast) for p in keys]
    noises = [_noise(seed + (j % len(prompts)), side, device)[0] for j in range(len(keys))]
    index = 0
    for j in range(len(keys) - 1):
        last_transition = j == len(keys) - 2
        for k in range(frames_per_transition + (1 if last_transition and not loop else 0)):
            w = k / frames_per_transition
            noise = slerp(noises[j], noises[j + 1], w)
            torch.manual_seed(seed)  # the same cutouts for every frame: only the blend moves
            last = None
            for last in steps_of(s, models, _blend(guides[j], guides[j + 1], w), noise, seed):
                if callback is not None:
                    callback(last)
            yield Frame(index, last.image, noise, seed, last.loss, (keys[j], keys[j + 1]),
                        j if k == 0 else (j + 1 if w == 1 else None), w if w < 1 else 0.0)
            index += 1


def mean_frame_difference(frames: list[Tensor]) -> float:
    """Mean absolute difference of neighbouring frames, in 0..255 units."""
    diffs = [(a.float() - b.float()).abs().mean().item() * 255 for a, b in zip(frames, frames[1:])]
    return sum(diffs) / len(diffs) if diffs else math.nan


def save_frames(frames: list[Tensor], folder: Path) -> list[Path]:
    from clipgan.io import save_image

    folder.mkdir(parents=True, exist_ok=True)
    return [save_image(to_pil(f), folder / f"{k:05d}.png") for k, f in enumerate(frames)]
