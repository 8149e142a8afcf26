"""Image models: what a run optimizes, behind one interface (`base.ImageModel`).

vqgan: a VQGAN latent, decoded; pixels: the picture itself; fft: a damped colour-decorrelated
spectrum; strokes: Bezier curves drawn by a differentiable rasterizer (CLIPDraw); diffusion (its own
module, imported on demand: it needs diffusers) samples a UNet step by step. They know
nothing of prompts or files; `clipgan.runsetup` picks one from the settings.
"""

from clipgan.image_models.base import ImageModel
from clipgan.image_models.fft import FFTImage
from clipgan.image_models.pixels import PixelsImage
from clipgan.image_models.strokes import StrokesImage
from clipgan.image_models.vqgan import VQGANImage, synth

KINDS = {"vqgan": VQGANImage, "pixels": PixelsImage, "fft": FFTImage, "strokes": StrokesImage}

__all__ = ["ImageModel", "VQGANImage", "PixelsImage", "FFTImage", "StrokesImage", "KINDS", "synth"]
