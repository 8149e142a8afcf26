"""Strokes, after CLIPDraw (Frans et al., 2021): N cubic Bezier curves with a width and an RGBA
colour over a flat background, drawn by a differentiable rasterizer in plain torch.

z is a table (N + 1, 13): row 0 holds the background colour (columns 9:12), each other row one
stroke: four control points x0 y0 .. x3 y3 (fractions of the width and height), the width
(a fraction of the shorter side) and r g b a in [0, 1]. Strokes are painted in row order.

The rasterizer samples each curve at SEGMENTS + 1 points, takes each pixel centre's distance
to the nearest of the resulting segments, and turns it into a soft coverage
sigmoid((width / 2 - distance) / SOFT): about 1 inside the stroke, 0 far from it, smooth across
its edge, so the gradient reaches points, width and colour. Memory grows with N x segments x pixels.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import torch
from torch import Tensor

from clipgan.errors import ClipganError
from clipgan.image_models.base import ImageModel

SEGMENTS = 12  # straight pieces per curve
SOFT = 0.5  # px: the width of a stroke's soft edge
MIN_WIDTH_PX = 0.5
MAX_WIDTH = 0.5  # of the shorter side
POINT_MARGIN = 0.1  # control points may leave the picture by this share
COLUMNS = 13


def bezier(points: Tensor, t: Tensor) -> Tensor:
    """Cubic Bezier curves (N, 4, 2) at parameters t (K,) -> (N, K, 2)."""
    t = t[None, :, None]
    p0, p1, p2, p3 = (points[:, i, None, :] for i in range(4))
    u = 1 - t
    return u ** 3 * p0 + 3 * u * u * t * p1 + 3 * u * t * t * p2 + t ** 3 * p3


def distance_to_polylines(vertices: Tensor, h: int, w: int) -> Tensor:
    """Distance (N, H, W) in px from each pixel centre to each polyline (N, K, 2) given in px."""
    ys, xs = torch.meshgrid(torch.arange(h, device=vertices.device) + 0.5,
                            torch.arange(w, device=vertices.device) + 0.5, indexing="ij")
    pixel = torch.stack([xs, ys], -1).reshape(1, -1, 2)  # (1, P, 2)
    best = None
    for k in range(vertices.shape[1] - 1):  # one segment at a time: (N, P) tensors, not (N, K, P)
        a, b = vertices[:, k, None, :], vertices[:, k + 1, None, :]
        ab = b - a
        t = ((pixel - a) * ab).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-9)
        nearest = a + t.clamp(0, 1)[..., None] * ab
        d2 = (pixel - nearest).pow(2).sum(-1)
        best = d2 if best is None else torch.minimum(best, d2)
    return (best + 1e-8).sqrt().view(-1, h, w)


def rasterize(z: Tensor, size: tuple[int, int]) -> Tensor:
    """Stroke table (N + 1, 13) -> picture (1, 3, H, W) in [0, 1]."""
    w, h = size
    background, strokes = z[0, 9:12], z[1:]
    image = background.view(3, 1, 1).expand(3, h, w)
    if strokes.shape[0] == 0:
        return image.unsqueeze(0).clamp(0, 1)
    points = strokes[:, :8].view(-1, 4, 2) * torch.tensor([w, h], device=z.device, dtype=z.dtype)
    t = torch.linspace(0, 1, SEGMENTS + 1, device=z.device, dtype=z.dtype)
    dist = distance_to_polylines(bezier(points, t), h, w)
    half = strokes[:, 8].view(-1, 1, 1) * min(w, h) / 2
    cover = torch.sigmoid((half - dist) / SOFT) * strokes[:, 12].view(-1, 1, 1)  # (N, H, W)
    # painter's order, each stroke over what is below it, in one pass: stroke i shows through
    # the strokes above it, above[i] = prod over j > i of (1 - cover[j]); the background through all
    clear = torch.flip(torch.cumprod(torch.flip(1 - cover, [0]), 0), [0])  # prod over j >= i
    above = torch.cat([clear[1:], torch.ones_like(clear[:1])])
    paint = torch.einsum("nc,nhw->chw", strokes[:, 9:12], cover * above)
    return (image * clear[0] + paint).unsqueeze(0).clamp(0, 1)


class StrokesImage(ImageModel):
    kind = "strokes"
    what = "strokes"
    encodes = False

    @classmethod
    def initial(cls, size: tuple[int, int], strokes: int, device) -> "StrokesImage":
        """Random short strokes all over the picture, random colours, on a random background."""
        n = strokes
        start = torch.rand(n, 1, 2, device=device)
        points = (start + (torch.rand(n, 3, 2, device=device) - 0.5) * 0.3).clamp(0, 1)
        width = 0.02 + torch.rand(n, 1, device=device) * 0.1
        colour = torch.rand(n, 4, device=device)
        colour[:, 3] = 0.5 + colour[:, 3] / 2
        rows = torch.cat([torch.cat([start, points], 1).view(n, 8), width, colour], 1)
        head = torch.zeros(1, COLUMNS, device=device)
        head[0, 9:12] = torch.rand(3, device=device)
        head[0, 12] = 1
        return cls(torch.cat([head, rows]), size)

    @classmethod
    def from_image(cls, image: Tensor, strokes: int) -> "StrokesImage":
        """Random strokes coloured from the picture where they start, over its mean colour: a rough
        start (strokes cannot reproduce a picture)."""
        h, w = image.shape[-2:]
        model = cls.initial((w, h), strokes, image.device)
        with torch.no_grad():
            z = model.z
            z[0, 9:12] = image[0].mean((1, 2))
            xs = (z[1:, 0] * (w - 1)).round().long().clamp(0, w - 1)
            ys = (z[1:, 1] * (h - 1)).round().long().clamp(0, h - 1)
            z[1:, 9:12] = image[0, :, ys, xs].T
        return model

    def render(self, z: Tensor) -> Tensor:
        return rasterize(z, self.size)

    def _project(self) -> None:
        w, h = self.size
        z = self.z
        z[1:, :8].clamp_(-POINT_MARGIN, 1 + POINT_MARGIN)
        z[1:, 8].clamp_(MIN_WIDTH_PX / min(w, h), MAX_WIDTH)
        z[:, 9:13].clamp_(0, 1)
        z[0, :9] = 0
        z[0, 12] = 1

    @staticmethod
    def activation_elements(size: tuple[int, int], settings) -> tuple[int, int, int, int]:
        n = size[0] * size[1]
        per_stroke = n * (SEGMENTS * 6 + 8)  # each segment's projection and distance, coverage, painting
        strokes = settings.strokes
        return strokes * per_stroke, strokes * per_stroke, 0, strokes * n


# ---------------------------------------------------------------- SVG


def _colour(rgb) -> str:
    return "#" + "".join(f"{round(float(c) * 255):02x}" for c in rgb)


def to_svg(z: Tensor, size: tuple[int, int]) -> str:
    """The strokes as an SVG document of the picture's size: a background rect, one path each."""
    w, h = size
    z = z.detach().float().cpu()
    short = min(w, h)
    lines = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}">',
             f'<rect width="{w}" height="{h}" fill="{_colour(z[0, 9:12])}"/>']
    for row in z[1:]:
        xy = [f"{float(row[i]) * (w if i % 2 == 0 else h):.3f}" for i in range(8)]
        lines.append(f'<path d="M {xy[0]} {xy[1]} C {" ".join(xy[2:])}" fill="none" stroke="{_colour(row[9:12])}" '
                     f'stroke-opacity="{float(row[12]):.4f}" stroke-width="{float(row[8]) * short:.4f}" '
                     'stroke-linecap="round"/>')
    lines.append("</svg>")
    return "\n".join(lines) + "\n"


def from_svg(text: str) -> tuple[Tensor, tuple[int, int]]:
    """An SVG written by `to_svg` -> (stroke table, size): the round trip, colours to 1/255."""
    try:
        root = ET.fromstring(text)
        ns = "{http://www.w3.org/2000/svg}"
        w, h = int(float(root.get("width"))), int(float(root.get("height")))
        rect = root.find(f"{ns}rect")
        rows = [[0.0] * 9 + _rgb(rect.get("fill")) + [1.0]]
        for path in root.findall(f"{ns}path"):
            numbers = [float(v) for v in path.get("d").replace("M", " ").replace("C", " ").split()]
            points = [v / (w if i % 2 == 0 else h) for i, v in enumerate(numbers)]
            rows.append(points + [float(path.get("stroke-width")) / min(w, h)] + _rgb(path.get("stroke"))
                        + [float(path.get("stroke-opacity"))])
    except (ET.ParseError, TypeError, ValueError, AttributeError) as e:
        raise ClipganError(f"not a clipgan strokes SVG ({type(e).__name__})") from None
    if any(len(r) != COLUMNS for r in rows) or not all(math.isfinite(v) for r in rows for v in r):
        raise ClipganError("not a clipgan strokes SVG (a path is not one cubic curve)")
    return torch.tensor(rows), (w, h)


def _rgb(text: str) -> list[float]:
    return [int(text[i:i + 2], 16) / 255 for i in (1, 3, 5)]
