"""Every generation setting and its default, defined once for the CLI and the Python API.

No torch here: the CLI imports this module to build its help text.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from enum import Enum

from clipgan.errors import ClipganError
from clipgan.models.registry import DEFAULT_CLIP, DEFAULT_VQGAN

DEFAULT_FPS = 24.0  # videos: progress, morph and zoom
UPSCALE_STEPS = 20  # refinement steps after upscaling
# The size of a run when none is given, for models without one of their own (the registry's
# `size`; the bundled toy: 64): the peers' 512 on a GPU whose free memory fits a step there,
# else 256 (a CPU step at 512 takes seconds, and 100 of them minutes).
GPU_SIZE, CPU_SIZE = 512, 256
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


class InitNoise(str, Enum):
    codes = "codes"  # random codebook entries
    pixels = "pixels"  # uniform noise image through the encoder
    gradient = "gradient"  # random colour gradient through the encoder


class Augment(str, Enum):
    flip = "flip"
    affine = "affine"
    perspective = "perspective"
    jitter = "jitter"
    erasing = "erasing"
    sharpness = "sharpness"
    noise = "noise"


DEFAULT_AUGMENTS = ("flip", "affine", "perspective", "jitter", "noise")


@dataclass
class Settings:
    prompts: list[str] = field(default_factory=list)  # "text:weight:stop"
    image_prompts: list[str] = field(default_factory=list)  # "path:weight:stop"
    iterations: int = 100
    change_prompt_every: int = 0  # "a ^ b" stories: steps per part (0: spread over the run)
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
    augments: tuple[str, ...] = DEFAULT_AUGMENTS
    optimizer: str = Optimizer.adam.value
    lr: float = 0.1
    seed: int | None = None  # None: drawn at random and recorded
    device: str = "auto"  # auto|cpu|cuda|cuda:N|mps
    precision: str = Precision.auto.value
    low_memory: bool = False  # recompute decoder activations in the backward pass (less memory, ~30% slower)
    vqgan: str = DEFAULT_VQGAN  # registry name (`clipgan models`)
    vqgan_config: str | None = None  # taming yaml; overrides `vqgan` with vqgan_checkpoint
    vqgan_checkpoint: str | None = None
    clip: tuple[str, ...] = (DEFAULT_CLIP,)  # ARCH:WEIGHTS or a bundled alias; several make an ensemble
    trust_checkpoint: bool = False  # allow full unpickling of checkpoints

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Settings":
        """Build from (possibly partial or hand-edited) JSON; unknown keys are an error."""
        if not isinstance(data, dict):
            raise ClipganError("settings must be a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ClipganError(f"unknown setting(s): {', '.join(k if k.isprintable() else repr(k) for k in unknown)}")
        return cls().replace(**data)

    def replace(self, **changes) -> "Settings":
        new = dataclasses.replace(self, **changes)
        new._normalize()
        new.validate()
        return new

    def _normalize(self) -> None:
        for name in ("prompts", "image_prompts"):
            value = getattr(self, name)
            setattr(self, name, [value] if isinstance(value, str) else _items(value, name))
        if isinstance(self.mask, os.PathLike):
            self.mask = os.fspath(self.mask)
        if isinstance(self.clip, str):
            self.clip = (self.clip,)
        if isinstance(self.augments, str):
            self.augments = tuple(a for a in self.augments.split(",") if a)
        self.clip, self.augments = tuple(_items(self.clip, "clip")), tuple(_items(self.augments, "augments"))
        for name in ("optimizer", "precision", "init_noise"):
            value = getattr(self, name)
            setattr(self, name, value.value if isinstance(value, Enum) else value)
        self.augments = tuple(a.value if isinstance(a, Enum) else a for a in self.augments)
        if self.size is not None:
            self.size = _pair(self.size)

    def validate(self) -> None:
        _check_type(self.iterations, int, "iterations")
        _check_type(self.cutn, int, "cutn")
        _check_type(self.change_prompt_every, int, "change-prompt-every")
        if self.change_prompt_every < 0:
            raise ClipganError(f"change-prompt-every must be 0 or more, got {self.change_prompt_every}")
        if self.iterations < 1:
            raise ClipganError(f"iterations must be at least 1, got {self.iterations}")
        if self.cutn < 1:
            raise ClipganError(f"cutn must be at least 1, got {self.cutn}")
        if self.size is not None and min(self.size) < 1:
            raise ClipganError(f"size must be positive, got {self.size[0]}x{self.size[1]}")
        for name in ("lr", "cut_pow", "init_weight", "tv_weight"):
            _check_type(getattr(self, name), (int, float), name)
        if self.lr <= 0:
            raise ClipganError(f"lr must be positive, got {self.lr}")
        if self.cut_pow <= 0:
            raise ClipganError(f"cut-pow must be positive, got {self.cut_pow}")
        _check_choice(self.optimizer, Optimizer, "optimizer")
        _check_choice(self.precision, Precision, "precision")
        _check_choice(self.init_noise, InitNoise, "init-noise")
        for a in self.augments:
            _check_choice(a, Augment, "augment")
        if (self.vqgan_config is None) != (self.vqgan_checkpoint is None):
            raise ClipganError("--vqgan-config and --vqgan-checkpoint go together")
        if not self.clip:
            raise ClipganError("at least one --clip model is needed")
        if self.mask is not None and not isinstance(self.mask, str):
            raise ClipganError("mask must be a file path or URL (clipgan.edit.inpaint takes images and tensors)")
        if self.mask is not None and not self.init_image:
            raise ClipganError("--mask needs --init-image (the picture whose masked part is regenerated)")
        if self.feather is not None:
            _check_type(self.feather, int, "feather")
            if self.feather < 0:
                raise ClipganError(f"feather must be 0 or more, got {self.feather}")
        if self.upscale is not None:
            _check_type(self.upscale, (int, float), "upscale")
            if not (self.upscale > 1 and math.isfinite(self.upscale)):
                raise ClipganError(f"upscale must be more than 1, got {self.upscale:g}")
        _check_type(self.upscale_steps, int, "upscale-steps")
        if self.upscale_steps < 1:
            raise ClipganError(f"upscale-steps must be at least 1, got {self.upscale_steps}")
        if self.seed is not None:
            _check_type(self.seed, int, "seed")
            if not 0 <= self.seed < 2**63:
                raise ClipganError(f"seed must be between 0 and 2**63-1, got {self.seed}")


def _pair(size) -> tuple[int, int]:
    if isinstance(size, int):
        size = (size, size)
    try:
        return (int(size[0]), int(size[1]))
    except (TypeError, ValueError, LookupError, OverflowError):
        raise ClipganError(f"size must be two integers (width height), got {size!r}") from None


def _items(value, name: str) -> list:
    try:
        return list(value)
    except TypeError:  # a number where a list belongs (hand-edited JSON)
        raise ClipganError(f"{name} must be a list, got {type(value).__name__}") from None


def _check_type(value, types, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, types):
        raise ClipganError(f"{name} must be a number, got {value!r}")


def _check_choice(value: str, enum: type[Enum], name: str) -> None:
    choices = [e.value for e in enum]
    if value not in choices:
        raise ClipganError(f"unknown {name} {value!r}; choose from {', '.join(choices)}")
