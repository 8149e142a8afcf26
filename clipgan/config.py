"""Every generation setting and its default, defined once for the CLI and the Python API.

No torch here: the CLI imports this module to build its help text.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
from dataclasses import dataclass, field
from enum import Enum

from clipgan.errors import ClipganError, brief
from clipgan.models.registry import DEFAULT_CLIP, DEFAULT_DIFFUSION, DEFAULT_VQGAN

DEFAULT_FPS = 24.0  # videos: progress, morph and zoom
UPSCALE_STEPS = 20  # refinement steps after upscaling
# The size of a run when none is given, for models without one of their own (the registry's
# `size`; the bundled toy: 64): the peers' 512 on a GPU whose free memory fits a step there,
# else 256 (a CPU step at 512 takes seconds, and 100 of them minutes).
GPU_SIZE, CPU_SIZE = 512, 256
# What draws the picture (clipgan.image_models): a VQGAN latent, raw pixels, a damped spectrum or
# Bezier strokes (CLIPDraw), all optimized by CLIP; or a denoising UNet that CLIP guides step by
# step (diffusion, clipgan.diffuse). One tuple: the CLI's choices, validation and the bench read it.
IMAGE_MODELS = ("vqgan", "pixels", "fft", "strokes", "diffusion")
DEFAULT_STROKES = 64
# The default --feather: this share of the picture's shorter side, at least 1 px (2 px at 64,
# 8 at 256, 16 at 512), so the blended seam stays a thin band whatever the size.
FEATHER_SHARE = 1 / 32


def default_feather(size: tuple[int, int]) -> int:
    """Seam width in px for a picture of `size` (W, H) when `feather` is not given."""
    return max(1, round(min(size) * FEATHER_SHARE))


class Optimizer(str, Enum):
    adam = "adam"
    adamw = "adamw"
    adagrad = "adagrad"
    adamax = "adamax"
    radam = "radam"
    rmsprop = "rmsprop"
    sgd = "sgd"


class Precision(str, Enum):
    auto = "auto"  # bf16 autocast where the hardware has fast bf16, else fp32
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


class Switch(str, Enum):
    auto = "auto"  # on where measured to pay (clipgan.accel.AUTO): CUDA graphs on CUDA for long runs
    on = "on"
    off = "off"


class InitNoise(str, Enum):
    codes = "codes"  # random codebook entries
    pixels = "pixels"  # uniform noise image through the encoder
    gradient = "gradient"  # random colour gradient through the encoder


class CutMethod(str, Enum):
    crops = "crops"  # random square crops, sized by cut_pow
    pooled = "pooled"  # the whole picture, average- and max-pooled to CLIP's size; the augments vary it


class LrSchedule(str, Enum):
    constant = "constant"
    cosine = "cosine"  # from lr at the first step down to LR_FLOOR x lr at the last (clipgan.schedules)


class CutSchedule(str, Enum):
    constant = "constant"
    ramp = "ramp"  # a quarter of cutn at the first step, rising to cutn by half the run (clipgan.schedules)


class Augment(str, Enum):
    flip = "flip"
    affine = "affine"
    perspective = "perspective"
    jitter = "jitter"
    erasing = "erasing"
    sharpness = "sharpness"
    noise = "noise"
    blur = "blur"


SCHEDULERS = ("ddim", "ddpm")  # diffusers schedulers for --image-model diffusion

DEFAULT_AUGMENTS = ("flip", "affine", "perspective", "jitter", "noise")


@dataclass
class Settings:
    prompts: list[str] = field(default_factory=list)  # "text:weight:stop"
    image_prompts: list[str] = field(default_factory=list)  # "path:weight:stop"
    noise_prompt_seeds: list[int] = field(default_factory=list)  # targets: seeded random CLIP embeddings
    noise_prompt_weights: list[float] = field(default_factory=list)  # one per seed; missing ones are 1
    iterations: int = 100
    image_model: str = "vqgan"  # what is optimized: one of IMAGE_MODELS
    strokes: int = DEFAULT_STROKES  # image_model strokes: how many curves
    change_prompt_every: int = 0  # "a ^ b" stories: steps per part (0: spread over the run)
    # a prompt naming one of these words is also pushed away from itself with each other word
    # (prompts.contrast_lanes); None: the CLIP's own (the bundled toy's shapes, else none); (): off
    contrast: tuple[str, ...] | None = None
    contrast_weight: float = 0.5  # the share of the prompt's weight the contrast takes (0: off)
    # CLIPs beside `clip` that pull only the contrast (the named word against the others, not the
    # text they share), in an upscale's refinement and a diffusion run's first half (runsetup.build_guides);
    # None: the CLIP's own partner (the bundled toy's toy-contrast), (): off
    contrast_clip: tuple[str, ...] | None = None
    # width, height, rounded to the VQGAN's factor; None: the model's own (the bundled toy: 64),
    # else GPU_SIZE where a step fits in the GPU's memory, else CPU_SIZE (pipeline.run_size)
    size: tuple[int, int] | None = None
    init_image: str | None = None
    init_weight: float = 0.0  # pulls z towards its starting point
    init_noise: str = InitNoise.codes.value
    mask: str | None = None  # with init_image: white = regenerate, black = keep exactly (inpainting)
    feather: int | None = None  # px the mask's seam blends over outside it; None: default_feather(size)
    tv_weight: float = 0.0  # total variation: smooths the decoded image
    upscale: float | None = None  # >1: after the run, enlarge by this and refine at the larger size
    upscale_steps: int = UPSCALE_STEPS
    cutn: int = 32
    cut_pow: float = 1.0  # >1 favours small crops
    cut_method: str = CutMethod.crops.value
    augments: tuple[str, ...] = DEFAULT_AUGMENTS
    optimizer: str = Optimizer.adam.value
    lr: float = 0.1
    lr_schedule: str = LrSchedule.constant.value  # the lr over each run's steps
    cut_schedule: str = CutSchedule.constant.value  # cutouts per step over each run's steps
    # stop once the loss has stalled: its mean over the last N steps not EARLY_STOP_GAIN below the
    # N before (after a story's last part starts); 0: always run every iteration
    early_stop: int = 0
    seed: int | None = None  # None: drawn at random and recorded
    device: str = "auto"  # auto|cpu|cuda|cuda:N|mps
    precision: str = Precision.auto.value
    low_memory: bool = False  # recompute decoder activations in the backward pass (less memory, ~30% slower)
    compile: str = Switch.auto.value  # torch.compile the decoder and CLIP towers; a failure falls back to eager
    cuda_graphs: str = Switch.auto.value  # also replay them as CUDA graphs (compile mode reduce-overhead)
    vqgan: str = DEFAULT_VQGAN  # registry name (`clipgan models`)
    vqgan_config: str | None = None  # taming yaml; overrides `vqgan` with vqgan_checkpoint
    vqgan_checkpoint: str | None = None
    clip: tuple[str, ...] = (DEFAULT_CLIP,)  # ARCH:WEIGHTS or a bundled alias; several make an ensemble
    # diffusion (image_model "diffusion"): `iterations` is the number of denoising steps
    diffusion: str = DEFAULT_DIFFUSION  # registry name (`clipgan models`) or a diffusers UNet2DModel folder
    scheduler: str = "ddim"  # ddim: deterministic, fewer steps; ddpm: the training chain, noisier
    guidance_scale: float = 24.0  # CLIP's total pull on the clean estimate (pixel-RMS units), spread over the steps
    # diffusion: starting noises tried; the one CLIP scores best after the first steps goes on (morphs
    # keep the seed's noise). 4: colour hits 88% -> 98% on the bundled models for 17% more time
    candidates: int = 4
    strength: float = 0.6  # with init_image: the share of the denoising run from it (1: from pure noise)
    # allow full unpickling of checkpoints (can run code): only ever from the run's own command line or
    # API call; `from_dict` (PNG settings, state files) never sets it
    trust_checkpoint: bool = False

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Settings":
        """Build from (possibly partial or hand-edited) JSON; unknown keys are an error.

        The data comes from a file (a PNG's settings, a state file), and a file never grants trust:
        its `trust_checkpoint` is ignored, so a shared picture cannot make a rerun unpickle code."""
        if not isinstance(data, dict):
            raise ClipganError("settings must be a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known, key=repr)
        if unknown:
            raise ClipganError(f"unknown setting(s): {', '.join(k if isinstance(k, str) and k.isprintable() else repr(k) for k in unknown)}")
        return cls().replace(**{k: v for k, v in data.items() if k != "trust_checkpoint"})

    def replace(self, **changes) -> "Settings":
        new = dataclasses.replace(self, **changes)
        new._normalize()
        new.validate()
        return new

    def _normalize(self) -> None:
        """Friendly spellings (a string for a list, an Enum, a path, one number for a square size) to
        the field's own type. Wrong types are left for `validate` to name."""
        for name in ("prompts", "image_prompts", "noise_prompt_seeds", "noise_prompt_weights"):
            value = getattr(self, name)
            setattr(self, name, [value] if isinstance(value, str) else _items(value, name))
        for name in ("init_image", "mask", "vqgan_config", "vqgan_checkpoint", "diffusion"):
            if isinstance(getattr(self, name), os.PathLike):
                setattr(self, name, os.fspath(getattr(self, name)))
        if isinstance(self.clip, str):
            self.clip = (self.clip,)
        if isinstance(self.contrast, str):  # "circle, square"; "none" (or "") turns it off
            words = tuple(w.strip() for w in self.contrast.split(",") if w.strip())
            self.contrast = () if [w.lower() for w in words] == ["none"] else words
        elif isinstance(self.contrast, (list, tuple)):
            self.contrast = tuple(w.strip() if isinstance(w, str) else w for w in self.contrast)
        if isinstance(self.contrast_clip, (str, list, tuple)):  # one spec or several; "none" (or "") turns it off
            clips = (self.contrast_clip,) if isinstance(self.contrast_clip, str) else tuple(self.contrast_clip)
            off = len(clips) == 1 and isinstance(clips[0], str) and clips[0].strip().lower() in ("", "none")
            self.contrast_clip = () if off else clips
        if isinstance(self.augments, str):
            self.augments = tuple(a for a in self.augments.split(",") if a)
        self.clip, self.augments = tuple(_items(self.clip, "clip")), tuple(_items(self.augments, "augments"))
        for name in ("optimizer", "precision", "init_noise", "compile", "cuda_graphs", "cut_method", "image_model",
                     "scheduler", "lr_schedule", "cut_schedule"):
            value = getattr(self, name)
            setattr(self, name, value.value if isinstance(value, Enum) else value)
        self.augments = tuple(a.value if isinstance(a, Enum) else a for a in self.augments)
        size = self.size
        if size is None:  # the model's own size, chosen when the models are known (pipeline.run_size)
            return
        if _is_int(size):
            size = (size, size)
        if isinstance(size, (str, bytes, dict)) or not hasattr(size, "__len__") or len(size) != 2 \
                or not all(_is_int(v) for v in size):
            raise ClipganError(f"size must be two whole numbers (width height), got {_short(size)}")
        self.size = (int(size[0]), int(size[1]))

    def validate(self) -> None:
        """Every field's type, finiteness and range: the one check for CLI, API, PNG settings and state files."""
        for name in ("low_memory", "trust_checkpoint"):  # the string "no" must not count as true
            if not isinstance(getattr(self, name), bool):
                raise ClipganError(f"{name} must be true or false, got {_short(getattr(self, name))}")
        for name in ("prompts", "image_prompts", "clip", "augments"):
            for item in getattr(self, name):
                if not isinstance(item, str):
                    raise ClipganError(f"{_flag(name)} must be strings, got {_short(item)}")
        for name in ("init_image", "mask", "vqgan_config", "vqgan_checkpoint"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                what = " (clipgan.edit.inpaint takes images and tensors)" if name == "mask" else ""
                raise ClipganError(f"{_flag(name)} must be a file path or URL, got {_short(value)}{what}")
        for name in ("vqgan", "device"):
            if not isinstance(getattr(self, name), str):
                raise ClipganError(f"{name} must be a string, got {_short(getattr(self, name))}")
        _check_int(self.iterations, "iterations", 1)
        _check_int(self.cutn, "cutn", 1)
        _check_int(self.strokes, "strokes", 1, MAX_STROKES)
        if not isinstance(self.image_model, str) or self.image_model not in IMAGE_MODELS:
            raise ClipganError(f"unknown image-model {_short(self.image_model)}; choose from {', '.join(IMAGE_MODELS)}")
        _check_int(self.change_prompt_every, "change-prompt-every", 0)
        if self.feather is not None:  # None: a band of 1/32 of the shorter side
            _check_int(self.feather, "feather", 0, MAX_FEATHER)
        _check_int(self.upscale_steps, "upscale-steps", 1)
        _check_int(self.early_stop, "early-stop", 0)
        if self.size is not None and min(self.size) < 1:
            raise ClipganError(f"size must be positive, got {self.size[0]}x{self.size[1]}")
        if self.size is not None and max(self.size) > MAX_SIDE:
            raise ClipganError(f"size must be at most {MAX_SIDE} px per side, got {self.size[0]}x{self.size[1]}")
        self._validate_contrast()
        for name in ("lr", "cut_pow", "init_weight", "tv_weight"):
            _check_number(getattr(self, name), _flag(name))
        if self.lr <= 0:
            raise ClipganError(f"lr must be positive, got {self.lr}")
        if self.cut_pow <= 0:
            raise ClipganError(f"cut-pow must be positive, got {self.cut_pow}")
        _check_choice(self.optimizer, Optimizer, "optimizer")
        _check_choice(self.precision, Precision, "precision")
        _check_choice(self.init_noise, InitNoise, "init-noise")
        _check_choice(self.compile, Switch, "compile")
        _check_choice(self.cuda_graphs, Switch, "cuda-graphs")
        _check_choice(self.cut_method, CutMethod, "cut-method")
        _check_choice(self.lr_schedule, LrSchedule, "lr-schedule")
        _check_choice(self.cut_schedule, CutSchedule, "cut-schedule")
        for seed in self.noise_prompt_seeds:
            _check_int(seed, "noise-prompt-seeds", 0, 2**63 - 1)
        for weight in self.noise_prompt_weights:
            _check_number(weight, "noise-prompt-weights")
        if len(self.noise_prompt_weights) > len(self.noise_prompt_seeds):
            raise ClipganError(f"{len(self.noise_prompt_weights)} noise prompt weights for "
                               f"{len(self.noise_prompt_seeds)} noise prompt seeds")
        for a in self.augments:
            _check_choice(a, Augment, "augment")
        if (self.vqgan_config is None) != (self.vqgan_checkpoint is None):
            raise ClipganError("--vqgan-config and --vqgan-checkpoint go together")
        if not self.clip:
            raise ClipganError("at least one --clip model is needed")
        if self.mask is not None and not self.init_image:
            raise ClipganError("--mask needs --init-image (the picture whose masked part is regenerated)")
        if self.upscale is not None:
            _check_number(self.upscale, "upscale")
            if not self.upscale > 1:
                raise ClipganError(f"upscale must be more than 1, got {self.upscale:g}")
            if self.size is not None and max(self.size) * self.upscale > MAX_SIDE:  # refused now, not after the first run
                raise ClipganError(f"upscale {self.upscale:g} of {self.size[0]}x{self.size[1]} is more than "
                                   f"{MAX_SIDE} px per side")
        if self.seed is not None:
            _check_int(self.seed, "seed", 0, 2**63 - 1)
        self._validate_diffusion()

    def _validate_contrast(self) -> None:
        _check_number(self.contrast_weight, "contrast-weight")
        if self.contrast_weight < 0:
            raise ClipganError(f"contrast-weight must be 0 or more, got {self.contrast_weight:g}")
        clips = self.contrast_clip
        if clips is not None and not (isinstance(clips, tuple) and all(isinstance(c, str) and c.strip() for c in clips)):
            raise ClipganError(f"contrast-clip must be CLIP specs (ARCH:WEIGHTS or a bundled alias), got {_short(clips)}")
        if self.contrast is None:
            return
        if not isinstance(self.contrast, tuple) or not all(isinstance(w, str) and w.strip() for w in self.contrast):
            raise ClipganError(f"contrast must be words separated by commas, got {_short(self.contrast)}")
        folded = [w.strip().lower() for w in self.contrast]
        if len(set(folded)) != len(folded):
            raise ClipganError(f"contrast names a word twice: {', '.join(self.contrast)}")
        if len(folded) == 1:
            raise ClipganError(f"contrast needs at least two words to set against each other, got {self.contrast[0]!r}")

    def _validate_diffusion(self) -> None:
        if not isinstance(self.scheduler, str) or self.scheduler not in SCHEDULERS:
            raise ClipganError(f"unknown scheduler {_short(self.scheduler)}; choose from {', '.join(SCHEDULERS)}")
        if not isinstance(self.diffusion, str) or not self.diffusion:
            raise ClipganError(f"diffusion must be a model name or folder, got {_short(self.diffusion)}")
        _check_int(self.candidates, "candidates", 1, MAX_CANDIDATES)
        for name in ("guidance_scale", "strength"):
            _check_number(getattr(self, name), _flag(name))
        if self.guidance_scale < 0:
            raise ClipganError(f"guidance-scale must be 0 or more, got {self.guidance_scale:g}")
        if not 0 < self.strength <= 1:
            raise ClipganError(f"strength must be more than 0 and at most 1, got {self.strength:g}")


def model_recipe(s: Settings) -> Settings:
    """`s` with its VQGAN's own recipe: a generate that names no size, upscale or starting picture
    draws at the registry entry's `coarse` size, then refines at the entry's size (coarse to fine;
    for the bundled toy it draws more of the asked shapes, docs/benchmarks.md). Stories keep one
    size: a refinement would replay every part. Other settings come back unchanged."""
    from clipgan.models.registry import VQGAN_MODELS

    entry = None if s.vqgan_config else VQGAN_MODELS.get(s.vqgan)
    if (entry is None or not entry.coarse or not entry.size or s.size is not None or s.upscale is not None
            or s.image_model != "vqgan" or s.init_image or s.mask or any("^" in p for p in s.prompts)):
        return s
    return s.replace(size=(entry.coarse, entry.coarse), upscale=entry.size / entry.coarse)


MAX_SIDE = 65536  # px per side: far beyond any step that fits in memory, and within what PIL and torch index
MAX_STROKES = 10000  # the rasterizer's memory grows with strokes x pixels
LR_FLOOR = 0.1  # lr_schedule cosine ends at this share of lr: late steps still move, gently
CUT_START = 0.25  # cut_schedule ramp starts at this share of cutn (at least one cutout)
EARLY_STOP_GAIN = 0.01  # the relative fall of the mean loss that counts as progress (early_stop)
MAX_CANDIDATES = 64  # diffusion starting noises: each is held in memory until the choice
MAX_FEATHER = 4096  # px: the blur kernel is 4x this wide


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _flag(name: str) -> str:
    return name.replace("_", "-")


def _short(value) -> str:
    return brief(value)


def _check_int(value, name: str, low: int, high: int | None = None) -> None:
    if not _is_int(value):
        raise ClipganError(f"{name} must be a whole number, got {_short(value)}")
    if value < low:
        raise ClipganError(f"{name} must be {'0 or more' if low == 0 else f'at least {low}'}, got {_short(value)}")
    if high is not None and value > high:
        raise ClipganError(f"{name} must be at most {high}, got {_short(value)}")


def _check_number(value, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ClipganError(f"{name} must be a number, got {_short(value)}")
    if not math.isfinite(value):
        raise ClipganError(f"{name} must be a finite number, got {value}")


def _items(value, name: str) -> list:
    if isinstance(value, (dict, set, frozenset, bytes)):  # iterable, but not a list of items
        raise ClipganError(f"{name} must be a list, got {type(value).__name__}")
    try:
        return list(value)
    except TypeError:  # a number where a list belongs (hand-edited JSON)
        raise ClipganError(f"{name} must be a list, got {type(value).__name__}") from None


def _check_choice(value: str, enum: type[Enum], name: str) -> None:
    choices = [e.value for e in enum]
    if not isinstance(value, str) or value not in choices:
        raise ClipganError(f"unknown {name} {_short(value)}; choose from {', '.join(choices)}")
