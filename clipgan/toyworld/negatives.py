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


def _pull(clip, specs: list[rw.Spec], contrast: float, shared: bool = True):
    """loss(crops) of each caption's lanes for `clip`, weighted as a run weights them (runsetup's
    contrast lanes); shared False: only the contrast, as a partner CLIP pulls it."""
    import open_clip

    from clipgan.losses.functions import spherical_distance
    from clipgan.prompts import Prompt, contrast_lanes

    lanes = [[lane[0][1] for lane in contrast_lanes([(0, Prompt(rw.caption(s)))], rw.SHAPES, contrast, shared)]
             for s in specs]
    n = len(specs)
    weights = torch.tensor([[p.weight for p in per] for per in lanes])  # (n, lanes)
    with torch.no_grad():
        tok = open_clip.get_tokenizer("ViT-B-32")
        target = F.normalize(clip.encode_text(tok([p.text for per in lanes for p in per])).float(), dim=-1)

    def loss(crops: torch.Tensor) -> torch.Tensor:
        emb = F.normalize(clip.encode_image(normalize(crops.clamp(0, 1))).float(), dim=-1)
        # crop k*n+i belongs to prompt i: its distance to each of prompt i's lanes, weighted
        d = spherical_distance(emb, target).view(-1, n, n, weights.shape[1])
        return (d[:, torch.arange(n), torch.arange(n)] * weights).sum(-1).mean(0).sum()

    return loss


def _at64(x: torch.Tensor) -> torch.Tensor:
    return x if x.shape[-1] == 64 else F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False)


def _optimize(model, pulls, steps: int, lr: float, copies: int, keep: tuple[int, ...] = ()) -> list[torch.Tensor]:
    from clipgan.cutouts import CutoutConfig, Cutouts

    augs = Cutouts(64, CutoutConfig(cutn=copies))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    out = []
    for step in range(1, steps + 1):
        # Cutouts.forward crops one picture; at 64 px a crop is the whole picture, so only the augmentations
        crops = augs._augment(_at64(model()).repeat(copies, 1, 1, 1))
        loss = sum(pull(crops) for pull in pulls)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        model.project()
        if step in keep:
            with torch.no_grad():
                out.append(_at64(model()))
    return out


def _need_contrast(drafted: bool, contrast: float) -> None:
    if drafted and not contrast > 0:
        raise ValueError("drafted negatives need contrast > 0 (guided_contrast): the partner pulls only the contrast")


def guided(clip, vqgan, specs: list[rw.Spec], steps: int, keep: tuple[int, ...], g: torch.Generator,
           lr: float = 0.1, copies: int = 4, size: int = 64, contrast: float = 0.0,
           draft=None, draft_steps: int = 0) -> list[torch.Tensor]:
    """Pictures (N, 3, 64, 64) of a batched guided run at each step count in keep (1-based).

    size 32 draws as the coarse stage of a coarse-to-fine run (CLIP sees it enlarged to 64 px);
    contrast C sets the other shapes against the asked one, weighted as a run's contrast lanes.
    With a `draft` CLIP the run is the defaults' coarse to fine with `clip` as the partner: draft_steps
    at 32 px against `draft`, then enlarged, re-encoded and refined at 64 px against `draft` and
    `clip`, which pulls only the contrast; the refinement's pictures are kept."""
    from clipgan.image_models.vqgan import VQGANImage

    _need_contrast(draft is not None, contrast)
    n, f = len(specs), vqgan.factor
    book = vqgan.codebook.detach()
    side = 32 if draft is not None else size
    idx = torch.randint(book.shape[0], (n, side // f, side // f), generator=g)
    model = VQGANImage(vqgan, book[idx].movedim(-1, 1))  # a batch of latents: render and clamp work alike
    was = clip.training
    clip.eval().requires_grad_(False)
    if draft is None:
        out = _optimize(model, [_pull(clip, specs, contrast)], max(keep), lr, copies, keep)
    else:
        draft.eval().requires_grad_(False)
        draft_pull = _pull(draft, specs, contrast)
        _optimize(model, [draft_pull], draft_steps, lr, copies)
        with torch.no_grad():  # edit.upscale's step: the picture enlarged, then encoded at the new size
            big = F.interpolate(model(), size=(64, 64), mode="bicubic", align_corners=False).clamp(0, 1)
            model = VQGANImage.from_image(vqgan, big)
        out = _optimize(model, [draft_pull, _pull(clip, specs, contrast, shared=False)], max(keep), lr, copies, keep)
    clip.requires_grad_(True).train(was)
    return out


class Pool:
    """Guided pictures gathered over training, refreshed every `every` steps against the current CLIP.

    Labels are the asked (fg, bg, shape), as spec_labels gives them.
    """

    def __init__(self, vqgan_dir, n: int, every: int, keep: tuple[int, ...], capacity: int = 1024,
                 recon: float = 0.0, size: int = 64, contrast: float = 0.0, draft: str | None = None,
                 draft_steps: int = 50):
        from pathlib import Path

        from clipgan.toyworld.clip import load

        _need_contrast(bool(draft), contrast)  # before training starts, not at the first refresh
        self.vqgan = load_vqgan(vqgan_dir)
        self.draft = load(Path(draft).with_suffix(".json"), Path(draft)) if draft else None
        self.draft_steps = draft_steps
        self.n, self.every, self.keep, self.capacity, self.recon = n, every, keep, capacity, recon
        self.size, self.contrast = size, contrast
        self.images = torch.empty(0, 3, 64, 64)
        self.labels = torch.empty(0, 3, dtype=torch.long)

    def maybe_refresh(self, model, step: int, g: torch.Generator) -> bool:
        if step % self.every:
            return False
        specs = rw.sample_specs(self.n, g, rw.TRAIN_RANGES)
        shots = guided(model, self.vqgan, specs, max(self.keep), self.keep, g, size=self.size, contrast=self.contrast,
                       draft=self.draft, draft_steps=self.draft_steps)
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
