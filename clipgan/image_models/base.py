"""The interface every image model has: what `optimize.iterate` optimizes.

An image model keeps its parameters in one tensor `z` (a VQGAN latent, pixels, a spectrum,
a table of strokes), so that the optimizer state, resume files, `Step.z` and animations'
carries look the same whatever the model. It knows nothing of prompts or files.
"""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor


def free_cells(pixel_mask: Tensor, factor: int) -> Tensor:
    """(1, 1, H, W) pixel mask (>= 0.5: free) -> bool (1, 1, ceil(H/f), ceil(W/f)): a cell of f x f
    pixels is free if any of its pixels is."""
    import torch.nn.functional as F

    return F.max_pool2d((pixel_mask >= 0.5).float(), factor, ceil_mode=True) > 0


class ImageModel:
    kind = "?"
    what = "parameters"  # how messages name z ("the latent became NaN")
    factor = 1  # the picture's sides are multiples of this
    has_cells = False  # whether `cell_mask` can hold parts of z still (inpainting)
    encodes = True  # whether `from_image` reproduces a picture (zoom, restyle, edits need that)

    def __init__(self, z: Tensor, size: tuple[int, int]):
        self.size = tuple(size)  # (W, H) of the picture
        self.z = z.detach().clone().requires_grad_(True)
        self.keep: Tensor | None = None  # with a cell mask: z's values outside it
        self.mask: Tensor | None = None

    # -- what the loop uses
    def parameters(self) -> list[Tensor]:
        return [self.z]

    def forward(self) -> Tensor:
        """The picture (1, 3, H, W) in [0, 1], differentiable in z."""
        return self.render(self.z)

    __call__ = forward

    def render(self, z: Tensor) -> Tensor:
        """The picture of any z of this model's shape (animations decode blends of them)."""
        raise NotImplementedError

    @torch.no_grad()
    def project(self) -> None:
        """After each optimizer step: put z back where it is valid, and the cells outside the mask back."""
        self._project()
        if self.mask is not None:
            self.z.copy_(torch.where(self.mask, self.z, self.keep))

    def _project(self) -> None:
        pass

    def low_memory(self, on: bool):
        """A context in which a step keeps less for the backward pass (same gradients)."""
        return contextlib.nullcontext()

    def accelerated_modules(self) -> list:
        """The modules of this model worth compiling (clipgan.accel)."""
        return []

    # -- state and cells
    def state(self) -> dict:
        return {"z": self.z.detach().cpu().clone()}

    @torch.no_grad()
    def load_state(self, state: dict) -> None:
        self.z.copy_(state["z"].to(self.z.device, self.z.dtype))

    def cell_mask(self, pixel_mask: Tensor) -> Tensor:
        """(1, 1, H, W) pixel mask (>= 0.5: free) -> bool mask broadcast to z: the cells free to change."""
        raise NotImplementedError(f"the {self.kind} model has no cells")

    def hold_cells(self, free: Tensor | None) -> None:
        """From now on only the `free` cells of z change (None: all)."""
        self.mask = free
        self.keep = None if free is None else self.z.detach().clone()

    # -- memory
    @staticmethod
    def activation_elements(size: tuple[int, int], settings) -> tuple[int, int, int, int]:
        """Elements a step keeps for the backward pass (memory.estimate): (plain, with low memory,
        largest recomputed block, largest tensor)."""
        n = size[0] * size[1]
        return 6 * n, 6 * n, 0, 3 * n
