"""A seeded synthetic world of flat shapes, with captions.

One coloured shape (circle, square, triangle, star, cross) on a flat background of
another colour.  Shapes are drawn from signed distance functions, so edges are
antialiased and any size renders sharply.  Everything is plain torch, batched and
fast enough to feed training loops directly.

Coordinates: the image spans [-1, 1] on both axes, y pointing down.  A spec's `size`
is the shape's radius in those units (0.5 means the shape spans half the image).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

import torch

# name -> (r, g, b) in 0..255.  Far apart so nearest-colour pixel counting is unambiguous.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 60),
    "blue": (30, 70, 220),
    "yellow": (245, 220, 30),
    "purple": (140, 50, 190),
    "orange": (245, 140, 20),
    "white": (255, 255, 255),
    "black": (0, 0, 0),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross")
COLOR_NAMES: tuple[str, ...] = tuple(COLORS)

# Caption templates.  The first is canonical; fields a template leaves out are unconstrained.
TEMPLATES: tuple[str, ...] = (
    "a {fg} {shape} on a {bg} background",
    "a {fg} {shape} on {bg}",
    "{fg} {shape}, {bg} background",
    "a {shape} in {fg} on a {bg} background",
    "a picture of a {fg} {shape} on a {bg} background",
    "a {fg} {shape}",
    "a {shape} on a {bg} background",
    "a {fg} shape on a {bg} background",
)
CANONICAL = TEMPLATES[0]


@dataclass(frozen=True)
class Spec:
    """One scene: a `fg` coloured `shape` on a `bg` background."""

    shape: str
    fg: str
    bg: str
    x: float = 0.0  # centre, in [-1, 1]
    y: float = 0.0
    size: float = 0.5  # radius, in image half-widths
    angle: float = 0.0  # rotation in degrees
    stretch: float = 1.0  # x/y aspect of the shape


@dataclass(frozen=True)
class SpecRanges:
    """Where random specs come from.  The default keeps shapes upright and inside the frame."""

    size: tuple[float, float] = (0.35, 0.65)
    margin: float = 0.95  # centre kept so that margin * size stays inside the image
    angle: float = 0.0  # max |rotation| in degrees
    stretch: float = 0.0  # max |log aspect|


# Wider ranges for training: crops, zooms and small affine changes of the clean world.
TRAIN_RANGES = SpecRanges(size=(0.3, 0.9), margin=0.55, angle=15.0, stretch=0.15)
# Every shape at the centre, middling sizes: a narrow world a small prior learns quickly
# (margin * smallest size = 1 leaves no room to move)
CENTRED_RANGES = SpecRanges(size=(0.45, 0.65), margin=1 / 0.45)
RANGES = {"default": SpecRanges(), "train": TRAIN_RANGES, "centred": CENTRED_RANGES}


# Shape dimensions in unit coordinates, chosen so the five shapes have similar areas.
_SQUARE_HALF = 0.85
_TRI_R = 1.25  # circumradius
_STAR_OUTER, _STAR_INNER = 1.2, 0.5
_CROSS_ARM, _CROSS_HALF = 1.0, 0.36


def _box(p: torch.Tensor, hx: float, hy: float) -> torch.Tensor:
    qx, qy = p[..., 0].abs() - hx, p[..., 1].abs() - hy
    outside = torch.sqrt(qx.clamp(min=0) ** 2 + qy.clamp(min=0) ** 2)
    return outside + torch.maximum(qx, qy).clamp(max=0)


def _triangle(p: torch.Tensor) -> torch.Tensor:
    # apex up, centred a little low so it looks balanced; max of the three edge
    # half-planes is exact inside and along edges, which is all antialiasing needs
    x, y = p[..., 0], p[..., 1] - 0.12 * _TRI_R
    half = _TRI_R / 2  # inradius of an equilateral triangle
    s, c = math.sin(math.pi / 6), math.cos(math.pi / 6)
    return torch.stack([y - half, c * x - s * y - half, -c * x - s * y - half]).amax(0)


def _star(p: torch.Tensor) -> torch.Tensor:
    # fold the plane into one 36-degree wedge holding a single edge (tip -> inner vertex)
    wedge = math.pi / 5
    theta = torch.atan2(p[..., 1], p[..., 0]) + math.pi / 2  # first tip straight up
    theta = torch.remainder(theta, 2 * wedge)
    theta = torch.minimum(theta, 2 * wedge - theta)
    rho = p.norm(dim=-1)
    qx, qy = rho * torch.cos(theta), rho * torch.sin(theta)
    ax, ay = _STAR_OUTER, 0.0
    bx, by = _STAR_INNER * math.cos(wedge), _STAR_INNER * math.sin(wedge)
    ex, ey = bx - ax, by - ay
    t = (((qx - ax) * ex + (qy - ay) * ey) / (ex * ex + ey * ey)).clamp(0, 1)
    dist = torch.sqrt((qx - ax - t * ex) ** 2 + (qy - ay - t * ey) ** 2)
    inside = (ex * (qy - ay) - ey * (qx - ax)) > 0  # same side of the edge as the centre
    return torch.where(inside, -dist, dist)


def _cross(p: torch.Tensor) -> torch.Tensor:
    return torch.minimum(_box(p, _CROSS_ARM, _CROSS_HALF), _box(p, _CROSS_HALF, _CROSS_ARM))


_SDFS = {
    "circle": lambda p: p.norm(dim=-1) - 1.0,
    "square": lambda p: _box(p, _SQUARE_HALF, _SQUARE_HALF),
    "triangle": _triangle,
    "star": _star,
    "cross": _cross,
}


def shape_sdf(shape: str, p: torch.Tensor) -> torch.Tensor:
    """Signed distance (negative inside) to the unit `shape` at points p (..., 2)."""
    if shape not in _SDFS:
        raise ValueError(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}")
    return _SDFS[shape](p)


def color_tensor(name: str) -> torch.Tensor:
    """RGB of a named colour as a float tensor (3,) in [0, 1]."""
    return torch.tensor(COLORS[name], dtype=torch.float32) / 255.0


def coverage(specs: list[Spec], size: int) -> torch.Tensor:
    """Antialiased shape masks (N, size, size) in [0, 1]."""
    n = len(specs)
    lin = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1
    yy, xx = torch.meshgrid(lin, lin, indexing="ij")
    grid = torch.stack([xx, yy], -1)  # (H, W, 2)
    out = torch.empty(n, size, size)
    for shape in set(s.shape for s in specs):
        idx = [i for i, s in enumerate(specs) if s.shape == shape]
        prm = torch.tensor([[specs[i].x, specs[i].y, specs[i].size, specs[i].angle, specs[i].stretch]
                            for i in idx])
        cx, cy, r, ang, st = (prm[:, k].view(-1, 1, 1) for k in range(5))
        dx, dy = grid[..., 0] - cx, grid[..., 1] - cy
        a = torch.deg2rad(ang)
        # rotate into the shape's frame, then undo its size and stretch
        lx = (dx * torch.cos(a) + dy * torch.sin(a)) / (r * st)
        ly = (-dx * torch.sin(a) + dy * torch.cos(a)) / (r / st)
        d = shape_sdf(shape, torch.stack([lx, ly], -1)) * r * torch.minimum(st, 1 / st)
        out[idx] = (0.5 - d * size / 2).clamp(0, 1)  # distance in pixels -> coverage
    return out


def render_batch(specs: list[Spec], size: int = 64) -> torch.Tensor:
    """Render specs to a float tensor (N, 3, size, size) in [0, 1]."""
    a = coverage(specs, size).unsqueeze(1)
    fg = torch.stack([color_tensor(s.fg) for s in specs]).view(-1, 3, 1, 1)
    bg = torch.stack([color_tensor(s.bg) for s in specs]).view(-1, 3, 1, 1)
    return bg + (fg - bg) * a


def render(spec: Spec, size: int = 64) -> torch.Tensor:
    """Render one spec to a float tensor (3, size, size) in [0, 1]."""
    return render_batch([spec], size)[0]


def sample_specs(n: int, generator: torch.Generator | int | None = None,
                 ranges: SpecRanges = SpecRanges()) -> list[Spec]:
    """n random specs; the same generator seed gives the same specs."""
    g = torch.Generator().manual_seed(generator) if isinstance(generator, int) else generator
    u = torch.rand(n, 6, generator=g).tolist()
    shapes = torch.randint(len(SHAPES), (n,), generator=g).tolist()
    fgs = torch.randint(len(COLOR_NAMES), (n,), generator=g).tolist()
    # background: any colour but the foreground's
    bgs = (torch.randint(len(COLOR_NAMES) - 1, (n,), generator=g) + 1).tolist()
    specs = []
    for k in range(n):
        size = ranges.size[0] + u[k][0] * (ranges.size[1] - ranges.size[0])
        room = max(1.0 - ranges.margin * size, 0.0)
        specs.append(Spec(
            shape=SHAPES[shapes[k]],
            fg=COLOR_NAMES[fgs[k]],
            bg=COLOR_NAMES[(fgs[k] + bgs[k]) % len(COLOR_NAMES)],
            x=(2 * u[k][1] - 1) * room,
            y=(2 * u[k][2] - 1) * room,
            size=size,
            angle=(2 * u[k][3] - 1) * ranges.angle,
            stretch=math.exp((2 * u[k][4] - 1) * ranges.stretch),
        ))
    return specs


def caption(spec: Spec, template: str = CANONICAL) -> str:
    """Describe a spec, by default as 'a red circle on a blue background'."""
    text = template.format(fg=spec.fg, bg=spec.bg, shape=spec.shape)
    return re.sub(r"\ba (?=[aeiou])", "an ", text)  # 'an orange star'



def template_fields(template: str) -> set[str]:
    """Which of fg / bg / shape a template mentions."""
    return set(re.findall(r"{(\w+)}", template))


def known_words() -> set[str]:
    """Every word a caption may contain (lower case, no punctuation)."""
    words = set(COLORS) | set(SHAPES)
    for t in TEMPLATES:
        words |= set(re.findall(r"[a-z]+", re.sub(r"{\w+}", " ", t)))
    return words | {"an"}  # caption() writes "an orange ..."


def parse_caption(text: str) -> dict[str, str]:
    """Best-effort fg / bg / shape read from a caption in the world's words.

    The first colour word is the foreground unless it directly precedes 'background'
    or is the only colour in an '... on <colour>' phrase.
    """
    words = re.findall(r"[a-z]+", text.lower())
    out: dict[str, str] = {}
    for i, w in enumerate(words):
        if w in SHAPES and "shape" not in out:
            out["shape"] = w
        if w in COLORS:
            after = words[i + 1] if i + 1 < len(words) else ""
            before = words[i - 1] if i > 0 else ""
            if after == "background" or (before == "on" and "fg" in out):
                out.setdefault("bg", w)
            else:
                out.setdefault("fg", w)
    return out


def color_fractions(images: torch.Tensor, tol: float = 0.12) -> dict[str, torch.Tensor]:
    """Per image, the fraction of pixels within `tol` (RGB, 0..1 scale) of each named colour.

    images: (3, H, W) or (N, 3, H, W) in [0, 1].  Returns name -> tensor () or (N,).
    """
    x = images if images.dim() == 4 else images.unsqueeze(0)
    out = {}
    for name in COLORS:
        d = (x - color_tensor(name).to(x).view(1, 3, 1, 1)).abs().amax(1)
        frac = (d < tol).float().mean((1, 2))
        out[name] = frac if images.dim() == 4 else frac[0]
    return out


def nearest_color_fractions(images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per image, the fraction of pixels whose nearest named colour (RGB distance) is each one.

    Unlike `color_fractions` this counts every pixel once, so generated pictures, whose
    colours are never exact, are judged by what a viewer would call them.
    """
    x = images if images.dim() == 4 else images.unsqueeze(0)
    palette = torch.stack([color_tensor(c) for c in COLORS]).to(x)
    dist = ((x.unsqueeze(1) - palette.view(1, -1, 3, 1, 1)) ** 2).sum(2)  # (N, colours, H, W)
    nearest = dist.argmin(1)
    out = {}
    for i, name in enumerate(COLORS):
        frac = (nearest == i).float().mean((1, 2))
        out[name] = frac if images.dim() == 4 else frac[0]
    return out


def with_colors(spec: Spec, fg: str | None = None, bg: str | None = None) -> Spec:
    """The same scene with other colours."""
    return replace(spec, fg=fg or spec.fg, bg=bg or spec.bg)
