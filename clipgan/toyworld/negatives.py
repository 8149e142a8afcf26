"""Hard negatives from guidance itself: what a guided run draws against the CLIP being trained.

A guided run against a small CLIP ends at pictures the CLIP scores as the prompt but whose
shape is not there (colour blobs). Fed back into the CLIP's training as shapeless pictures
(no caption naming a shape is true of them), they teach it to refuse exactly the pictures its
gradient leads to; the next round's guidance must then find something closer to the shape.
The runs here are the guided loop in miniature: a batch of VQGAN latents from random codes,
Adam, the cutouts' augmentations at 64 px (where a crop is the whole picture), spherical loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from clipgan.toyworld import render as rw
from clipgan.toyworld.clip import normalize, spec_labels


def load_vqgan(folder):
    """The bundled-format toy VQGAN from folder (toy-vqgan.yaml + .ckpt), as the package loads it."""
    from pathlib import Path

    from clipgan.models.vqgan import load_vqgan as load

    folder = Path(folder)
    return load(folder / "toy-vqgan.yaml", folder / "toy-vqgan.ckpt").eval().requires_grad_(False)


def guided(clip, vqgan, specs: list[rw.Spec], steps: int, keep: tuple[int, ...], g: torch.Generator,
           lr: float = 0.1, copies: int = 4, size: int = 64, contrast: float = 0.0) -> list[torch.Tensor]:
    """Pictures (N, 3, 64, 64) of a batched guided run at each step count in keep (1-based).

    size 32 draws as the coarse stage of a coarse-to-fine run (CLIP sees it enlarged to 64 px);
    contrast C sets the other shapes against the asked one, weighted as a run's contrast lanes."""
    import open_clip

    from clipgan.cutouts import CutoutConfig, Cutouts
    from clipgan.image_models.vqgan import VQGANImage
    from clipgan.losses.functions import spherical_distance
    from clipgan.prompts import Prompt, contrast_lanes

    tok = open_clip.get_tokenizer("ViT-B-32")
    n, f = len(specs), vqgan.factor
    book = vqgan.codebook.detach()
    idx = torch.randint(book.shape[0], (n, size // f, size // f), generator=g)
    model = VQGANImage(vqgan, book[idx].movedim(-1, 1))  # a batch of latents: render and clamp work alike
    # each caption's lanes: the caption alone, or with contrast C it and the other shapes' captions
    lanes = [[lane[0][1] for lane in contrast_lanes([(0, Prompt(rw.caption(s)))], rw.SHAPES, contrast)]
             for s in specs]
    weights = torch.tensor([[p.weight for p in per] for per in lanes])  # (n, lanes)
    with torch.no_grad():
        target = F.normalize(clip.encode_text(tok([p.text for per in lanes for p in per])).float(), dim=-1)
    augs = Cutouts(64, CutoutConfig(cutn=copies))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    out = []
    was = clip.training
    clip.eval().requires_grad_(False)

    def at64(x):
        return x if size == 64 else F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False)

    for step in range(1, max(keep) + 1):
        image = at64(model())
        # Cutouts.forward crops one picture; at 64 px a crop is the whole picture, so only the augmentations
        crops = augs._augment(image.repeat(copies, 1, 1, 1))
        emb = F.normalize(clip.encode_image(normalize(crops.clamp(0, 1))).float(), dim=-1)
        # crop k*n+i belongs to prompt i: its distance to each of prompt i's lanes, weighted
        d = spherical_distance(emb, target).view(copies, n, n, weights.shape[1])
        loss = (d[:, torch.arange(n), torch.arange(n)] * weights).sum(-1).mean(0).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        model.project()
        if step in keep:
            with torch.no_grad():
                out.append(at64(model()))
    clip.requires_grad_(True).train(was)
    return out


class Pool:
    """Guided pictures gathered over training, refreshed every `every` steps against the current CLIP.

    Labels are the asked (fg, bg, shape), as spec_labels gives them.
    """

    def __init__(self, vqgan_dir, n: int, every: int, keep: tuple[int, ...], capacity: int = 1024,
                 recon: float = 0.0, size: int = 64, contrast: float = 0.0):
        self.vqgan = load_vqgan(vqgan_dir)
        self.n, self.every, self.keep, self.capacity, self.recon = n, every, keep, capacity, recon
        self.size, self.contrast = size, contrast
        self.images = torch.empty(0, 3, 64, 64)
        self.labels = torch.empty(0, 3, dtype=torch.long)

    def maybe_refresh(self, model, step: int, g: torch.Generator) -> bool:
        if step % self.every:
            return False
        specs = rw.sample_specs(self.n, g, rw.TRAIN_RANGES)
        shots = guided(model, self.vqgan, specs, max(self.keep), self.keep, g, size=self.size, contrast=self.contrast)
        lab = spec_labels(specs)  # what each was asked to be
        self.images = torch.cat([self.images, *shots])[-self.capacity:]
        self.labels = torch.cat([self.labels, *[lab] * len(shots)])[-self.capacity:]
        return True

    def sample(self, k: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        pick = torch.randint(len(self.images), (k,), generator=g)
        return self.images[pick], self.labels[pick]

    @staticmethod
    def partners(labels: torch.Tensor, g: torch.Generator) -> list[rw.Spec]:
        """Fresh specs of the asked colours and shapes, placed at random."""
        from dataclasses import replace

        specs = rw.sample_specs(len(labels), g, rw.TRAIN_RANGES)
        return [replace(s, fg=rw.COLOR_NAMES[f], bg=rw.COLOR_NAMES[b], shape=rw.SHAPES[sh])
                for s, (f, b, sh) in zip(specs, labels.tolist())]

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """A share of the renders through the VQGAN: its look is not what makes a picture wrong."""
        k = round(len(x) * self.recon)
        if k:
            x = x.clone()
            x[:k] = self.vqgan.decode(self.vqgan.encode(x[:k])).add(1).div(2).clamp(0, 1)
        return x
