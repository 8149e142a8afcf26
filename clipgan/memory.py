"""Will a step fit in memory? An estimate made before the run, and advice when it does not.

The bulk of a step's memory is the activations autograd keeps for the backward pass
(the model weights are already loaded, and z and its optimizer state are small). The
estimate counts them with a simple formula, in tensor elements per layer, read off the
loaded models; each term mirrors what the layer's backward needs:

- VQGAN decoder, per ResnetBlock (c_in -> c_out) at a resolution of n pixels:
  (4 c_in + 4 c_out) n  (GroupNorm input, swish input and sigmoid, conv input; twice);
  per AttnBlock: 6 c n + n^2  (norm, q, k, v, output projection; the softmax output);
  per upsample: c 4n  (the upsampled conv input); the output head: 4 c n, the image 3 n.
  So the decoder part grows with H*W (and with (H*W)^2 for the attention at the lowest
  resolution, small below ~1024 px for f16 models).
- With --low-memory each checkpointed block keeps only its input, c n, and the backward
  pass recomputes one block at a time: the largest block's activations come on top.
- Cutouts: (1 + 2.5 k) 3 s^2 per cutout with k augmentations (kornia keeps copies).
- CLIP, per cutout at input size s: a ViT with patch p, width d, L layers keeps
  3 s^2 + t d (2 + 10 L) with t = (s/p)^2 + 1 tokens (layer norms, qkv, attention output,
  MLP 4d twice); a ModifiedResNet keeps its conv and batch-norm inputs block by block.
  So the CLIP part grows with cutn. Other towers get a rough 64 x 3 s^2.
- Other image models (pixels, fft, strokes) count their own (`activation_elements`): a few
  copies of the picture; strokes keep each stroke's distance field per curve segment.
- Backward: the gradient of the largest activation and of its input live at once, 2x its size.

Elements cost 4 bytes in fp32; under bf16/fp16 autocast about 2.4 on average, because
norms and softmax keep fp32. Calibrated against the bytes `saved_tensors_hooks` sees on
the test models (tests/test_memory.py): within a few percent in fp32 on the decoder and
the ViT (about 1.2x over on a ModifiedResNet), within 0.85-1.2x on the decoder under bf16.

`check_memory` compares the estimate with the memory free on the device (CUDA: the
driver's free memory plus PyTorch's unused cache; CPU: MemAvailable in /proc/meminfo;
MPS: the recommended working set minus what is allocated). The environment variable
CLIPGAN_MEMORY_LIMIT replaces that figure: bytes, or a size like 512M or 2G; `off`
skips the check (an estimate can be wrong; the run may still fit).
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass

from clipgan.errors import ClipganError

ENV_VAR = "CLIPGAN_MEMORY_LIMIT"
FP32_BYTES = 4.0
AUTOCAST_BYTES = 2.4  # bf16/fp16 activations, with norms and softmax still in fp32
AUG_COPIES = 2.5  # kept copies of the crops per kornia augmentation
OTHER_TOWER = 64  # elements per input element for CLIP towers without a formula here
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


@dataclass(frozen=True)
class Estimate:
    """Bytes a step needs on top of the loaded models."""

    decoder: int  # activations the VQGAN decoder keeps for the backward pass
    cutouts: int  # the augmented crops, all perceptors
    clip: int  # activations the CLIP image towers keep
    backward: int  # transient in the backward pass: gradients, recomputed blocks

    @property
    def saved(self) -> int:
        """What autograd keeps between the forward and the backward pass."""
        return self.decoder + self.cutouts + self.clip

    @property
    def total(self) -> int:
        return self.saved + self.backward


def advice(low_memory: bool = False, lower: str = "--size") -> str:
    """What to change; `lower` names the setting that made the step big (--size, --upscale, --extend)."""
    first = "" if low_memory else "--low-memory, "
    return f"try {first}a smaller {lower} or fewer --cutn"


def format_bytes(n: float) -> str:
    if n < 1024:
        return f"{n:.0f} B"
    for unit in ("KiB", "MiB", "GiB"):
        n /= 1024
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}"


# -- the formula ---------------------------------------------------------------------


def _resnet_block(c_in: int, c_out: int, n: int) -> int:
    return (4 * c_in + 4 * c_out) * n


def _attn_block(c: int, n: int) -> int:
    return 6 * c * n + n * n


def decoder_elements(decoder, h: int, w: int) -> tuple[int, int, int, int]:
    """For a taming Decoder and a latent of h x w cells, in elements:
    (kept without checkpointing, kept with --low-memory, largest checkpointed block, largest tensor)."""
    n = h * w
    blocks: list[tuple[int, int]] = []  # (activations inside, input) per checkpointed block
    c = decoder.mid.block_1.in_channels
    blocks.append((2 * _resnet_block(c, c, n) + _attn_block(c, n), c * n))
    largest = max(c * n, n * n)
    for i_level in reversed(range(decoder.num_resolutions)):
        up = decoder.up[i_level]
        for i, block in enumerate(up.block):
            inside = _resnet_block(block.in_channels, block.out_channels, n)
            if len(up.attn) > 0:
                inside += _attn_block(block.out_channels, n)
                largest = max(largest, n * n)
            blocks.append((inside, block.in_channels * n))
            largest = max(largest, block.out_channels * n)
        if i_level != 0:
            c = up.block[-1].out_channels
            blocks.append((c * 4 * n if up.upsample.with_conv else 0, c * n))
            n *= 4
    c = decoder.conv_out.in_channels
    blocks.append((4 * c * n, c * n))
    image = 3 * n  # clamp_with_grad keeps the decoded image
    plain = sum(inside for inside, _ in blocks) + image
    checkpointed = sum(inp for _, inp in blocks) + image
    return plain, checkpointed, max(inside for inside, _ in blocks), largest


def vit_elements(visual, cutn: int) -> int:
    s, p = _pair(visual.image_size), _pair(visual.patch_size)
    t = (s[0] // p[0]) * (s[1] // p[1]) + 1
    d, layers = visual.transformer.width, visual.transformer.layers
    return cutn * (3 * s[0] * s[1] + t * d * (2 + 10 * layers))


def resnet_elements(visual, cutn: int) -> int:
    """open_clip's ModifiedResNet: stem, bottlenecks, attention pool."""
    s = _pair(visual.image_size)
    n = s[0] * s[1]
    half = visual.conv1.out_channels
    width = visual.conv3.out_channels
    n //= 4  # the stem convs run at half the input size
    total = 3 * 4 * n + 4 * half * n + 2 * width * n  # conv, bn and relu outputs; avgpool input
    n //= 4
    for layer in (visual.layer1, visual.layer2, visual.layer3, visual.layer4):
        for block in layer:
            c_in, planes, c_out = block.conv1.in_channels, block.conv1.out_channels, block.conv3.out_channels
            m = n // (block.stride ** 2)
            total += c_in * n + 4 * planes * n + (planes * n if block.stride > 1 else 0)
            total += planes * m + 2 * c_out * m
            if block.downsample is not None:
                total += c_in * m + c_out * m
            n = m
    c = visual.attnpool.c_proj.in_features
    return cutn * (total + 8 * (n + 1) * c)


def perceptor_elements(perceptor, cutn: int, augments: int) -> tuple[int, int]:
    """(cutouts, CLIP tower) elements for one perceptor."""
    visual = perceptor.model.visual
    s = perceptor.input_size
    cutouts = int(cutn * 3 * s * s * (1 + AUG_COPIES * augments))
    if hasattr(visual, "transformer") and hasattr(visual, "patch_size"):
        return cutouts, vit_elements(visual, cutn)
    if hasattr(visual, "attnpool") and hasattr(visual, "layer4"):
        return cutouts, resnet_elements(visual, cutn)
    return cutouts, cutn * OTHER_TOWER * 3 * s * s


def estimate(vqgan, perceptors, size: tuple[int, int], cutn: int, *, augments: int = 5,
             dtype=None, low_memory: bool = False, image_model=None, settings=None) -> Estimate:
    """Bytes one step needs at `size` (W, H) with `cutn` cutouts per perceptor (see the module docstring).

    `vqgan` is the VQGAN decoded; for other image models it is None and `image_model` (the class,
    clipgan.image_models) counts its own activations, from `settings` where it needs them."""
    w, h = size
    if vqgan is not None:
        f = vqgan.factor
        plain, checkpointed, block, largest = decoder_elements(vqgan.decoder, h // f, w // f)
    else:
        plain, checkpointed, block, largest = image_model.activation_elements(size, settings)
    cut = clip = 0
    for p in perceptors:
        c, v = perceptor_elements(p, cutn, augments)
        cut, clip = cut + c, clip + v
    per = FP32_BYTES if dtype is None else AUTOCAST_BYTES
    decoder = checkpointed if low_memory else plain
    backward = 2 * largest + (block if low_memory else 0)
    return Estimate(int(decoder * per), int(cut * FP32_BYTES), int(clip * per), int(backward * per))


def _pair(x) -> tuple[int, int]:
    return (int(x[0]), int(x[1])) if isinstance(x, (tuple, list)) else (int(x), int(x))


# -- the device ----------------------------------------------------------------------


def parse_size(text: str) -> int:
    """'2G' -> 2147483648; plain digits are bytes."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([KMGT]?)(?:i?B)?\s*", text, re.I)
    if not m:
        raise ClipganError(f"{ENV_VAR} must be bytes or a size like 512M or 2G (or 'off'), got {text!r}")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def available_bytes(device) -> int | None:
    """Memory free for a step on `device`, or None where it cannot be told."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int(free + cached)  # PyTorch reuses its own cache before asking the driver
    if device.type == "mps":
        try:
            return int(torch.mps.recommended_max_memory() - torch.mps.driver_allocated_memory())
        except (AttributeError, RuntimeError):
            return None
    return _mem_available()


def _mem_available() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None  # not Linux: no check rather than a guess


def check_memory(settings, models, available: int | None = None, *, size: tuple[int, int] | None = None,
                 lower: str = "--size") -> Estimate:
    """Refuses a run whose step would not fit: a ClipganError with the estimate and what to change.

    `available` (bytes) replaces the device's figure; so does CLIPGAN_MEMORY_LIMIT. `size` replaces
    the settings' size for a phase run at another size (an upscale's refinement, an outpaint's
    canvas), and `lower` names the setting that sets it, for the advice.
    """
    from clipgan.devices import resolve_dtype
    from clipgan.image_models import KINDS

    size = tuple(size or settings.size)
    kind = getattr(settings, "image_model", "vqgan")
    est = estimate(models.vqgan if kind == "vqgan" else None, models.perceptors + models.contrast, size, settings.cutn,
                   augments=len(settings.augments), dtype=resolve_dtype(settings.precision, models.device),
                   low_memory=settings.low_memory, image_model=KINDS[kind], settings=settings)
    where = f"on {models.device}"
    if available is None:
        limit = os.environ.get(ENV_VAR, "").strip()
        if limit.lower() == "off":
            return est
        if limit:
            available, where = parse_size(limit), f"under {ENV_VAR}={limit}"
        else:
            available = available_bytes(models.device)
    if available is not None and est.total > available:
        w, h = size
        raise ClipganError(
            f"a step at {w}x{h} with {settings.cutn} cutouts needs about {format_bytes(est.total)}, "
            f"but only {format_bytes(available)} is free {where}; {advice(settings.low_memory, lower)}")
    return est


def out_of_memory_message(e: BaseException) -> str | None:
    """The one-line advice for an out-of-memory error (CUDA, MPS or CPU), None for other errors."""
    torch = sys.modules.get("torch")  # no torch loaded: no torch error to recognise
    oom = (MemoryError,) + ((torch.OutOfMemoryError,) if torch is not None else ())
    text = str(e).strip()
    if not isinstance(e, oom) and not (
            isinstance(e, RuntimeError) and re.search(r"out of memory|can't allocate memory|not enough memory", text, re.I)):
        return None
    text = re.sub(r"^\[enforce fail[^\]]*\][^.]*\.\s*", "", text)  # torch's C++ assertion prefix
    lines = text.splitlines()
    first = " ".join(re.split(r"(?<=\.)\s+", lines[0])[:2])[:160] if lines else type(e).__name__
    return f"out of memory ({first.rstrip('.')}); {advice()}"

