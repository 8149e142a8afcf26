"""The classic VQGAN+CLIP step, as nerdyrodent/VQGAN-CLIP's generate.py runs it by default.

A re-implementation for benchmarking, written from a reading of that script (its defaults:
``--cut_method latest``, augments ``Af Pe Ji Er``, ``noise_fac`` 0.1, Adam with lr 0.1,
``--save_every 50``). What it does each step:

- ``synth``: z -> straight-through quantization with a one-hot matmul against the codebook ->
  fp32 decoder -> ``clamp_with_grad((x + 1) / 2, 0, 1)``;
- cutouts ("latest"): the *whole* image is average-pooled and max-pooled to CLIP's input size,
  the two are averaged, and that is done ``cutn`` times and concatenated; then kornia
  RandomAffine(15, 0.1, shear 5, zeros padding), RandomPerspective(0.7),
  ColorJitter(0.1, 0.1, 0.1, 0.1), RandomErasing (all p=0.7), then per-cutout gaussian noise
  with a factor drawn from U(0, 0.1);
- CLIP normalization, ``encode_image`` (fp32 on CPU; fp16 weights on CUDA, as ``clip.load``
  gives there), spherical distance to each prompt, sum of losses, backward, Adam step, and
  clamp of z to the codebook's per-channel range;
- every ``display_freq`` (50) steps, *before* the backward, a "checkin" decodes z again under
  ``inference_mode`` and saves a PNG: an extra decoder forward the benchmark amortizes.

The models are clipgan's (same taming modules and open_clip ViT), so only the recipe differs.
"""

from __future__ import annotations

import io

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from clipgan.losses import clamp_with_grad, replace_grad
from clipgan.models.clip import OPENAI_MEAN, OPENAI_STD

DISPLAY_FREQ = 50  # generate.py --save_every default
ITERATIONS = 500  # generate.py --iterations default: steps 0..500 run, checkins at 0, 50, ..., 500


def checkins_per_step(iterations: int = ITERATIONS, display_freq: int = DISPLAY_FREQ) -> float:
    """Extra decodes per step over a default run (11 in 501 steps)."""
    return (iterations // display_freq + 1) / (iterations + 1)


def one_hot_quantize(x: Tensor, codebook: Tensor) -> Tensor:
    """Nearest codebook row of each vector in x (..., D), chosen by a one-hot matmul; straight-through."""
    d = x.pow(2).sum(dim=-1, keepdim=True) + codebook.pow(2).sum(dim=1) - 2 * x @ codebook.T
    x_q = F.one_hot(d.argmin(-1), codebook.shape[0]).to(d.dtype) @ codebook
    return replace_grad(x_q, x)


class ClassicCutouts(nn.Module):
    """generate.py's default ("latest") MakeCutouts: pooled whole image, repeated, augmented."""

    def __init__(self, cut_size: int, cutn: int, noise_fac: float = 0.1):
        super().__init__()
        import kornia.augmentation as K

        self.cut_size, self.cutn, self.noise_fac = cut_size, cutn, noise_fac
        self.augs = nn.Sequential(  # default order: Af, Pe, Ji, Er
            K.RandomAffine(degrees=15, translate=0.1, shear=5, p=0.7, padding_mode="zeros", keepdim=True),
            K.RandomPerspective(distortion_scale=0.7, p=0.7),
            K.ColorJitter(brightness=0.1, contrast=0.1, saturation=0.1, hue=0.1, p=0.7),
            K.RandomErasing(scale=(0.1, 0.4), ratio=(0.3, 1 / 0.3), same_on_batch=True, p=0.7),
        )
        self.av_pool = nn.AdaptiveAvgPool2d((cut_size, cut_size))
        self.max_pool = nn.AdaptiveMaxPool2d((cut_size, cut_size))

    def forward(self, image: Tensor) -> Tensor:
        # faithful: both pools run once per cutout, although every cutout is the same
        cutouts = [(self.av_pool(image) + self.max_pool(image)) / 2 for _ in range(self.cutn)]
        batch = self.augs(torch.cat(cutouts, dim=0))
        if self.noise_fac:
            facs = batch.new_empty([self.cutn, 1, 1, 1]).uniform_(0, self.noise_fac)
            batch = batch + facs * torch.randn_like(batch)
        return batch


def classic_prompt_loss(embeds: Tensor, target: Tensor, weight: float = 1.0, stop: float = float("-inf")) -> Tensor:
    """generate.py's Prompt.forward: spherical distance with sign, stop and |weight|."""
    a = F.normalize(embeds.unsqueeze(1), dim=2)
    b = F.normalize(target.unsqueeze(0), dim=2)
    dists = a.sub(b).norm(dim=2).div(2).arcsin().pow(2).mul(2) * (1.0 if weight >= 0 else -1.0)
    return abs(weight) * replace_grad(dists, torch.maximum(dists, torch.full_like(dists, stop))).mean()


class ClassicStep:
    """State of a classic run (z, Adam, prompts); ``step(i)`` runs generate.py's ``train(i)``.

    ``vqgan`` is a clipgan VQGAN (taming encoder/decoder/quantizer), ``clip_model`` an
    open_clip CLIP (``Perceptor.model``); ``targets`` are (embedding (1, D), weight, stop).
    """

    def __init__(self, vqgan, clip_model: nn.Module, targets: list[tuple[Tensor, float, float]], z: Tensor, *,
                 cutn: int = 32, lr: float = 0.1, display_freq: int = DISPLAY_FREQ, save: bool = True):
        self.vqgan, self.targets = vqgan, targets
        device = z.device
        self.clip = clip_model
        self.clip_dtype = torch.float16 if device.type == "cuda" else torch.float32
        if self.clip_dtype == torch.float16:  # clip.load(...) on CUDA keeps fp16 weights
            self.clip = clip_model.half()
        size = clip_model.visual.image_size
        cut_size = int(size[0] if isinstance(size, (tuple, list)) else size)
        self.cutouts = ClassicCutouts(cut_size, cutn)
        self.mean = torch.tensor(OPENAI_MEAN, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(OPENAI_STD, device=device).view(1, 3, 1, 1)
        cb = vqgan.codebook
        self.z_min = cb.min(dim=0).values[None, :, None, None]
        self.z_max = cb.max(dim=0).values[None, :, None, None]
        self.z = z.detach().clone().requires_grad_(True)
        self.opt = torch.optim.Adam([self.z], lr=lr)
        self.display_freq, self.save = display_freq, save
        self.last_png: bytes | None = None

    def synth(self, z: Tensor) -> Tensor:
        z_q = one_hot_quantize(z.movedim(1, 3), self.vqgan.codebook).movedim(3, 1)
        return clamp_with_grad(self.vqgan.decode(z_q).add(1).div(2), 0, 1)

    def losses(self) -> list[Tensor]:
        out = self.synth(self.z)
        crops = (self.cutouts(out) - self.mean) / self.std
        embeds = self.clip.encode_image(crops.to(self.clip_dtype)).float()
        return [classic_prompt_loss(embeds, t, w, s) for t, w, s in self.targets]

    @torch.inference_mode()
    def checkin(self) -> bytes:
        """The extra decode + PNG that generate.py does every display_freq steps."""
        from PIL import Image

        out = self.synth(self.z)
        array = out[0].mul(255).round().clamp(0, 255).byte().permute(1, 2, 0).cpu().numpy()
        buf = io.BytesIO()
        Image.fromarray(array).save(buf, format="PNG")
        self.last_png = buf.getvalue()
        return self.last_png

    def step(self, i: int, *, checkin: bool | None = None) -> float:
        """One train(i); ``checkin`` None follows generate.py (every display_freq steps)."""
        self.opt.zero_grad(set_to_none=True)
        losses = self.losses()
        if checkin if checkin is not None else (self.save and i % self.display_freq == 0):
            self.checkin()
        loss = sum(losses)
        loss.backward()
        self.opt.step()
        with torch.inference_mode():
            self.z.copy_(self.z.maximum(self.z_min).minimum(self.z_max))
        return float(loss.detach())
