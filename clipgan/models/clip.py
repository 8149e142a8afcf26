"""CLIP perceptors from open_clip: `ARCH:WEIGHTS`, where ARCH is an open_clip model name or a
model-config JSON, and WEIGHTS a pretrained tag or a local file. `random` gives random weights
(for tests and benchmarks). Bundled aliases such as `toy` are resolved by the registry.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import Tensor, nn

from clipgan.errors import ClipganError
from clipgan.models.weights import TRUST_HINT, needs_trust

RANDOM = "random"
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


class Perceptor(nn.Module):
    """A frozen CLIP: images in [0, 1] at `input_size` and texts in, unit embeddings out."""

    def __init__(self, model: nn.Module, tokenizer, name: str):
        super().__init__()
        self.model, self.tokenizer, self.name = model, tokenizer, name
        cfg = getattr(model.visual, "preprocess_cfg", None) or {}
        mean = cfg.get("mean") or getattr(model.visual, "image_mean", None) or OPENAI_MEAN
        std = cfg.get("std") or getattr(model.visual, "image_std", None) or OPENAI_STD
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        size = model.visual.image_size
        self.input_size = int(size[0] if isinstance(size, (tuple, list)) else size)

    def encode_image(self, images: Tensor) -> Tensor:
        emb = self.model.encode_image((images - self.mean) / self.std)
        return nn.functional.normalize(emb.float(), dim=-1)

    @torch.no_grad()
    def encode_text(self, texts: list[str]) -> Tensor:
        tokens = self.tokenizer(texts).to(self.mean.device)
        return nn.functional.normalize(self.model.encode_text(tokens).float(), dim=-1)


def load_named(spec: str, *, device="cpu", trust: bool = False, root=None) -> Perceptor:
    """`load_clip` for a --clip spec that may be a bundled alias or an overlay on one (registry)."""
    from clipgan.models import registry
    from clipgan.models.overlay import apply_overlay

    overlay = registry.resolve_clip_overlay(spec, root)  # (base alias, file): an overlay's base is an alias
    files = registry.resolve_clip_alias(overlay[0] if overlay else spec, root)
    perceptor = load_clip(f"{files[0]}:{files[1]}" if files else spec, device=device, trust=trust)
    if overlay is not None:
        perceptor.model.load_state_dict(apply_overlay(perceptor.model.state_dict(), overlay[1], files[1]))
        perceptor.name = spec
    return perceptor


def split_spec(spec: str, known: set[str]) -> tuple[str, str]:
    """'ViT-B-32:openai' -> ('ViT-B-32', 'openai'); paths may hold colons of their own."""
    for i, ch in enumerate(spec):
        if ch != ":":
            continue
        arch = spec[:i]
        if arch in known or arch.lower().endswith(".json"):
            weights = spec[i + 1:]
            if not weights:
                break
            return arch, weights
    if spec in known or spec.lower().endswith(".json"):
        raise ClipganError(f"CLIP {spec!r} needs weights: use {spec}:TAG or {spec}:FILE")
    raise ClipganError(f"unknown CLIP model {spec!r}; use ARCH:WEIGHTS with an open_clip name or a config .json")


def load_clip(spec: str, *, device="cpu", trust: bool = False) -> Perceptor:
    """Build a frozen perceptor from an ARCH:WEIGHTS spec (see the module docstring)."""
    import open_clip

    arch, weights = split_spec(spec, set(open_clip.list_models()))
    is_config = arch.lower().endswith(".json")
    name = _register_config(arch) if is_config else arch
    pretrained = None if weights == RANDOM else weights
    if pretrained and not os.path.isfile(pretrained):
        tags = [] if is_config else open_clip.list_pretrained_tags_by_model(arch)
        if pretrained not in tags:
            known = f"; known tags include {', '.join(tags[:4])}" if tags else ""
            raise ClipganError(f"CLIP weights {weights!r} for {arch} are neither a file nor a known tag{known}")
    try:
        model = open_clip.create_model(name, pretrained=pretrained, weights_only=not trust, device="cpu")
    except Exception as e:  # open_clip and torch's unpickler fail in many ways on a bad file
        if not trust and needs_trust(e):
            raise ClipganError(f"CLIP weights {weights} hold more than tensors; {TRUST_HINT}") from None
        if "download" in str(e).lower():
            raise ClipganError(f"could not download CLIP weights {arch}:{weights} (no internet?); pass a local file") from None
        raise ClipganError(f"CLIP weights {weights} are unreadable or do not fit {arch} ({_first_line(e)})") from None
    model = model.float().eval().requires_grad_(False)
    tokenizer = open_clip.get_tokenizer(name)
    return Perceptor(model, tokenizer, spec).to(device)


def _register_config(path: str) -> str:
    """Registers an open_clip model-config JSON under its file stem, after checking its shape."""
    import open_clip

    p = Path(path)
    if not p.is_file():
        raise ClipganError(f"CLIP config not found: {p}")
    try:
        cfg = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ClipganError(f"CLIP config {p} is not valid JSON") from None
    if not isinstance(cfg, dict) or not {"embed_dim", "vision_cfg", "text_cfg"} <= set(cfg):
        raise ClipganError(f"{p} is not an open_clip model config (needs embed_dim, vision_cfg, text_cfg)")
    open_clip.add_model_config(p)
    return p.stem


def _first_line(e: Exception) -> str:
    lines = str(e).strip().splitlines()
    return lines[0][:200] if lines else type(e).__name__
