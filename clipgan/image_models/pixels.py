"""Raw pixels: z is the picture itself (1, 3, H/s, W/s) in [0, 1], enlarged bilinearly when
`scale` s > 1 (fewer parameters, smoother pictures). The noisy baseline of the CLIP literature."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from clipgan.image_models.base import ImageModel, free_cells


class PixelsImage(ImageModel):
    kind = "pixels"
    what = "pixels"
    has_cells = True

    def __init__(self, z: Tensor, size: tuple[int, int], scale: int = 1):
        super().__init__(z, size)
        self.scale = scale

    @classmethod
    def from_image(cls, image: Tensor, scale: int = 1) -> "PixelsImage":
        size = (image.shape[-1], image.shape[-2])
        small = image if scale == 1 else F.interpolate(image, scale_factor=1 / scale, mode="area")
        return cls(small.clamp(0, 1), size, scale)

    @classmethod
    def initial(cls, size: tuple[int, int], noise: str, device, scale: int = 1) -> "PixelsImage":
        from clipgan.image_models.vqgan import gradient_image

        w, h = size
        if noise == "gradient":
            return cls.from_image(gradient_image(w, h, device), scale)
        return cls(torch.rand(1, 3, -(-h // scale), -(-w // scale), device=device), size, scale)

    def render(self, z: Tensor) -> Tensor:
        if self.scale == 1:
            return z
        w, h = self.size
        return F.interpolate(z, size=(h, w), mode="bilinear", align_corners=False).clamp(0, 1)

    def _project(self) -> None:
        self.z.clamp_(0, 1)

    def cell_mask(self, pixel_mask: Tensor) -> Tensor:
        return free_cells(pixel_mask, self.scale)
