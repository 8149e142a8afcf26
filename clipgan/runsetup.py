"""The one run setup: settings -> seed -> models -> image model -> targets -> the loop.

generate (pipeline), the edits (edit) and the animations (animate) all build their runs from
these functions, so a setting means the same in each. Nothing here parses argv or prints.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable

import torch
from PIL import Image
from torch import Tensor

from clipgan.config import EARLY_STOP_GAIN, CutMethod, CutSchedule, LrSchedule, Settings
from clipgan.cutouts import CutoutConfig, Cutouts
from clipgan.devices import cpu_has_native_bf16, resolve_device, resolve_dtype  # noqa: F401  (re-exported)
from clipgan.errors import ClipganError, ClipganNotice, brief
from clipgan.image_models import KINDS, FFTImage, ImageModel, PixelsImage, StrokesImage, VQGANImage
from clipgan.io import load_rgb, to_tensor
from clipgan.losses.terms import Guide, GuideSchedule, Target, standard_terms
from clipgan.memory import check_memory
from clipgan.optimize import Step, iterate, stalled
from clipgan.prompts import contrast_lanes, parse_prompts, parse_story, part_at, split_prompts
from clipgan.schedules import cutn_at, lr_factor


@dataclass
class Models:
    """Loaded models, reusable across calls (loading real ones takes a while)."""

    vqgan: torch.nn.Module | None  # None when the run's image model needs none
    perceptors: list
    device: torch.device
    contrast: list = field(default_factory=list)  # perceptors that pull only the contrast (contrast_clips)


@dataclass
class Result:
    image: Image.Image
    seed: int
    settings: Settings  # as run: seed drawn, size rounded
    losses: list[float] = field(default_factory=list)  # total loss per step
    z: Tensor | None = None  # the image model's final parameters (a VQGAN latent, a stroke table, ...)


def draw_seed() -> int:
    return int.from_bytes(os.urandom(4), "little")


# ---------------------------------------------------------------- models


def load_models(settings: Settings) -> Models:
    """The settings' models on their device (Ctrl-C waits until they are loaded): CLIP always,
    the VQGAN only for the vqgan image model."""
    from clipgan.interrupt import deferred_sigint

    with deferred_sigint():
        return _load_models(settings)


def _load_models(settings: Settings) -> Models:
    from clipgan.models import registry

    device = resolve_device(settings.device)
    vqgan = None
    if settings.image_model == "vqgan":
        from clipgan.models.vqgan import load_vqgan

        if settings.vqgan_config:
            config, checkpoint = settings.vqgan_config, settings.vqgan_checkpoint
        else:
            from clipgan.models.checksums import verify_entry

            config, checkpoint = registry.resolve_vqgan(settings.vqgan)
            verify_entry(registry.get_entry(settings.vqgan), Path(config), Path(checkpoint))
        vqgan = load_vqgan(config, checkpoint, trust=settings.trust_checkpoint, device=device)
    perceptors, contrast = load_perceptors(settings, device)
    return Models(vqgan, perceptors, device, contrast)


def load_perceptors(settings: Settings, device: torch.device) -> tuple[list, list]:
    """(the settings' CLIPs, the CLIPs that pull only the contrast) on `device`."""
    from clipgan.models.clip import load_named

    def load(specs):
        return [load_named(spec, device=device, trust=settings.trust_checkpoint) for spec in specs]

    return load(settings.clip), load(contrast_clips(settings))


def _needs_vqgan(settings: Settings, models: Models) -> None:
    if settings.image_model == "vqgan" and models.vqgan is None:
        raise ClipganError("these models were loaded for another image model (no VQGAN); load them for vqgan")


# ---------------------------------------------------------------- size and seed


def image_factor(settings: Settings, models: Models) -> int:
    """The picture's sides are multiples of this: the VQGAN's factor, else 1."""
    _needs_vqgan(settings, models)
    return models.vqgan.factor if settings.image_model == "vqgan" else 1


def default_size(settings: Settings, models: Models) -> tuple[int, int]:
    """The size of a run that names none: the registry model's own (the bundled toy: 64), else
    GPU_SIZE on a GPU where a step at that size fits in free memory, else CPU_SIZE."""
    from clipgan.config import CPU_SIZE, GPU_SIZE
    from clipgan.models import registry

    own = None if settings.vqgan_config else registry.get_entry(settings.vqgan).size
    if own:
        return own, own
    if models.device.type in ("cuda", "mps"):
        try:
            check_memory(settings.replace(size=(GPU_SIZE, GPU_SIZE)), models)
            return GPU_SIZE, GPU_SIZE
        except ClipganError:  # too big here: the smaller size, whose own check comes later
            pass
    return CPU_SIZE, CPU_SIZE


def run_size(settings: Settings, models: Models, box_of: tuple[int, int] | None = None) -> tuple[int, int]:
    """The size a run uses: settings.size or default_size, fitted to the image model's factor. With
    `box_of` (a source picture's W, H) that size is a box the source's aspect ratio fits in."""
    size = settings.size or default_size(settings, models)
    if box_of is not None:
        scale = min(size[0] / box_of[0], size[1] / box_of[1])
        size = max(1, round(box_of[0] * scale)), max(1, round(box_of[1] * scale))
    return fit_size(size, image_factor(settings, models))


def fit_size(size: tuple[int, int], factor: int) -> tuple[int, int]:
    """Round each side to the nearest multiple of the VQGAN's factor, with a notice."""
    fitted = tuple(max(round(s / factor), 0) * factor for s in size)
    if min(fitted) < factor:
        raise ClipganError(f"size {size[0]}x{size[1]} is too small for this VQGAN: at least {factor} px per side")
    if fitted != tuple(size):
        warnings.warn(f"size {size[0]}x{size[1]} rounded to {fitted[0]}x{fitted[1]} (a multiple of {factor})", ClipganNotice)
    return fitted


def prepare(settings: Settings, models: Models | None, box_of: tuple[int, int] | None = None):
    """Models loaded, seed drawn, size fitted, memory checked and torch seeded: (settings as run, models)."""
    models = models or load_models(settings)
    _needs_vqgan(settings, models)
    seed = settings.seed if settings.seed is not None else draw_seed()
    s = settings.replace(seed=seed, size=run_size(settings, models, box_of))
    check_memory(s, models)  # refuse now rather than run out of memory mid-step
    torch.manual_seed(seed)
    return s, models


def refuse_pictures(settings: Settings, what: str) -> None:
    """One line for runs that must start from a picture, with a model that cannot reproduce one."""
    kind = KINDS.get(settings.image_model)
    if kind is None:  # diffusion: its runs are clipgan.diffuse's, which make pictures, inpaintings and morphs
        raise ClipganError(f"{what} is not made with --image-model {settings.image_model}; use vqgan, pixels or fft")
    if not kind.encodes:
        raise ClipganError(f"{what} needs an image model that can start from a picture; "
                           f"--image-model {settings.image_model} cannot (use vqgan, pixels or fft)")


# ---------------------------------------------------------------- image models


def initial_model(settings: Settings, models: Models) -> ImageModel:
    """The seeded start of a run: the init image encoded, else the settings' noise."""
    size, device, kind = settings.size, models.device, settings.image_model
    if settings.init_image:
        return model_from_image(settings, models, to_tensor(load_rgb(settings.init_image), size, device))
    if kind == "vqgan":
        return VQGANImage.initial(models.vqgan, size, settings.init_noise, device)
    if kind == "pixels":
        return PixelsImage.initial(size, settings.init_noise, device)
    if kind == "fft":
        return FFTImage.initial(size, settings.init_noise, device)
    return StrokesImage.initial(size, settings.strokes, device)


def initial_z(settings: Settings, models: Models) -> Tensor:
    """The parameters of `initial_model` (for the VQGAN: its starting latent)."""
    return initial_model(settings, models).z.detach()


def model_from_image(settings: Settings, models: Models, image: Tensor) -> ImageModel:
    """An image model whose picture is `image` (1, 3, H, W) (strokes: a rough start)."""
    kind = settings.image_model
    if kind == "vqgan":
        return VQGANImage.from_image(models.vqgan, image)
    if kind == "pixels":
        return PixelsImage.from_image(image)
    if kind == "fft":
        return FFTImage.from_image(image)
    return StrokesImage.from_image(image, settings.strokes)


def model_of(settings: Settings, models: Models, z: Tensor) -> ImageModel:
    """An image model holding the parameters `z` (a keyframe's, a resumed run's)."""
    kind, size = settings.image_model, settings.size
    if kind == "vqgan":
        return VQGANImage(models.vqgan, z, size)
    if kind == "pixels":
        return PixelsImage(z, size)
    return (FFTImage if kind == "fft" else StrokesImage)(z, size)


def z_shape(settings: Settings, models: Models) -> tuple[int, ...]:
    """The shape of the image model's parameters at the settings' size (resumed carries must have it)."""
    (w, h), kind = settings.size, settings.image_model
    if kind == "vqgan":
        f = models.vqgan.factor
        return (1, models.vqgan.codebook.shape[1], h // f, w // f)
    if kind == "pixels":
        return (1, 3, h, w)
    if kind == "fft":
        return (1, 3, h, w // 2 + 1, 2)
    return (settings.strokes + 1, 13)


# ---------------------------------------------------------------- targets


def last_story_start(settings: Settings) -> int:
    """The step at which the last part of the prompts' stories ("a ^ b") comes in (0 without one)."""
    return max((start for p in split_prompts(settings.prompts)
                for start, _ in parse_story(p, settings.iterations, settings.change_prompt_every)), default=0)


def build_guides(settings: Settings, models: Models, contrast: bool | Callable[[int], bool] = False) -> GuideSchedule:
    """Guides for every perceptor, and for each of `models.contrast` one that pulls only the
    contrast (prompts.contrast_lanes, shared=False) at the steps where `contrast(step)` (True: at
    every step; False: none); a callable schedule when a prompt tells a story ("a ^ b") or
    `contrast` is one. Only the runs where they were measured to help pass `contrast`: an upscale's
    refinement (edit.upscale) and the first half of a diffusion run (clipgan.diffuse); from noise
    at one size they cost foreground colours (docs/benchmarks.md)."""
    stories = [parse_story(p, settings.iterations, settings.change_prompt_every)
               for p in split_prompts(settings.prompts)]
    words, only = contrast_words(settings), []
    if words and settings.contrast_weight:
        only = [lane for story in stories for lane in contrast_lanes(story, words, settings.contrast_weight, shared=False)]
        stories = [lane for story in stories for lane in contrast_lanes(story, words, settings.contrast_weight)]
    images = parse_prompts(settings.image_prompts)
    if not stories and not images and not settings.noise_prompt_seeds:
        raise ClipganError("give at least one text prompt, --image-prompt or --noise-prompt-seeds")
    loaded = [(p, load_rgb(p.text)) for p in images]
    texts = sorted({p.text for story in stories + only for _, p in story if p is not None})
    _vocabulary_notice(settings, texts)
    _cut_pow_notice(settings, models)
    cfg = CutoutConfig(cutn=settings.cutn, cut_pow=settings.cut_pow, augments=settings.augments,
                       method=settings.cut_method)

    def text_targets(perceptor, lanes):
        embeds = dict(zip(texts, perceptor.encode_text(texts))) if texts else {}
        return [[(start, None if p is None else Target(p.text, embeds[p.text][None], p.weight, p.stop))
                 for start, p in lane] for lane in lanes]

    full = []  # (guide with its fixed targets, its text lanes) per perceptor
    for perceptor in models.perceptors:
        cutouts = Cutouts(perceptor.input_size, cfg)
        image_targets = []
        for p, image in loaded:
            with torch.no_grad():
                crops = cutouts(to_tensor(image, settings.size, models.device))
                image_targets.append(Target(p.text, perceptor.encode_image(crops), p.weight, p.stop))
        targets = image_targets + noise_targets(settings, perceptor, models.device)
        full.append((Guide(perceptor, cutouts, targets), text_targets(perceptor, stories)))
    partners = models.contrast if only and contrast is not False and contrast_clips(settings) else []
    extra = [(Guide(perceptor, Cutouts(perceptor.input_size, cfg)), text_targets(perceptor, only)) for perceptor in partners]

    def at(step: int) -> list[Guide]:
        def active(g, lanes):
            return [t for t in (part_at(lane, step) for lane in lanes) if t is not None] + g.targets

        out = [Guide(g.perceptor, g.cutouts, active(g, lanes)) for g, lanes in full]
        if contrast(step) if callable(contrast) else contrast:  # a contrast guide with nothing to pull is left out
            out += [Guide(g.perceptor, g.cutouts, ts) for g, lanes in extra if (ts := active(g, lanes))]
        return out

    if not callable(contrast) and all(len(story) == 1 and story[0][0] == 0 for story in stories):
        return at(0)
    return at


def _cut_pow_notice(settings: Settings, models: Models) -> None:
    """A crop is at least CLIP's input side: on a picture no larger, every cutout is the whole picture."""
    if settings.cut_pow == Settings.cut_pow or settings.cut_method != CutMethod.crops.value or not settings.size:
        return
    side, clip_side = min(settings.size), min(p.input_size for p in models.perceptors)
    if side <= clip_side:
        warnings.warn(f"--cut-pow has no effect: the picture's side ({side} px) is no larger than CLIP's input "
                      f"({clip_side} px), so every cutout is the whole picture", ClipganNotice)


def contrast_words(settings: Settings) -> tuple[str, ...]:
    """The words prompts are contrasted over (prompts.contrast_lanes): the settings' own, or where they
    name none (None) and every CLIP is the bundled toy, its world's shapes: on the bench that draws
    the asked shape about half again as often (docs/benchmarks.md)."""
    if settings.contrast is not None:
        return settings.contrast
    from clipgan.models.registry import bundled_clip

    if not all(bundled_clip(spec) for spec in settings.clip):
        return ()
    from clipgan.toyworld.render import SHAPES

    return SHAPES


def contrast_clips(settings: Settings) -> tuple[str, ...]:
    """The CLIPs that pull only the contrast (Settings.contrast_clip): the settings' own, or where
    they name none (None) the partner that every CLIP shares (the bundled toy's toy-contrast:
    on the bench it draws the asked shape more often, docs/benchmarks.md); none where no contrast applies."""
    if not (settings.contrast_weight and contrast_words(settings)):
        return ()
    if settings.contrast_clip is not None:
        return settings.contrast_clip
    from clipgan.models.registry import CONTRAST_PARTNERS

    partners = {CONTRAST_PARTNERS.get(spec) for spec in settings.clip}
    return (partners.pop(),) if len(partners) == 1 and None not in partners else ()


def noise_targets(settings: Settings, perceptor, device) -> list[Target]:
    """One target per noise prompt seed: a random unit vector in CLIP's embedding space, the same
    for a seed on any machine (drawn on the CPU from its own generator)."""
    weights = settings.noise_prompt_weights
    if not settings.noise_prompt_seeds:
        return []
    dim = getattr(perceptor.model.visual, "output_dim", None) or perceptor.encode_text(["x"]).shape[-1]
    out = []
    for i, seed in enumerate(settings.noise_prompt_seeds):
        embed = torch.randn(1, dim, generator=torch.Generator().manual_seed(seed))
        weight = weights[i] if i < len(weights) else 1.0
        out.append(Target(f"noise {seed}", torch.nn.functional.normalize(embed, dim=-1).to(device), weight))
    return out


def _vocabulary_notice(settings: Settings, texts: list[str]) -> None:
    """The bundled toy CLIP knows only its shapes world: say so when a prompt leaves it."""
    from clipgan.models.registry import bundled_clip

    if not any(bundled_clip(spec) for spec in settings.clip):
        return
    from clipgan.toyworld.render import known_words

    unknown = sorted({w for t in texts for w in re.findall(r"[a-z]+", t.lower())} - known_words())
    if unknown:
        warnings.warn(f"the bundled default models only know shapes and colours (not: {', '.join(unknown)}); "
                      "see README 'Models' for real ones", ClipganNotice)


# ---------------------------------------------------------------- the loop


def iterate_options(s: Settings, device: torch.device) -> dict:
    """The keyword arguments of `iterate` that come from settings, for every caller alike."""
    from clipgan.accel import resolve

    return dict(steps=s.iterations, lr=s.lr, optimizer=s.optimizer, dtype=resolve_dtype(s.precision, device),
                low_memory=s.low_memory, compile=resolve(s.compile, "compile", device, s.iterations),
                cuda_graphs=resolve(s.cuda_graphs, "cuda_graphs", device, s.iterations))


def schedules(s: Settings, steps: int) -> tuple[Callable[[int], float] | None, Callable[[int], int] | None]:
    """The lr share and the cutouts per step of a run of `steps` (None: constant, as the loop's default)."""
    lr = None if s.lr_schedule == LrSchedule.constant.value else partial(lr_factor, s.lr_schedule, steps=steps)
    cutn = None if s.cut_schedule == CutSchedule.constant.value else partial(cutn_at, s.cut_schedule, s.cutn, steps=steps)
    return lr, cutn


def run_loop(s: Settings, models: Models, model: ImageModel, guides: GuideSchedule, *,
             callback: Callable[[Step], None] | None = None, resume: dict | None = None,
             steps: int | None = None) -> tuple[Step, list[float]]:
    """The loop on `model` with the settings' loss terms (prompts, init pull, TV); returns the last
    step and the loss of every step. `resume` (a `resume_state(...)`) goes on after its step
    exactly as if the run had not stopped: the model is loaded from it and the RNG put back.
    With `s.early_stop` the run ends once the loss stalls (not for a given number of `steps`:
    an animation's frames each run exactly theirs)."""
    start_z = model.z.detach().clone()  # what init_weight pulls towards: the run's first z
    losses, start, opt_state, last = [], 0, None, None
    if resume is not None:  # the same draws as the first run up to here, then its saved state
        model.load_state(resume)
        opt_state, start = resume["optimizer"], resume["next_step"]
        losses = list(resume.get("losses", []))
        restore_rng(resume)
    options = iterate_options(s, models.device)
    if steps is not None:
        options["steps"] = steps
    options["lr_schedule"], cutn = schedules(s, options["steps"])
    terms = standard_terms(guides, start_z, s.init_weight, s.tv_weight, cutn)
    window = s.early_stop if steps is None else 0
    settled = last_story_start(s) if window else 0  # a story's new part raises the loss: wait for the last one
    for last in iterate(model, terms, start=start, optimizer_state=opt_state, **options):
        losses.append(last.loss)
        if callback is not None:
            callback(last)
        if window and last.index + 1 < options["steps"] and stalled(losses[settled:], window, EARLY_STOP_GAIN):
            warnings.warn(f"stopped early at step {last.index + 1} of {options['steps']}: the loss fell less than "
                          f"{EARLY_STOP_GAIN:.0%} over the last {window} steps (--early-stop)", ClipganNotice)
            break
    if last is None:  # a state taken after the run's last step: its picture is the run's result
        with torch.no_grad():
            last = Step(start - 1, losses[-1] if losses else float("nan"), {}, model.z.detach().clone(), model.forward())
    return last, losses


def plain_run(s: Settings, *, models: Models | None = None, callback: Callable[[Step], None] | None = None,
              resume: dict | None = None) -> Result:
    """generate() without mask or upscale: a run from the settings' start (seeded noise or the init image)."""
    from clipgan.io import to_pil

    s, models = prepare(s, models)
    guides = build_guides(s, models)
    model = initial_model(s, models)
    if resume is not None:
        check_resume(resume, model.z, s)
    last, losses = run_loop(s, models, model, guides, callback=callback, resume=resume)
    return Result(to_pil(last.image), s.seed, s, losses, last.z)


# ---------------------------------------------------------------- resume


def check_resume(resume: dict, z0: Tensor, s: Settings) -> None:
    """A state (maybe edited, maybe from another run) fits this run: its parameters have this run's
    shape, its next step lies within the run, its optimizer state fits the optimizer."""
    from clipgan.optimize import make_optimizer

    z = resume.get("z")
    if not isinstance(z, Tensor) or tuple(z.shape) != tuple(z0.shape):
        got = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
        raise ClipganError(f"the state's latent is {got} but this run's is {tuple(z0.shape)}: a state of another model or size")
    step = resume.get("next_step")
    if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= s.iterations:
        raise ClipganError(f"the state's next step {brief(step)} is not within the run's {s.iterations} iterations")
    try:
        probe = make_optimizer(s.optimizer, [z0.detach().clone().requires_grad_(True)], s.lr)
        probe.load_state_dict(resume["optimizer"])
    except Exception as e:  # torch's own checks: another optimizer, other parameter groups
        raise ClipganError(f"the state's optimizer state does not fit {s.optimizer} ({type(e).__name__})") from None
    for values in probe.state.values():
        for name, value in values.items():
            if isinstance(value, Tensor) and value.numel() > 1 and value.shape != z0.shape:
                raise ClipganError(f"the state's optimizer {name} is {tuple(value.shape)}, not the latent's {tuple(z0.shape)}")
    rng = resume.get("rng")
    if not isinstance(rng, Tensor) or rng.dtype != torch.uint8 or rng.shape != torch.get_rng_state().shape:
        raise ClipganError("the state's random number generator state is not torch's")


def rng_state() -> dict:
    """The RNG states a resumed run must restore: take it right after a step is yielded."""
    state = {"rng": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    """Puts back the RNG states that `rng_state()` took."""
    torch.set_rng_state(state["rng"])
    if state.get("cuda_rng") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])


def resume_state(step: Step, settings: Settings, losses: list[float], rng: dict) -> dict:
    """Everything `generate(resume=...)` needs to go on after `step` (rng: `rng_state()` then)."""
    return {**step.snapshot(), **rng, "kind": "generate", "version": 1,
            "settings": settings.to_dict(), "losses": list(losses)}
