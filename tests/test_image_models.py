"""Each image model against the interface: shapes, gradients reach the parameters, the projection
keeps its invariant, resume gives an identical result; the strokes rasterizer by hand; SVG round trip."""

from __future__ import annotations

import math

import pytest
import torch

from clipgan.errors import ClipganError
from clipgan.image_models import FFTImage, PixelsImage, StrokesImage, VQGANImage
from clipgan.image_models.strokes import bezier, from_svg, rasterize, to_svg
from clipgan.losses.terms import LossTerm
from clipgan.optimize import iterate

pytestmark = pytest.mark.usefixtures("one_thread")
W, H = 24, 16


@pytest.fixture(scope="module")
def vqgan(tiny_models):
    from clipgan.models.vqgan import load_vqgan

    return load_vqgan(*tiny_models["vq"])


def make(kind: str, vqgan=None, seed: int = 0):
    torch.manual_seed(seed)
    if kind == "vqgan":
        return VQGANImage.initial(vqgan, (W, H), "codes", "cpu")
    if kind == "pixels":
        return PixelsImage.initial((W, H), "codes", "cpu")
    if kind == "pixels2":
        return PixelsImage.initial((W, H), "codes", "cpu", scale=2)
    if kind == "fft":
        return FFTImage.initial((W, H), "codes", "cpu")
    return StrokesImage.initial((W, H), 5, "cpu")


KINDS = ["vqgan", "pixels", "pixels2", "fft", "strokes"]


class Redness(LossTerm):
    """A loss without CLIP: the picture should be red (and a dash of noise so every step differs)."""

    def __call__(self, image, model, step):
        target = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
        noise = torch.rand(()) * 1e-3
        return {"red": (image - target).pow(2).mean() + noise}


@pytest.mark.parametrize("kind", KINDS)
def test_shape_and_range(kind, vqgan):
    model = make(kind, vqgan)
    image = model.forward()
    assert image.shape == (1, 3, H, W)
    assert image.min() >= 0 and image.max() <= 1


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_reach_the_parameters(kind, vqgan):
    model = make(kind, vqgan)
    loss = Redness()(model.forward(), model, 0)["red"]
    loss.backward()
    (z,) = model.parameters()
    assert z is model.z and z.grad is not None and z.grad.abs().sum() > 0


@pytest.mark.parametrize("kind", KINDS)
def test_the_loop_moves_towards_red(kind, vqgan):
    steps = list(iterate(make(kind, vqgan), [Redness()], steps=12, lr=0.05))
    assert steps[-1].losses["red"] < steps[0].losses["red"]
    assert steps[-1].image.shape == (1, 3, H, W)


def test_projection_invariants(vqgan):
    big = 1e4
    cases = {
        "vqgan": lambda m: ((m.z >= m.z_min - 1e-6) & (m.z <= m.z_max + 1e-6)).all(),
        "pixels": lambda m: ((m.z >= 0) & (m.z <= 1)).all(),
        "fft": lambda m: m.z.abs().max() <= 1000.0,
        "strokes": lambda m: ((m.z[:, 9:13] >= 0) & (m.z[:, 9:13] <= 1)).all()
        and (m.z[1:, :8].abs() <= 1.1 + 1e-6).all() and (m.z[1:, 8] <= 0.5).all() and (m.z[1:, 8] > 0).all(),
    }
    for kind, holds in cases.items():
        model = make(kind, vqgan)
        with torch.no_grad():
            model.z.mul_(big).add_(torch.randn_like(model.z) * big)
        assert not holds(model)
        model.project()
        assert holds(model), kind


@pytest.mark.parametrize("kind", ["vqgan", "pixels"])
def test_held_cells_stay_exactly(kind, vqgan):
    model = make(kind, vqgan)
    mask = torch.zeros(1, 1, H, W)
    mask[..., :, : W // 2] = 1
    model.hold_cells(model.cell_mask(mask))
    before = model.z.detach().clone()
    *_, last = iterate(model, [Redness()], steps=4, lr=0.2)
    right = slice(W // 2 // model.factor, None)
    assert torch.equal(model.z[..., right], before[..., right])
    assert not torch.equal(model.z, before)


@pytest.mark.parametrize("kind", KINDS)
def test_resume_gives_an_identical_result(kind, vqgan):
    torch.manual_seed(3)
    whole = list(iterate(make(kind, vqgan), [Redness()], steps=5, lr=0.05))
    torch.manual_seed(3)
    first = make(kind, vqgan)
    for step in iterate(first, [Redness()], steps=5, lr=0.05):
        if step.index == 1:
            snap, rng = step.snapshot(), torch.get_rng_state()
            break
    model = make(kind, vqgan, seed=99)  # another start, replaced by the snapshot
    model.load_state(snap)
    torch.set_rng_state(rng)
    rest = list(iterate(model, [Redness()], steps=5, lr=0.05, start=snap["next_step"],
                        optimizer_state=snap["optimizer"]))
    assert [s.index for s in rest] == [2, 3, 4]
    assert torch.equal(rest[-1].image, whole[-1].image) and torch.equal(rest[-1].z, whole[-1].z)


@pytest.mark.parametrize("kind", ["pixels", "fft"])
def test_from_image_reproduces_the_picture(kind):
    g = torch.Generator().manual_seed(0)
    picture = torch.rand(1, 3, H, W, generator=g) * 0.9 + 0.05
    model = (PixelsImage if kind == "pixels" else FFTImage).from_image(picture)
    assert torch.allclose(model.forward(), picture, atol=1e-4)


# ---------------------------------------------------------------- the rasterizer


def test_bezier_end_points_and_midpoint_by_hand():
    points = torch.tensor([[[0.0, 0.0], [1.0, 2.0], [3.0, 2.0], [4.0, 0.0]]])
    curve = bezier(points, torch.tensor([0.0, 0.5, 1.0]))
    # B(1/2) = (p0 + 3 p1 + 3 p2 + p3) / 8
    assert torch.allclose(curve[0], torch.tensor([[0.0, 0.0], [2.0, 1.5], [4.0, 0.0]]))


def test_coverage_of_a_straight_stroke_by_hand():
    """A horizontal stroke from x=8 to x=24 at y=16, 4 px wide, black on white, opaque: its ink is
    a capsule, L*w for the straight part (a logistic edge, symmetric, adds nothing there) and for the
    two round caps together a disc with a soft edge: integral of 2 pi rho sigmoid((r - rho) / s) over
    rho = pi r^2 + pi^3 s^2 / 3 (r = 2 px, s = SOFT = 0.5 px). Inside it the picture is black."""
    from clipgan.image_models.strokes import SOFT

    w = h = 32
    z = torch.zeros(2, 13)
    z[0, 9:12] = 1.0  # white background
    xs = torch.tensor([8.0, 13.0, 19.0, 24.0]) / w  # control points on the line, evenly spaced
    z[1, 0:8:2], z[1, 1:8:2] = xs, 16.0 / h
    z[1, 8] = 4.0 / 32  # width 4 px
    z[1, 12] = 1.0  # opaque black
    image = rasterize(z, (w, h))
    ink = (1 - image[0, 0]).sum().item()
    assert ink == pytest.approx(16 * 4 + math.pi * 2 ** 2 + math.pi ** 3 * SOFT ** 2 / 3, rel=0.01)
    # pixel (15, 15): centre (15.5, 15.5), 0.5 px from the axis, 1.5 px inside the edge
    assert image[0, :, 15, 15] == pytest.approx([1 - 1 / (1 + math.exp(-1.5 / SOFT))] * 3, abs=1e-4)
    assert image[0, :, 2, 2].min() > 0.999  # far away: background


def test_svg_round_trip():
    torch.manual_seed(0)
    model = StrokesImage.initial((W, H), 4, "cpu")
    text = to_svg(model.z, (W, H))
    assert text.count("<path") == 4 and 'stroke-linecap="round"' in text
    z, size = from_svg(text)
    assert size == (W, H)
    assert torch.allclose(z[:, :9], model.z.detach()[:, :9], atol=1e-3)
    assert torch.allclose(z[:, 9:12], model.z.detach()[:, 9:12], atol=1 / 255)  # colours in 8 bits
    assert torch.allclose(z[:, 12], model.z.detach()[:, 12], atol=1e-4)
    again = rasterize(z, size)
    assert (again - model.forward()).abs().max() < 0.02


def test_from_svg_refuses_other_documents():
    with pytest.raises(ClipganError, match="not a clipgan strokes SVG"):
        from_svg("<svg><circle r='3'/></svg>")


def test_memory_estimate_per_model(vqgan):
    """No VQGAN decoder in the estimate of the other models; strokes grow with their count."""
    from clipgan import memory
    from clipgan.config import Settings

    size = (64, 64)
    with_decoder = memory.estimate(vqgan, [], size, 1).decoder
    pixels = memory.estimate(None, [], size, 1, image_model=PixelsImage, settings=Settings()).decoder
    few = memory.estimate(None, [], size, 1, image_model=StrokesImage, settings=Settings(strokes=8)).decoder
    many = memory.estimate(None, [], size, 1, image_model=StrokesImage, settings=Settings(strokes=64)).decoder
    assert pixels < with_decoder and few < many == 8 * few


def test_strokes_paint_in_row_order():
    """Two opaque crossing strokes: where they cross, the later row's colour covers the earlier; a
    half-transparent stroke over white mixes with it. Values by hand."""
    w = h = 32
    z = torch.zeros(4, 13)
    z[0, 9:12] = 1.0
    z[1, :8] = torch.tensor([4, 16, 12, 16, 20, 16, 28, 16.0]) / 32  # horizontal, red
    z[2, :8] = torch.tensor([16, 4, 16, 12, 16, 20, 16, 28.0]) / 32  # vertical, blue, on top
    z[3, :8] = torch.tensor([2, 28, 3, 28, 4, 28, 5, 28.0]) / 32  # short, green, half transparent
    z[1:, 8] = 6 / 32
    z[1, 9:13] = torch.tensor([1, 0, 0, 1.0])
    z[2, 9:13] = torch.tensor([0, 0, 1, 1.0])
    z[3, 9:13] = torch.tensor([0, 1, 0, 0.5])
    image = rasterize(z, (w, h))[0]
    # each pixel below has its centre 0.5 px from the axis of the strokes over it: coverage
    # c = sigmoid((3 - 0.5) / SOFT) (times alpha); over white, colour k ends as by the painter's rule
    from clipgan.image_models.strokes import SOFT

    c = 1 / (1 + math.exp(-2.5 / SOFT))
    white_left = (1 - c) * (1 - c)
    assert image[:, 15, 15].tolist() == pytest.approx([white_left + c * (1 - c), white_left, white_left + c], abs=1e-5)
    assert image[:, 15, 6].tolist() == pytest.approx([1, 1 - c, 1 - c], abs=1e-5)  # red alone
    g = 0.5 * c  # green at half alpha
    assert image[:, 27, 3].tolist() == pytest.approx([1 - g, 1, 1 - g], abs=1e-5)
