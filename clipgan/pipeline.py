"""`generate(...)`: settings -> models -> targets -> the loop -> a Result. Seeds everything."""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from PIL import Image
from torch import Tensor

from clipgan.config import Settings
from clipgan.cutouts import CutoutConfig, Cutouts
from clipgan.errors import ClipganError, ClipganNotice, brief
from clipgan.io import load_rgb, to_pil, to_tensor
from clipgan.memory import check_memory
from clipgan.optimize import Guide, GuideSchedule, Step, Target, iterate
from clipgan.prompts import parse_prompts, parse_story, split_prompts


@dataclass
class Models:
    """Loaded models, reusable across calls (loading real ones takes a while)."""

    vqgan: torch.nn.Module
    perceptors: list
    device: torch.device


@dataclass
class Result:
    image: Image.Image
    seed: int
    settings: Settings  # as run: seed drawn, size rounded
    losses: list[float] = field(default_factory=list)  # total loss per step
    z: Tensor | None = None  # the final latent


def draw_seed() -> int:
    return int.from_bytes(os.urandom(4), "little")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ClipganError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ClipganError("CUDA was asked for but is not available here")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ClipganError(f"no such GPU: {name} ({torch.cuda.device_count()} available)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ClipganError("MPS was asked for but is not available here")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ClipganError(f"unsupported device {name!r}")
    return device


def cpu_has_native_bf16() -> bool:
    """Whether this CPU does bf16 arithmetic in hardware (AVX-512 BF16 or AMX); elsewhere torch
    emulates it, 8-24x slower than fp32 (docs/benchmarks.md). Linux only: False elsewhere."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for plain fp32."""
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return None
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def iterate_options(s: Settings, device: torch.device) -> dict:
    """The keyword arguments of `iterate` that come from settings, for every caller alike."""
    from clipgan.accel import resolve

    return dict(steps=s.iterations, lr=s.lr, optimizer=s.optimizer, init_weight=s.init_weight,
                tv_weight=s.tv_weight, dtype=resolve_dtype(s.precision, device), low_memory=s.low_memory,
                compile=resolve(s.compile, "compile", device, s.iterations),
                cuda_graphs=resolve(s.cuda_graphs, "cuda_graphs", device, s.iterations))


def load_models(settings: Settings) -> Models:
    """The settings' VQGAN and CLIP models on their device (Ctrl-C waits until they are loaded)."""
    from clipgan.interrupt import deferred_sigint

    with deferred_sigint():
        return _load_models(settings)


def _load_models(settings: Settings) -> Models:
    from clipgan.models import registry
    from clipgan.models.clip import load_clip
    from clipgan.models.vqgan import load_vqgan

    device = resolve_device(settings.device)
    if settings.vqgan_config:
        config, checkpoint = settings.vqgan_config, settings.vqgan_checkpoint
    else:
        from clipgan.models.checksums import verify_entry

        config, checkpoint = registry.resolve_vqgan(settings.vqgan)
        verify_entry(registry.get_entry(settings.vqgan), Path(config), Path(checkpoint))
    vqgan = load_vqgan(config, checkpoint, trust=settings.trust_checkpoint, device=device)
    perceptors = []
    for spec in settings.clip:
        files = registry.resolve_clip_alias(spec)  # a bundled alias names both files
        full = f"{files[0]}:{files[1]}" if files else spec
        perceptors.append(load_clip(full, device=device, trust=settings.trust_checkpoint))
    return Models(vqgan, perceptors, device)


def default_size(settings: Settings, models: Models) -> tuple[int, int]:
    """The size of a run that names none: the registry model's own (the bundled toy: 64), else
    GPU_SIZE on a GPU where a step at that size fits in free memory, else CPU_SIZE."""
    from clipgan.config import CPU_SIZE, GPU_SIZE
    from clipgan.memory import check_memory
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
    """The size a run uses: settings.size or default_size, fitted to the VQGAN's factor. With
    `box_of` (a source picture's W, H) that size is a box the source's aspect ratio fits in."""
    size = settings.size or default_size(settings, models)
    if box_of is not None:
        scale = min(size[0] / box_of[0], size[1] / box_of[1])
        size = max(1, round(box_of[0] * scale)), max(1, round(box_of[1] * scale))
    return fit_size(size, models.vqgan.factor)


def fit_size(size: tuple[int, int], factor: int) -> tuple[int, int]:
    """Round each side to the nearest multiple of the VQGAN's factor, with a notice."""
    fitted = tuple(max(round(s / factor), 0) * factor for s in size)
    if min(fitted) < factor:
        raise ClipganError(f"size {size[0]}x{size[1]} is too small for this VQGAN: at least {factor} px per side")
    if fitted != tuple(size):
        warnings.warn(f"size {size[0]}x{size[1]} rounded to {fitted[0]}x{fitted[1]} (a multiple of {factor})", ClipganNotice)
    return fitted


def initial_z(settings: Settings, models: Models) -> Tensor:
    vqgan, device = models.vqgan, models.device
    w, h = settings.size
    f = vqgan.factor
    with torch.no_grad():
        if settings.init_image:
            return vqgan.encode(to_tensor(load_rgb(settings.init_image), (w, h), device))
        if settings.init_noise == "codes":
            idx = torch.randint(vqgan.codebook.shape[0], (h // f, w // f), device=device)
            return vqgan.codebook[idx].movedim(-1, 0).unsqueeze(0)
        if settings.init_noise == "pixels":
            return vqgan.encode(torch.rand(1, 3, h, w, device=device))
        return vqgan.encode(_gradient_image(w, h, device))


def _gradient_image(w: int, h: int, device) -> Tensor:
    """A linear blend between two random colours along a random direction."""
    a, b = torch.rand(2, 3, 1, 1, device=device)
    angle = torch.rand(()) * 2 * torch.pi
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, h, device=device), torch.linspace(-1, 1, w, device=device), indexing="ij")
    t = (xs * torch.cos(angle) + ys * torch.sin(angle)).add(1.5).div(3).clamp(0, 1)
    return (a * (1 - t) + b * t).unsqueeze(0)


def build_guides(settings: Settings, models: Models) -> GuideSchedule:
    """Guides for every perceptor; a callable schedule when a prompt tells a story ("a ^ b")."""
    stories = [parse_story(p, settings.iterations, settings.change_prompt_every)
               for p in split_prompts(settings.prompts)]
    images = parse_prompts(settings.image_prompts)
    if not stories and not images and not settings.noise_prompt_seeds:
        raise ClipganError("give at least one text prompt, --image-prompt or --noise-prompt-seeds")
    loaded = [(p, load_rgb(p.text)) for p in images]
    texts = sorted({p.text for story in stories for _, p in story})
    _vocabulary_notice(settings, texts)
    guides, text_targets = [], []
    for perceptor in models.perceptors:
        cfg = CutoutConfig(cutn=settings.cutn, cut_pow=settings.cut_pow, augments=settings.augments,
                           method=settings.cut_method)
        cutouts = Cutouts(perceptor.input_size, cfg)
        embeds = dict(zip(texts, perceptor.encode_text(texts))) if texts else {}
        text_targets.append([[(start, Target(p.text, embeds[p.text][None], p.weight, p.stop)) for start, p in story]
                             for story in stories])
        image_targets = []
        for p, image in loaded:
            with torch.no_grad():
                crops = cutouts(to_tensor(image, settings.size, models.device))
                image_targets.append(Target(p.text, perceptor.encode_image(crops), p.weight, p.stop))
        guides.append(Guide(perceptor, cutouts, image_targets + noise_targets(settings, perceptor, models.device)))

    def at(step: int) -> list[Guide]:
        out = []
        for g, stories_g in zip(guides, text_targets):
            active = [t for t in (_active(story, step) for story in stories_g) if t is not None]
            out.append(Guide(g.perceptor, g.cutouts, active + g.targets))
        return out

    if all(len(story) == 1 and story[0][0] == 0 for story in stories):
        return at(0)
    return at


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
    from clipgan.models.registry import CLIP_ALIASES

    if not any(spec in CLIP_ALIASES for spec in settings.clip):
        return
    from clipgan.toyworld.render import known_words

    unknown = sorted({w for t in texts for w in re.findall(r"[a-z]+", t.lower())} - known_words())
    if unknown:
        warnings.warn(f"the bundled default models only know shapes and colours (not: {', '.join(unknown)}); "
                      "see README 'Models' for real ones", ClipganNotice)


def _active(story: list[tuple[int, Target]], step: int) -> Target | None:
    """The part of a story whose start is the latest one not after `step`."""
    current = None
    for start, target in story:
        if start <= step:
            current = target
    return current


def generate(
    prompts=(),
    *,
    models: Models | None = None,
    callback: Callable[[Step], None] | None = None,
    resume: dict | None = None,
    **settings,
) -> Result:
    """Text (and image) prompts -> picture. Keyword arguments are `Settings` fields.

    `callback(step)` sees every step (its decoded image included); pass `models` from
    `load_models` to reuse loaded models across calls; `resume` takes a `resume_state(...)`
    dict and finishes that run exactly as if it had never stopped.

    With `mask` (and `init_image`) the run inpaints; with `upscale` it ends with a refinement
    at the larger size: both are `clipgan.edit` functions, which cannot be resumed.
    """
    if isinstance(prompts, str):
        prompts = [prompts]
    base = settings.pop("settings", None) or Settings()
    if prompts:
        settings["prompts"] = list(prompts)
    s = base.replace(**settings)
    if s.image_model != "vqgan":  # [i17 hook] clipgan.run.generate sends diffusion runs to clipgan.diffuse
        raise ClipganError(f"pipeline.generate runs the VQGAN; use clipgan.generate for image model {s.image_model!r}")
    if s.mask is not None or s.upscale is not None:
        from clipgan.edit import run_edit

        return run_edit(s, models=models, callback=callback, resume=resume)
    models = models or load_models(s)
    seed = s.seed if s.seed is not None else draw_seed()
    s = s.replace(seed=seed, size=run_size(s, models))
    check_memory(s, models)  # refuse now rather than run out of memory mid-step
    torch.manual_seed(seed)
    guides = build_guides(s, models)
    z0 = z = initial_z(s, models)
    losses, start, opt_state, last = [], 0, None, None
    if resume is not None:  # same RNG draws as the first run up to here, then its saved state
        check_resume(resume, z0, s)
        z, opt_state, start = resume["z"].to(models.device), resume["optimizer"], resume["next_step"]
        losses = list(resume.get("losses", []))
        restore_rng(resume)
    steps = iterate(models.vqgan, guides, z, **iterate_options(s, models.device),
                    start=start, optimizer_state=opt_state, z_init=z0)
    for last in steps:
        losses.append(last.loss)
        if callback is not None:
            callback(last)
    if last is None:
        raise ClipganError("nothing left to do: that run had already finished")
    return Result(to_pil(last.image), seed, s, losses, last.z)


def check_resume(resume: dict, z0: Tensor, s: Settings) -> None:
    """A state (maybe edited, maybe from another run) fits this run: its latent has this run's
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
