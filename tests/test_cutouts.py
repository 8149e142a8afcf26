"""Cutouts: cardinality, shapes, bounds, gradient flow, replayable randomness."""

import pytest
import torch

from clipgan.config import Augment
from clipgan.cutouts import CutoutConfig, Cutouts


@pytest.mark.parametrize("cutn,size,hw", [(1, 16, (32, 32)), (8, 24, (40, 64)), (5, 64, (32, 48))])
def test_cardinality_and_shape(cutn, size, hw):
    out = Cutouts(size, CutoutConfig(cutn=cutn))(torch.rand(1, 3, *hw))
    assert out.shape == (cutn, 3, size, size)


def test_boxes_stay_inside_and_respect_size_range():
    torch.manual_seed(0)
    cut = Cutouts(16, CutoutConfig(cutn=200, cut_pow=1.0))
    b = cut.boxes(40, 64)
    sides = b[:, 3] - b[:, 1]
    assert torch.equal(sides, b[:, 4] - b[:, 2])  # square
    assert sides.min() >= 16 and sides.max() <= 40
    assert b[:, 1].min() >= 0 and b[:, 3].max() <= 64 and b[:, 4].max() <= 40


def test_cut_pow_favours_small_crops():
    torch.manual_seed(0)
    big = Cutouts(16, CutoutConfig(cutn=500, cut_pow=0.5)).boxes(64, 64)
    small = Cutouts(16, CutoutConfig(cutn=500, cut_pow=4.0)).boxes(64, 64)
    assert (small[:, 3] - small[:, 1]).float().mean() < (big[:, 3] - big[:, 1]).float().mean()


def test_plain_crops_of_a_flat_image_keep_its_colour():
    image = torch.tensor([0.2, 0.5, 0.9]).view(1, 3, 1, 1).expand(1, 3, 48, 48)
    out = Cutouts(16, CutoutConfig(cutn=6, augments=()))(image)
    assert torch.allclose(out, image[:, :, :16, :16].expand(6, -1, -1, -1), atol=1e-5)


def test_full_crop_averages_instead_of_aliasing():
    # a 1-pixel checkerboard shrunk 4x must come out as flat grey, not a sampled pattern
    board = (torch.arange(64)[:, None] + torch.arange(64)[None, :]) % 2
    image = board.float().expand(1, 3, 64, 64)
    cut = Cutouts(16, CutoutConfig(cutn=1, augments=(), cut_pow=1e-6))  # crop ~= whole image
    cut.boxes = lambda h, w, device=None, n=None: torch.tensor([[0.0, 0.0, 0.0, 64.0, 64.0]])
    out = cut(image)
    assert torch.allclose(out, torch.full_like(out, 0.5), atol=0.02)


@pytest.mark.parametrize("method", ["crops", "pooled"])
def test_a_step_may_ask_for_another_number_of_cutouts(method):
    cut = Cutouts(16, CutoutConfig(cutn=8, method=method))
    image = torch.rand(1, 3, 32, 32)
    assert cut(image).shape[0] == 8 and cut(image, 3).shape == (3, 3, 16, 16)


@pytest.mark.parametrize("augment", [a.value for a in Augment])
def test_each_augment_runs_and_passes_gradient(augment):
    image = torch.rand(1, 3, 32, 32, requires_grad=True)
    out = Cutouts(16, CutoutConfig(cutn=4, augments=(augment,)))(image)
    assert out.shape == (4, 3, 16, 16)
    out.sum().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0


def test_blur_softens_some_cutouts_and_sharpens_none():
    # a checkerboard of 1-px squares: any Gaussian blur lowers its variance; unblurred cutouts keep it
    torch.manual_seed(0)
    board = ((torch.arange(16)[:, None] + torch.arange(16)[None]) % 2).float().expand(1, 3, 16, 16)
    cut = Cutouts(16, CutoutConfig(cutn=64, augments=("blur",), cut_pow=1e-6))
    spread = cut(board).flatten(1).var(1)
    softened = spread < board.var() * 0.9
    assert 10 < softened.sum() < 54  # p = 0.5 per cutout
    assert (spread <= board.var() + 1e-4).all()


def test_replayable_with_seed():
    image = torch.rand(1, 3, 32, 32)
    cut = Cutouts(16, CutoutConfig(cutn=4))
    torch.manual_seed(3)
    a = cut(image)
    torch.manual_seed(3)
    assert torch.equal(a, cut(image))
