"""A spectral picture, as in the feature-visualisation literature (Olah et al., "Feature
Visualization", 2017): z holds the real and imaginary parts of each colour channel's 2-D Fourier
spectrum in a decorrelated colour space. Each frequency is scaled by 1/frequency**DECAY, so the
optimizer moves low frequencies further than high ones and high frequencies stay damped; the
picture is the inverse FFT, mixed back to RGB and squashed into [0, 1] by a sigmoid."""

from __future__ import annotations

import torch
from torch import Tensor

from clipgan.image_models.base import ImageModel

# square root of the RGB colour covariance of natural images (Lucid's ImageNet figure),
# rows normalised to the largest row norm: decorrelated channels -> RGB
_COLOUR = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
COLOUR = _COLOUR / _COLOUR.norm(dim=0).max()
# spectrum scale GAIN / f**DECAY: with Adam every coefficient moves about lr per step, so this scale
# is what damps the high frequencies. Chosen on the bundled models ("a red circle on a green
# background", 100 steps): DECAY 1 with GAIN 0.25 (Lucid's) left a grainy picture at loss 0.81,
# 1.5/0.05 0.80, 2/0.01 a smooth one at 0.54. GAIN 0.03: with the adversarially tuned toy CLIP,
# 0.01 at the default lr 0.1 kept the background colour in 1 of 8 bench prompts, lr 0.3 (the same
# as GAIN 0.03 for Adam) in 7 of 8.
DECAY = 2.0
GAIN = 0.03
LIMIT = 1000.0  # |z| bound the projection keeps: beyond what a picture needs, so finite pictures


def frequency_scale(h: int, w: int, device=None) -> Tensor:
    fy = torch.fft.fftfreq(h, device=device)[:, None]
    fx = torch.fft.rfftfreq(w, device=device)[None, :]
    f = (fx * fx + fy * fy).sqrt()
    return GAIN / f.clamp_min(1.0 / max(h, w)) ** DECAY * (h * w) ** 0.5 / max(h, w)


class FFTImage(ImageModel):
    kind = "fft"
    what = "spectrum"

    def __init__(self, z: Tensor, size: tuple[int, int]):
        super().__init__(z, size)
        w, h = self.size
        self.scale = frequency_scale(h, w, z.device)

    @classmethod
    def initial(cls, size: tuple[int, int], noise: str, device) -> "FFTImage":
        from clipgan.image_models.vqgan import gradient_image

        w, h = size
        if noise == "gradient":
            return cls.from_image(gradient_image(w, h, device))
        # small random spectrum: a grey picture with faint, mostly low-frequency noise
        return cls(torch.randn(1, 3, h, w // 2 + 1, 2, device=device) * 0.01, size)

    @classmethod
    def from_image(cls, image: Tensor) -> "FFTImage":
        """The spectrum whose picture is `image` (exactly, up to the sigmoid's clamp at 0 and 1)."""
        h, w = image.shape[-2:]
        x = image.float().clamp(1e-3, 1 - 1e-3).logit()
        decorrelated = torch.einsum("ij,bjhw->bihw", torch.linalg.inv(COLOUR).to(x.device), x)
        spectrum = torch.fft.rfft2(decorrelated, norm="ortho") / frequency_scale(h, w, x.device)
        return cls(torch.view_as_real(spectrum).clamp(-LIMIT, LIMIT), (w, h))

    def render(self, z: Tensor) -> Tensor:
        w, h = self.size
        spectrum = torch.view_as_complex(z.float().contiguous()) * self.scale
        x = torch.fft.irfft2(spectrum, s=(h, w), norm="ortho")
        return torch.einsum("ij,bjhw->bihw", COLOUR.to(x.device), x).sigmoid()

    def _project(self) -> None:
        self.z.clamp_(-LIMIT, LIMIT)
