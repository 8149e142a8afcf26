"""How well pictures match prompts, as CLIP sees them: `score(images, prompts)`.

A score is the cosine of the unit embeddings of a picture and a prompt. The picture is
seen whole, resized (squashed, Lanczos) to the perceptor's input size; with `crops=True` the
score is averaged with four corner crops and a centre crop, each 3/4 of the shorter side,
which is steadier for pictures with detail. With several perceptors (an ensemble) scores are
averaged over them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence, Union

import torch
from PIL import Image

from clipgan.config import Settings
from clipgan.errors import ClipganError
from clipgan.io import open_image, rgb, to_tensor

CROP_SHARE = 0.75  # side of the corner/centre crops, as a share of the shorter side


@dataclass(frozen=True)
class Score:
    image: str
    prompt: str
    score: float

    def to_dict(self) -> dict:
        return asdict(self)


def load_perceptors(clip: Sequence[str] = Settings().clip, *, device: str = Settings.device,
                    trust: bool = False) -> list:
    """The CLIP models named like generate's --clip (bundled aliases resolved), on `device`."""
    from clipgan.models.clip import load_named
    from clipgan.pipeline import resolve_device

    if isinstance(clip, str):
        clip = [clip]
    if not clip:
        raise ClipganError("at least one --clip model is needed")
    where = resolve_device(device)
    return [load_named(spec, device=where, trust=trust) for spec in clip]


def views(image: Image.Image, size: int, crops: bool = False) -> torch.Tensor:
    """(n, 3, size, size): the whole picture, then (with crops) centre and corner crops."""
    image = rgb(image)
    out = [to_tensor(image, (size, size))]
    if crops:
        w, h = image.size
        side = max(1, round(min(w, h) * CROP_SHARE))
        corners = [((w - side) // 2, (h - side) // 2), (0, 0), (w - side, 0), (0, h - side), (w - side, h - side)]
        out += [to_tensor(image.crop((x, y, x + side, y + side)), (size, size)) for x, y in corners]
    return torch.cat(out)


@torch.no_grad()
def score(images: Sequence[Union[str, Path, Image.Image]], prompts: Sequence[str], *, perceptors=None,
          clip: Sequence[str] = Settings().clip, device: str = Settings.device, crops: bool = False,
          trust: bool = False) -> list[Score]:
    """Every image against every prompt, best first. Images are paths or PIL images (named
    image-0, image-1, ... in the result); prompts are taken literally (no ':weight')."""
    if isinstance(prompts, str):
        prompts = [prompts]
    prompts = list(prompts)
    if not prompts:
        raise ClipganError("give at least one --prompt")
    if not images:
        raise ClipganError("give at least one image")
    names = [str(im) if isinstance(im, (str, Path)) else f"image-{i}" for i, im in enumerate(images)]
    pictures = [im if isinstance(im, Image.Image) else open_image(im) for im in images]  # all checked before loading models
    perceptors = perceptors or load_perceptors(clip, device=device, trust=trust)
    total = torch.zeros(len(pictures), len(prompts))
    for p in perceptors:
        device_p = p.mean.device
        texts = p.encode_text(prompts).cpu()  # (P, D)
        for i, picture in enumerate(pictures):
            embeds = p.encode_image(views(picture, p.input_size, crops).to(device_p)).cpu()  # (V, D)
            total[i] += (embeds @ texts.T).mean(0)
    total /= len(perceptors)
    rows = [Score(names[i], prompts[j], float(total[i, j])) for i in range(len(names)) for j in range(len(prompts))]
    return sorted(rows, key=lambda r: -r.score)


def table(rows: Sequence[Score]) -> str:
    """A plain text table: score, image, prompt."""
    width = max([len("image")] + [len(r.image) for r in rows])
    lines = [f"{'score':>7}  {'image':<{width}}  prompt"]
    lines += [f"{r.score:7.4f}  {r.image:<{width}}  {r.prompt}" for r in rows]
    return "\n".join(lines)
