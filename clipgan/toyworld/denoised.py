"""Renders as a guided diffusion run sees them: the toy UNet's estimate of the clean picture.

A CLIP-guided diffusion run scores the UNet's clean estimate x0 at every step, and chooses
among candidates on it after a third of the steps; early on that estimate is a blur whose
shape a CLIP trained on crisp renders reads poorly. Noise-aware classifier guidance trains the
guide on what it will see; here a share of the CLIP's renders is noised to a random timestep
and replaced by the UNet's x0 estimate, keeping its caption.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class Denoised:
    """x0 estimates of renders by a diffusers UNet folder, at timesteps below t_max of its schedule."""

    def __init__(self, folder: str, share: float, t_max: float = 0.8):
        from clipgan.models.diffusion import load_diffusion

        self.model = load_diffusion(folder)
        self.share, self.t_max = share, t_max
        sched = self.model.scheduler("ddpm")
        self.alphas = sched.alphas_cumprod
        self.prediction = sched.config.prediction_type

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """x (N, 3, S, S) in [0, 1] with its first `share` replaced by estimates, at size S."""
        from clipgan.image_models.diffusion import to_x0_eps

        k = round(len(x) * self.share)
        if not k:
            return x
        side, size = x.shape[-1], self.model.size
        small = F.interpolate(x[:k], size=size, mode="bilinear", antialias=True) * 2 - 1
        t = torch.randint(0, int(self.t_max * len(self.alphas)), (k,), generator=g)
        a = self.alphas[t].view(-1, 1, 1, 1)
        noisy = a.sqrt() * small + (1 - a).sqrt() * torch.randn(small.shape, generator=g)
        x0, _ = to_x0_eps(self.model.unet(noisy, t).sample.float(), noisy, a, self.prediction)
        x = x.clone()
        x[:k] = F.interpolate(x0.clamp(-1, 1).add(1).div(2), size=side, mode="bilinear")
        return x
