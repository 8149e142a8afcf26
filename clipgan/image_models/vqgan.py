"""The VQGAN image model: z is a latent (1, C, H/f, W/f), snapped to the codebook in the forward
pass (straight-through) and decoded. Today's clipgan, moved behind the image-model interface."""

from __future__ import annotations

import torch
from torch import Tensor

from clipgan.image_models.base import ImageModel, free_cells
from clipgan.losses.functions import clamp_with_grad, vector_quantize


def synth(vqgan, z: Tensor) -> Tensor:
    """Latent -> image in [0, 1], quantized straight-through and clamped with gradient."""
    image = vqgan.decode(vector_quantize(z, vqgan.codebook))
    return clamp_with_grad(image.float().add(1).div(2), 0.0, 1.0)


class VQGANImage(ImageModel):
    kind = "vqgan"
    what = "latent"
    has_cells = True

    def __init__(self, vqgan, z: Tensor, size: tuple[int, int] | None = None):
        f = vqgan.factor
        super().__init__(z, size or (z.shape[-1] * f, z.shape[-2] * f))
        self.vqgan, self.factor = vqgan, f
        codebook = vqgan.codebook
        self.z_min = codebook.min(0).values.view(1, -1, 1, 1)
        self.z_max = codebook.max(0).values.view(1, -1, 1, 1)

    @classmethod
    def from_image(cls, vqgan, image: Tensor) -> "VQGANImage":
        with torch.no_grad():
            return cls(vqgan, vqgan.encode(image), (image.shape[-1], image.shape[-2]))

    @classmethod
    def initial(cls, vqgan, size: tuple[int, int], noise: str, device) -> "VQGANImage":
        """A seeded start: random codebook entries ("codes"), or noise or a colour gradient encoded."""
        w, h = size
        f = vqgan.factor
        with torch.no_grad():
            if noise == "codes":
                idx = torch.randint(vqgan.codebook.shape[0], (h // f, w // f), device=device)
                return cls(vqgan, vqgan.codebook[idx].movedim(-1, 0).unsqueeze(0), size)
            if noise == "pixels":
                return cls.from_image(vqgan, torch.rand(1, 3, h, w, device=device))
            return cls.from_image(vqgan, gradient_image(w, h, device))

    def render(self, z: Tensor) -> Tensor:
        return synth(self.vqgan, z)

    def _project(self) -> None:
        # clamped to the codebook's range, so z stays near codes the decoder knows
        self.z.copy_(torch.maximum(torch.minimum(self.z, self.z_max), self.z_min))

    def low_memory(self, on: bool):
        from clipgan.models import lowmem

        return lowmem.low_memory(self.vqgan, on)

    def accelerated_modules(self) -> list:
        return [getattr(self.vqgan, "decoder", self.vqgan)]

    def cell_mask(self, pixel_mask: Tensor) -> Tensor:
        return free_cells(pixel_mask, self.factor)


def gradient_image(w: int, h: int, device) -> Tensor:
    """A linear blend between two random colours along a random direction."""
    a, b = torch.rand(2, 3, 1, 1, device=device)
    angle = torch.rand(()) * 2 * torch.pi
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, h, device=device), torch.linspace(-1, 1, w, device=device), indexing="ij")
    t = (xs * torch.cos(angle) + ys * torch.sin(angle)).add(1.5).div(3).clamp(0, 1)
    return (a * (1 - t) + b * t).unsqueeze(0)
