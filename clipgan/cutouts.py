"""Random crops of the image, resized for CLIP and augmented: what CLIP actually scores."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from clipgan.config import DEFAULT_AUGMENTS, Augment, CutMethod


@dataclass(frozen=True)
class CutoutConfig:
    cutn: int = 32
    cut_pow: float = 1.0  # crop side = min + rand**cut_pow * (max - min); >1 favours small crops
    augments: tuple[str, ...] = DEFAULT_AUGMENTS
    noise: float = 0.1  # per-cutout gaussian noise scale drawn from U(0, noise), with "noise"
    method: str = CutMethod.crops.value  # crops: random squares; pooled: the whole picture pooled, cutn copies


def _augmentation(name: str, size: int) -> nn.Module | None:
    import kornia.augmentation as K

    # blur radii are a share of CLIP's input side, so a real CLIP (224 px) and the toy one (64) see
    # the same softening; a blurred cutout keeps a shape's outline and loses fine texture
    sigma = (size / 128, size / 32)
    kernel = 2 * int(2 * sigma[1]) + 1

    table = {
        Augment.flip: lambda: K.RandomHorizontalFlip(p=0.5),
        Augment.affine: lambda: K.RandomAffine(degrees=15, translate=0.1, shear=5, p=0.7, padding_mode="border"),
        Augment.perspective: lambda: K.RandomPerspective(0.2, p=0.7),
        Augment.jitter: lambda: K.ColorJitter(hue=0.05, saturation=0.1, p=0.7),
        Augment.erasing: lambda: K.RandomErasing(scale=(0.1, 0.4), ratio=(0.3, 1 / 0.3), same_on_batch=True, p=0.7),
        Augment.sharpness: lambda: K.RandomSharpness(0.3, p=0.4),
        Augment.blur: lambda: K.RandomGaussianBlur((kernel, kernel), sigma, p=0.5),
        Augment.noise: lambda: None,  # applied by Cutouts itself, per cutout
    }
    return table[Augment(name)]()


class Cutouts(nn.Module):
    """(1, 3, H, W) image -> (cutn, 3, size, size) augmented crops; differentiable throughout."""

    def __init__(self, size: int, config: CutoutConfig = CutoutConfig()):
        super().__init__()
        self.size, self.config = size, config
        augs = [_augmentation(a, size) for a in config.augments]
        self.augs = nn.Sequential(*[a for a in augs if a is not None])
        self.noise = config.noise if Augment.noise.value in config.augments else 0.0

    def boxes(self, height: int, width: int, device=None, n: int | None = None) -> Tensor:
        """(n, 5) boxes [batch index, x1, y1, x2, y2] of random square crops (n: the config's cutn)."""
        n, side = n or self.config.cutn, min(height, width)
        lo = min(side, self.size)
        sizes = (torch.rand(n) ** self.config.cut_pow * (side - lo) + lo).long().clamp(1, side)
        x = (torch.rand(n) * (width - sizes + 1)).long()
        y = (torch.rand(n) * (height - sizes + 1)).long()
        b = torch.stack([torch.zeros(n, dtype=torch.long), x, y, x + sizes, y + sizes], 1)
        return b.to(device=device, dtype=torch.float32)

    def forward(self, image: Tensor, n: int | None = None) -> Tensor:
        """`n` cutouts, the config's cutn when not given (a cutout schedule's step)."""
        if self.config.method == CutMethod.pooled.value:
            return self._augment(self._pooled(image, n or self.config.cutn))
        from torchvision.ops import roi_align

        boxes = self.boxes(image.shape[2], image.shape[3], image.device, n)
        # one batched kernel for all crops; adaptive sampling averages each output pixel's
        # footprint, so shrinking a large crop does not alias
        crops = roi_align(image.float(), boxes.to(image.device), self.size, sampling_ratio=-1, aligned=True)
        return self._augment(crops)

    def _pooled(self, image: Tensor, n: int) -> Tensor:
        """The whole picture at CLIP's size, the mean of average and max pooling, cutn times."""
        from torch.nn import functional as F

        image = image.float()
        pooled = (F.adaptive_avg_pool2d(image, self.size) + F.adaptive_max_pool2d(image, self.size)) / 2
        return pooled.repeat(n, 1, 1, 1)

    def _augment(self, crops: Tensor) -> Tensor:
        crops = self.augs(crops)
        if self.noise:
            facs = crops.new_empty(crops.shape[0], 1, 1, 1).uniform_(0, self.noise)
            crops = crops + facs * torch.randn_like(crops)
        return crops
