"""Editing an existing picture: inpainting, outpainting and hi-res refinement.

All three run the ordinary loop (`optimize.iterate`) from the encoded picture. Inpainting and
outpainting free only the latent cells under a mask and paste the result back over the
original through a feathered mask, so pixels away from the mask keep their exact values.

Masks: white (>= 0.5) = regenerate, black = keep.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable, Mapping, Union

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from clipgan.config import UPSCALE_STEPS, Settings, default_feather
from clipgan.cutouts import CutoutConfig, Cutouts
from clipgan.errors import ClipganError, brief
from clipgan.io import grey, open_image, rgb, to_pil, to_tensor
from clipgan.memory import check_memory
from clipgan.losses.terms import Guide
from clipgan.optimize import Step

FOCUS = 0.8  # share of cutouts centred on a masked pixel; the rest keep the whole picture in view
SIDES = ("left", "right", "top", "bottom")

ImageLike = Union[str, Path, Image.Image]
MaskLike = Union[str, Path, Image.Image, Tensor]


# ---------------------------------------------------------------- masks

def load_mask(path: ImageLike, size: tuple[int, int]) -> Tensor:
    """A mask image (any mode, 16-bit too) -> (1, 1, H, W) float in [0, 1]; white = regenerate.

    The mask must have the picture's size=(W, H): one of another size is refused rather than
    stretched, since a stretched mask silently frees pixels the user meant to keep."""
    image = path if isinstance(path, Image.Image) else open_image(path)
    if image.size != tuple(size):
        name = f"the mask {path}" if isinstance(path, (str, Path)) else "the mask"
        raise ClipganError(f"{name} is {image.width}x{image.height} but the picture is {size[0]}x{size[1]}; "
                           "give a mask of the picture's size")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")  # transparent pixels count as black: keep
        flat = Image.new("RGBA", image.size, (0, 0, 0, 255))
        image = Image.alpha_composite(flat, image)
    return to_tensor(grey(image))[:, :1]


def hard(mask: Tensor) -> Tensor:
    """Which pixels are masked (bool): the one threshold every function here uses."""
    return mask >= 0.5


def latent_mask(mask: Tensor, factor: int) -> Tensor:
    """(1, 1, H, W) pixel mask -> bool (1, 1, ceil(H/f), ceil(W/f)): a cell is free if any of its pixels is masked."""
    from clipgan.image_models.base import free_cells

    return free_cells(mask, factor)


def feather(mask: Tensor, radius_px: int) -> Tensor:
    """A soft copy of the mask for compositing: exactly 1 on masked pixels, exactly 0 outside
    the mask dilated by radius_px (a square of side 2r+1), smooth in between (dilate by r//2,
    then blur within the rest of r)."""
    m = hard(mask).float()
    if radius_px <= 0:
        return m
    import kornia

    grow = int(radius_px) // 2
    blur = int(radius_px) - grow  # >= 1
    grown = F.max_pool2d(m, 2 * grow + 1, stride=1, padding=grow) if grow else m
    # a finite (2b+1) kernel of positive weights: zero beyond its reach stays exactly zero
    soft = kornia.filters.gaussian_blur2d(grown, (2 * blur + 1, 2 * blur + 1), (blur / 2, blur / 2),
                                          border_type="replicate")
    return torch.maximum(soft.clamp(0, 1), m)


def composite(generated: Tensor, original: Tensor, soft_mask: Tensor) -> Tensor:
    """generated where soft_mask is 1, original where it is 0 (bit for bit), blended between."""
    blend = generated * soft_mask + original * (1 - soft_mask)
    return torch.where(soft_mask > 0, blend, original)


class MaskedCutouts(Cutouts):
    """Cutouts whose crops are mostly centred on masked pixels: CLIP looks where things change.

    Crop sizes, augmentations and noise are the parent's; only where the boxes sit differs.
    """

    def __init__(self, size: int, config: CutoutConfig, mask: Tensor, focus: float = FOCUS):
        super().__init__(size, config)
        ys, xs = torch.nonzero(hard(mask)[0, 0], as_tuple=True)
        if ys.numel() == 0:
            raise ClipganError("the mask is all black: nothing to regenerate")
        h, w = mask.shape[-2:]
        # pixel centres as fractions, so the points fit any image size handed in; boxes are drawn on the CPU
        self.points = torch.stack([(xs + 0.5) / w, (ys + 0.5) / h], 1).float().cpu()
        self.focus = focus

    @classmethod
    def like(cls, cutouts: Cutouts, mask: Tensor, focus: float = FOCUS) -> "MaskedCutouts":
        return cls(cutouts.size, cutouts.config, mask, focus)

    def boxes(self, height: int, width: int, device=None, n: int | None = None) -> Tensor:
        b = super().boxes(height, width, n=n).cpu()
        n, sides = b.shape[0], b[:, 3] - b[:, 1]
        pick = self.points[torch.randint(len(self.points), (n,))]
        on_mask = torch.rand(n) < self.focus
        x = (pick[:, 0] * width - sides / 2).round().clamp(min=0).minimum(width - sides)
        y = (pick[:, 1] * height - sides / 2).round().clamp(min=0).minimum(height - sides)
        b[:, 1] = torch.where(on_mask, x, b[:, 1])
        b[:, 2] = torch.where(on_mask, y, b[:, 2])
        b[:, 3], b[:, 4] = b[:, 1] + sides, b[:, 2] + sides
        return b.to(device=device)


# ---------------------------------------------------------------- shared run

def _settings(prompts, settings: dict) -> Settings:
    """Like generate(): `settings=` gives a base, other keywords override it."""
    if isinstance(prompts, str):
        prompts = [prompts]
    base = settings.pop("settings", None) or Settings()
    if prompts:
        settings["prompts"] = list(prompts)
    return base.replace(**settings)


def _feather_px(given: int | None, s: Settings, size: tuple[int, int]) -> int:
    """The seam width a run records: the argument, else the settings', else the picture's default."""
    if given is not None:
        return given
    return s.feather if s.feather is not None else default_feather(size)


def _as_image(image: ImageLike) -> Image.Image:
    return rgb(image if isinstance(image, Image.Image) else open_image(image))


def _pad_to(t: Tensor, factor: int, mode: str) -> Tensor:
    """Pad right/bottom up to a multiple of the VQGAN factor (cropped away afterwards)."""
    h, w = t.shape[-2:]
    ph, pw = -h % factor, -w % factor
    if not (ph or pw):
        return t
    return F.pad(t, (0, pw, 0, ph), mode=mode)


def _run(s: Settings, models, model, pixel_mask: Tensor | None, callback: Callable[[Step], None] | None,
         resume: dict | None = None, contrast: bool = False) -> tuple[Step, list[float]]:
    """The ordinary loop on `model`; with a mask, cutouts look at it (the model holds its cells).
    `resume` (a `resume_state(...)`) goes on after its step exactly as if the run had not stopped.
    `contrast`: whether the contrast CLIPs guide it (runsetup.build_guides)."""
    from clipgan.runsetup import build_guides, check_resume, run_loop

    if resume is not None:  # a state from a file: it must fit this run before anything loads from it
        check_resume(resume, model.z, s)
    guides = build_guides(s, models, contrast)
    if pixel_mask is not None:
        focused: dict[int, MaskedCutouts] = {}

        def refocus(gs):
            out = []
            for g in gs:  # one MaskedCutouts per perceptor's cutouts, reused across steps
                key = id(g.cutouts)
                if key not in focused:
                    focused[key] = MaskedCutouts.like(g.cutouts, pixel_mask)
                out.append(Guide(g.perceptor, focused[key], g.targets))
            return out

        guides = (lambda i, at=guides: refocus(at(i))) if callable(guides) else refocus(guides)
    return run_loop(s, models, model, guides, callback=callback, resume=resume)


def _prepare(prompts, settings: dict, models, what: str):
    """Settings, models and seed of an edit (`what` names it where the image model cannot start from a picture)."""
    from clipgan.runsetup import draw_seed, load_models, refuse_pictures

    s = _settings(prompts, settings)
    refuse_pictures(s, what)
    models = models or load_models(s)
    seed = s.seed if s.seed is not None else draw_seed()
    torch.manual_seed(seed)
    return s.replace(seed=seed), models


def _masked_edit(s: Settings, models, init: Tensor, base: Tensor, mask: Tensor, soft: Tensor, callback, resume=None,
                 lower: str = "--init-image"):
    """Run from `init` with only the masked cells free (models with cells), then paste the result
    over `base` through `soft`. All (1, C, H, W) at any size: the run pads to the image model's
    factor and crops. The callback's steps carry the pasted picture too (what a saved frame should
    show). Returns (composited image, last step, losses)."""
    from clipgan.runsetup import image_factor, model_from_image

    f = image_factor(s, models)
    h, w = init.shape[-2:]
    if not hard(mask).any():
        raise ClipganError("the mask is all black: nothing to regenerate")
    canvas, canvas_mask = _pad_to(init, f, "replicate"), _pad_to(mask, f, "constant")
    run = s.replace(size=(canvas.shape[-1], canvas.shape[-2]))
    check_memory(run, models, lower=lower)  # the picture's (or the grown canvas's) size, before any step
    model = model_from_image(run, models, canvas)
    if model.has_cells:
        model.hold_cells(model.cell_mask(canvas_mask))
    base, soft = base.to(init.device), soft.to(init.device)

    def pasted(image: Tensor) -> Tensor:
        return composite(image[..., :h, :w].float(), base, soft)

    # the callback sees the picture as it would be saved: cropped and pasted over the original
    show = None if callback is None else (lambda step: callback(replace(step, image=pasted(step.image))))
    last, losses = _run(run, models, model, canvas_mask, show, resume)
    return pasted(last.image), last, losses


# ---------------------------------------------------------------- inpainting

def inpaint(prompts, init_image: ImageLike, mask: MaskLike, *, models=None,
            callback: Callable[[Step], None] | None = None, feather_px: int | None = None,
            resume: dict | None = None, **settings):
    """Regenerate the masked part of `init_image` (white = regenerate) after the prompts.

    The picture is used at its own size (`size` is ignored and recorded as the picture's);
    sides that are not a multiple of the VQGAN factor are padded for the run and cropped after.
    Pixels outside the mask dilated by feather_px (default: the settings' `feather`, else
    `config.default_feather` of the picture) equal the input exactly. When picture and mask are files, the Result's settings name both, so
    `generate(settings=result.settings)` runs the same inpainting again.
    """
    from clipgan.runsetup import Result

    if init_image is None:
        raise ClipganError("a mask needs an --init-image to edit")
    picture = _as_image(init_image)
    s, models = _prepare(prompts, settings, models, "inpainting")
    files = isinstance(init_image, (str, Path))
    s = s.replace(size=picture.size, init_image=str(init_image) if files else s.init_image,
                  mask=str(mask) if files and isinstance(mask, (str, Path)) else None,
                  feather=_feather_px(feather_px, s, picture.size))
    m = mask if isinstance(mask, Tensor) else load_mask(mask, picture.size)
    if m.shape[-2:] != (picture.height, picture.width):
        raise ClipganError(f"mask is {m.shape[-1]}x{m.shape[-2]} but the picture is {picture.width}x{picture.height}")
    image = to_tensor(picture, device=models.device)
    m = m.float().to(models.device)
    out, last, losses = _masked_edit(s, models, image, image, m, feather(m, s.feather), callback, resume)
    return Result(to_pil(out), s.seed, s, losses, last.z)


# ---------------------------------------------------------------- outpainting

def parse_extend(text: str) -> dict[str, int]:
    """'left=128,right=64' -> {'left': 128, 'right': 64, 'top': 0, 'bottom': 0}; strict."""
    out = dict.fromkeys(SIDES, 0)
    seen = set()
    for part in text.split(","):
        key, eq, value = part.strip().partition("=")
        key, value = key.strip().lower(), value.strip()
        if not eq or not key:
            raise ClipganError(f"--extend wants side=pixels pairs like left=128,right=128, got {part.strip()!r}")
        if key not in out:
            raise ClipganError(f"--extend: unknown side {key!r}; use {', '.join(SIDES)}")
        if key in seen:
            raise ClipganError(f"--extend: {key} given twice")
        if not value.isdigit():
            raise ClipganError(f"--extend: {key} must be a whole number of pixels (0 or more), got {value!r}")
        seen.add(key)
        out[key] = int(value)
    return check_extend(out)


def check_extend(extend: Mapping[str, int]) -> dict[str, int]:
    unknown = sorted(set(extend) - set(SIDES))
    if unknown:
        raise ClipganError(f"extend: unknown side(s) {', '.join(unknown)}; use {', '.join(SIDES)}")
    out = {k: extend.get(k, 0) for k in SIDES}
    for k, v in out.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ClipganError(f"extend: {k} must be a whole number of pixels (0 or more), got {v!r}")
    if not any(out.values()):
        raise ClipganError("extend: give at least one side a positive number of pixels")
    return out


def grow(image: Tensor, extend: Mapping[str, int], fill: str = "replicate") -> tuple[Tensor, Tensor, Tensor]:
    """(1, 3, H, W) -> (starting canvas, replicated-border canvas, mask with 1 = new area).

    The run starts from the replicated border ("replicate") or uniform noise ("noise") in the
    new area; the replicated canvas is what the seam blends from, so it continues the border.
    """
    e = check_extend(extend)
    pad = (e["left"], e["right"], e["top"], e["bottom"])
    border = F.pad(image, pad, mode="replicate")
    mask = F.pad(torch.zeros_like(image[:, :1]), pad, value=1.0)
    if fill == "replicate":
        start = border
    elif fill == "noise":
        start = torch.where(mask > 0, torch.rand_like(border), border)
    else:
        raise ClipganError(f"unknown outpaint fill {fill!r}; use replicate or noise")
    return start, border, mask


def outpaint(image: ImageLike, prompts, *, extend: Mapping[str, int], models=None,
             callback: Callable[[Step], None] | None = None, feather_px: int | None = None,
             fill: str = "replicate", resume: dict | None = None, **settings):
    """Grow the canvas by `extend` (pixels per side) and fill the new area after the prompts.

    The result is exactly (left + W + right) x (top + H + bottom): no rounding is visible.
    When that is not a multiple of the VQGAN factor, the run pads right/bottom up to the next
    multiple and crops it off. The original pixels are kept exactly; the seam is feathered
    inward, over the first feather_px px of the new area (default: the settings' `feather`,
    else `config.default_feather` of the result).
    """
    from clipgan.runsetup import Result

    picture = _as_image(image)
    s, models = _prepare(prompts, settings, models, "outpainting")
    start, border, mask = grow(to_tensor(picture, device=models.device), extend, fill)
    size = (start.shape[-1], start.shape[-2])
    s = s.replace(size=size, feather=_feather_px(feather_px, s, size))
    soft = 1 - feather(1 - mask, s.feather)  # exactly 0 on the original, 1 deep in the new area
    out, last, losses = _masked_edit(s, models, start, border, mask, soft, callback, resume, lower="--extend")
    return Result(to_pil(out), s.seed, s, losses, last.z)


# ---------------------------------------------------------------- hi-res refinement

def upscale(image: ImageLike, prompts=(), *, factor: float = 2, steps: int = UPSCALE_STEPS, models=None,
            callback: Callable[[Step], None] | None = None, resume: dict | None = None, upscale_flag: str = "--factor",
            **settings):
    """Resize by `factor` (Lanczos), re-encode and refine `steps` steps at the larger size.

    Without prompts the picture itself is the (image) prompt, so the refinement keeps to it.
    The size is rounded to the VQGAN factor, with a notice.
    """
    from clipgan.runsetup import Result, fit_size, image_factor, model_from_image

    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not factor > 1:
        raise ClipganError(f"upscale factor must be more than 1, got {factor!r}")
    picture = _as_image(image)
    if not prompts and not settings.get("image_prompts") and isinstance(image, (str, Path)):
        settings["image_prompts"] = [str(image)]
    s, models = _prepare(prompts, dict(settings, iterations=steps), models, "upscaling")
    size = fit_size((round(picture.width * factor), round(picture.height * factor)), image_factor(s, models))
    check_memory(s, models, size=size, lower=upscale_flag)  # before the picture is enlarged
    s = s.replace(size=size)
    big = to_tensor(picture, size, models.device)  # Lanczos
    # the contrast CLIPs guide a refinement: on a laid-out picture they pull its shape sharper
    last, losses = _run(s, models, model_from_image(s, models, big), None, callback, resume, contrast=True)
    return Result(to_pil(last.image), s.seed, s, losses, last.z)


def generate_upscaled(prompts=(), *, upscale_factor: float | None = None, upscale_steps: int | None = None,
                      models=None, callback: Callable[[Step], None] | None = None, resume: dict | None = None,
                      **settings):
    """`generate` (or `inpaint`, with a mask), then `upscale` its picture with the same prompts
    and models. Factor and steps default to the settings' `upscale` (else 2) and `upscale_steps`.

    The callback sees the steps of both runs, each run counting its own from 0; a refinement
    step's snapshot also says what resuming there needs ("phase", "base"). The Result holds the
    upscaled picture and the settings of the generating run with the upscale added (so that
    `generate(settings=result.settings)` gives the same picture again). `resume` goes on from
    either run's step exactly as if the run had not stopped; its "losses" are the whole run's so far.
    """
    from clipgan.runsetup import Result, fit_size, image_factor, load_models, plain_run, refuse_pictures, run_size

    base = _settings(prompts, dict(settings))
    refuse_pictures(base, "upscaling")
    base = base.replace(upscale=upscale_factor if upscale_factor is not None else base.upscale or 2,
                        upscale_steps=base.upscale_steps if upscale_steps is None else upscale_steps)
    models = models or load_models(base)
    # both phases checked before the first step: the refinement at the larger size is the big one
    # the first run's picture: an inpainted one keeps its own size; else the run's (the model's own when none is given)
    first_size = open_image(base.init_image).size if base.mask else run_size(base, models)
    w, h = fit_size(first_size, image_factor(base, models))
    big_size = (round(w * base.upscale), round(h * base.upscale))
    check_memory(base, models, size=(w, h))
    check_memory(base, models, size=big_size, lower="--upscale")
    plain = base.replace(upscale=None)
    refine_resume = None
    if resume is not None and resume.get("phase") == REFINE:
        first, refine_resume = _refine_state(resume, base, first_size)
    elif plain.mask is not None:
        first = inpaint((), plain.init_image, plain.mask, models=models, callback=callback, settings=plain, resume=resume)
    else:
        first = plain_run(plain, models=models, callback=callback, resume=resume)
    info = {"settings": first.settings.to_dict(), "size": list(first.image.size), "steps": len(first.losses)}

    def refine_step(step: Step) -> None:
        snapshot = step.snapshot
        callback(replace(step, snapshot=lambda: {**snapshot(), "phase": REFINE, "base": info}))

    big = upscale(first.image, first.settings.prompts, factor=base.upscale, steps=base.upscale_steps, models=models,
                  callback=refine_step if callback else None, resume=refine_resume,
                  settings=first.settings.replace(init_image=None, mask=None), upscale_flag="--upscale")
    done = first.settings.replace(upscale=base.upscale, upscale_steps=base.upscale_steps)
    return Result(big.image, first.seed, done, first.losses + big.losses, big.z)


REFINE = "refine"  # a state taken during an upscaled run's refinement


def _refine_state(resume: dict, base: Settings, first_size: tuple[int, int]):
    """A refinement step's state -> (the first run's Result as far as the refinement needs it, the
    refinement's own state). The first run's picture is not kept: only its size matters (it must be
    this run's `first_size`, checked for memory already), the latent comes from the state."""
    from clipgan.runsetup import Result

    info, losses = resume.get("base"), resume.get("losses", [])
    if not isinstance(info, dict) or not isinstance(info.get("settings"), dict):
        raise ClipganError("the state's refinement has no settings of the run before it")
    size, steps = info.get("size"), info.get("steps")
    if size != list(first_size):
        raise ClipganError(f"the state's first picture is {brief(size)}, but this run's is {list(first_size)}")
    if isinstance(steps, bool) or not isinstance(steps, int) or not 0 <= steps <= len(losses):
        raise ClipganError(f"the state's first-run steps {brief(steps)} are not within its {len(losses)} losses")
    first_settings = Settings.from_dict(info["settings"]).replace(trust_checkpoint=base.trust_checkpoint)
    if first_settings.upscale is not None:
        raise ClipganError("the state's first run is itself upscaled")
    first = Result(Image.new("RGB", tuple(size)), first_settings.seed, first_settings, list(losses[:steps]), None)
    return first, {**resume, "losses": list(losses[steps:])}


def run_edit(s: Settings, *, models=None, callback: Callable[[Step], None] | None = None, resume: dict | None = None):
    """What `generate` runs for settings with a `mask` (inpaint) or an `upscale` (both: inpaint, then
    upscale); both resumable."""
    if s.upscale is not None:
        return generate_upscaled(models=models, callback=callback, resume=resume, settings=s)
    return inpaint((), s.init_image, s.mask, models=models, callback=callback, settings=s, resume=resume)
