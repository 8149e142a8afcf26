"""Animations, every one a sequence of short `iterate()` runs: morph, zoom and restyle.

Each function checks its input and loads the models when called, then returns an iterator
of `Frame`s that does the work as it is consumed, so frames can stream into a VideoWriter.
Keyword arguments are either fields of the function's options dataclass or `Settings`
fields (size, cutn, lr, seed, models, ...), exactly as for `clipgan.generate`.

Every frame carries what the rest of the animation needs (`Frame.carry`); passing it back as
`resume=` with the same arguments yields the frames after it, equal to an uninterrupted run's.

Torch loads inside the functions: the CLI reads the option defaults from this module.
"""

from __future__ import annotations

import ast
import dataclasses
import itertools
import math
import operator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

from clipgan.config import Settings
from clipgan.errors import ClipganError, brief

if TYPE_CHECKING:
    from PIL import Image
    from torch import Tensor

    from clipgan.losses.terms import Guide, GuideSchedule
    from clipgan.optimize import Step
    from clipgan.runsetup import Models

StepCallback = Callable[["Step"], None]

EASINGS: dict[str, Callable[[float], float]] = {
    "linear": lambda x: x,
    "smoothstep": lambda x: x * x * (3 - 2 * x),
    "cosine": lambda x: (1 - math.cos(math.pi * x)) / 2,
}
MODES = ("guided", "latent")


@dataclass
class Frame:
    """One frame of an animation, with what made it."""

    index: int
    image: "Tensor"  # (1, 3, H, W) in [0, 1]: VideoWriter.append takes it as is
    z: "Tensor"  # the latent it was decoded from
    seed: int
    loss: float | None = None  # total loss of the frame's last step; None when only decoded
    prompts: tuple[str, ...] = ()  # the prompts that guided it
    keyframe: int | None = None  # morph: index of the prompt this frame is the keyframe of
    mix: float = 0.0  # morph: weight of the next prompt (0 at a keyframe)
    carry: dict | None = None  # what `resume=` needs to go on after this frame (latents, RNG states)

    def pil(self) -> "Image.Image":
        from clipgan.io import to_pil

        return to_pil(self.image)


# ---------------------------------------------------------------- options


@dataclass
class MorphOptions:
    frames_per_transition: int = 24  # frames from one keyframe up to, not including, the next
    mode: str = "guided"  # guided: a few steps per frame towards blended prompts; latent: slerp z and decode
    loop: bool = False  # add a transition from the last prompt back to the first
    keyframe_steps: int | None = None  # steps for each keyframe; None: Settings.iterations
    steps_per_frame: int = 8  # guided: steps for each in-between frame
    easing: str = "smoothstep"  # how the blend weight slides: linear, smoothstep or cosine
    anchor: float = 0.3  # guided: move each frame's start this far towards the latent path, so it lands on the next keyframe

    def validate(self) -> None:
        _at_least(self.frames_per_transition, 1, "frames-per-transition")
        _at_least(self.steps_per_frame, 1, "steps-per-frame")
        if self.keyframe_steps is not None:
            _at_least(self.keyframe_steps, 1, "keyframe-steps")
        _choice(self.mode, MODES, "mode")
        _choice(self.easing, EASINGS, "easing")
        _between(self.anchor, 0, 1, "anchor")


@dataclass
class ZoomOptions:
    frames: int = 60  # frames in the video, the first included
    steps_per_frame: int = 8  # steps for each frame after the first
    first_steps: int | None = None  # steps for frame 0; None: Settings.iterations
    zoom: float | str = 1.02  # scale per frame (>1 zooms in): a number or an expression of t, the frame index
    angle: float | str = 0.0  # degrees per frame, counter-clockwise; number or expression
    shift_x: float | str = 0.0  # pixels per frame, positive moves the picture right; number or expression
    shift_y: float | str = 0.0  # pixels per frame, positive moves the picture down; number or expression

    def validate(self) -> None:
        _at_least(self.frames, 1, "frames")
        _at_least(self.steps_per_frame, 1, "steps-per-frame")
        if self.first_steps is not None:
            _at_least(self.first_steps, 1, "first-steps")
        for name in ("zoom", "angle", "shift_x", "shift_y"):
            expr = Expr(getattr(self, name), name.replace("_", "-"))
            low, high = _RANGES[name]
            for t in range(self.frames):  # cheap, and a bad value fails before any work
                value = expr(t)
                if not low <= value <= high:  # also keeps the warp's float32 matrix finite
                    raise ClipganError(f"{name.replace('_', '-')} must stay within {low:g} to {high:g}, "
                                       f"but {expr.text} is {value:g} at t={t}")


# what a frame's warp may do: zoom out to 1/100 or in 100x, any angle, shift up to a million px
_RANGES = {"zoom": (0.01, 100.0), "angle": (-1e9, 1e9), "shift_x": (-1e6, 1e6), "shift_y": (-1e6, 1e6)}


@dataclass
class RestyleOptions:
    steps_per_frame: int = 8  # steps for each frame
    blend: float = 0.5  # share of the previous output in each frame's start image (0: the source frame alone)
    max_frames: int | None = None  # stop after this many frames; None: the whole video

    def validate(self) -> None:
        _at_least(self.steps_per_frame, 1, "steps-per-frame")
        _between(self.blend, 0, 1, "blend")
        if self.max_frames is not None:
            _at_least(self.max_frames, 1, "max-frames")


def _at_least(value, low: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ClipganError(f"{name} must be an integer of at least {low}, got {brief(value)}")


def _between(value, low: float, high: float, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ClipganError(f"{name} must be a number from {low} to {high}, got {brief(value)}")


def _choice(value, choices, name: str) -> None:
    if not isinstance(value, str) or value not in choices:
        raise ClipganError(f"unknown {name} {brief(value)}; choose from {', '.join(choices)}")


# ---------------------------------------------------------------- safe expressions of t

_FUNCTIONS: dict[str, Callable] = {
    "sin": math.sin, "cos": math.cos, "tan": math.tan, "exp": math.exp, "log": math.log,
    "sqrt": math.sqrt, "abs": abs, "min": min, "max": max, "floor": math.floor, "ceil": math.ceil,
}
_CONSTANTS = {"pi": math.pi, "e": math.e}
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.Pow: operator.pow, ast.Mod: operator.mod}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_MAX_LENGTH = 300


class Expr:
    """A number, or an arithmetic expression of `t` such as "1 + 0.01*sin(t/10)".

    The text is parsed with `ast` and walked by hand: only numbers, t, pi, e, + - * / % **
    and the functions in _FUNCTIONS are allowed, so nothing the user writes can run code.
    """

    def __init__(self, value: float | int | str, name: str = "expression"):
        self.name = name
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            self.text, self._tree = repr(value), ast.Expression(ast.Constant(float(value)))
        elif isinstance(value, str):
            self.text = value.strip()
            self._tree = self._parse(self.text)
        else:
            raise ClipganError(f"{name} must be a number or an expression of t, got {brief(value)}")

    def _parse(self, text: str) -> ast.Expression:
        if not text:
            raise ClipganError(f"{self.name} is empty")
        if len(text) > _MAX_LENGTH:
            raise ClipganError(f"{self.name} is too long (at most {_MAX_LENGTH} characters)")
        try:
            tree = ast.parse(text, mode="eval")
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            raise ClipganError(f"{self.name} {text!r} is not a valid expression") from None
        for node in ast.walk(tree):
            self._check(node)
        return tree

    def _check(self, node: ast.AST) -> None:
        ok = isinstance(node, (ast.Expression, ast.Load)) or type(node) in _BINARY or type(node) in _UNARY
        if isinstance(node, ast.Constant):
            ok = isinstance(node.value, (int, float)) and not isinstance(node.value, bool)
        elif isinstance(node, ast.Name):
            ok = node.id == "t" or node.id in _CONSTANTS or node.id in _FUNCTIONS
        elif isinstance(node, ast.Call):
            ok = isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS and not node.keywords
        elif isinstance(node, (ast.BinOp, ast.UnaryOp)):
            ok = type(node.op) in _BINARY or type(node.op) in _UNARY
        if not ok:
            what = ast.get_source_segment(self.text, node) if hasattr(node, "lineno") else type(node).__name__
            raise ClipganError(f"{self.name} {self.text!r}: {what!r} is not allowed "
                               f"(use numbers, t, pi, e, + - * / % ** and {', '.join(_FUNCTIONS)})")

    def __call__(self, t: float) -> float:
        try:
            value = float(self._eval(self._tree.body, float(t)))
        except (ArithmeticError, ValueError, TypeError) as e:
            raise ClipganError(f"{self.name} {self.text!r} cannot be computed at t={t:g} ({e})") from None
        if not math.isfinite(value):
            raise ClipganError(f"{self.name} {self.text!r} is not finite at t={t:g}")
        return value

    def _eval(self, node: ast.AST, t: float):
        if isinstance(node, ast.Constant):
            return float(node.value)  # floats throughout: 10**10**10 overflows instead of hanging
        if isinstance(node, ast.Name):
            if node.id == "t":
                return t
            if node.id in _CONSTANTS:
                return _CONSTANTS[node.id]
            raise TypeError(f"{node.id} is a function")
        if isinstance(node, ast.BinOp):
            return _BINARY[type(node.op)](self._eval(node.left, t), self._eval(node.right, t))
        if isinstance(node, ast.UnaryOp):
            return _UNARY[type(node.op)](self._eval(node.operand, t))
        if isinstance(node, ast.Call):
            # a float again at once: floor/ceil return ints, and int ** int never overflows, it hangs
            return float(_FUNCTIONS[node.func.id](*(self._eval(a, t) for a in node.args)))
        raise TypeError(f"unexpected {type(node).__name__}")  # _check lets nothing else through

    def __repr__(self) -> str:
        return f"Expr({self.text!r})"


# ---------------------------------------------------------------- prompts over time

PromptItem = str | tuple[int, str]


def prompt_schedule(items: Sequence[PromptItem], frames: int) -> Callable[[int], tuple[str, ...]]:
    """frame index -> the prompts active then.

    A string is active throughout; "a ^ b ^ c" inside it is a story whose parts are spread
    evenly over the frames (part j from frame round(j * frames / n)), and a part written
    "@k text" starts at frame k. A pair (k, "text") is active from frame k until the next
    pair's start.
    """
    from clipgan.prompts import part_at, story_parts

    if isinstance(items, str):
        items = [items]
    stories: list[list[tuple[int, str]]] = []
    timed: list[tuple[int, str]] = []
    for item in items:
        if isinstance(item, str):
            stories.append(story_parts(item, frames, unit="frame"))
        elif isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[1], str):
            start = item[0]
            if isinstance(start, bool) or not isinstance(start, int) or start < 0:
                raise ClipganError(f"a prompt's start frame must be an integer of at least 0, got {start!r}")
            timed.append((start, item[1]))
        else:
            raise ClipganError(f"a prompt is a string or a (start frame, text) pair, got {item!r}")
    if timed:
        stories.append(sorted(timed, key=lambda p: p[0]))
    if not stories:
        raise ClipganError("give at least one prompt")

    def active(t: int) -> tuple[str, ...]:
        return tuple(p for p in (part_at(story, t) for story in stories) if p)

    return active


def _check_prompts(texts) -> None:
    from clipgan.prompts import parse_prompts

    parse_prompts(texts)  # "cat:abc" fails here, before the models load


def _check_schedule(schedule, frames: int) -> None:
    seen = set()
    for t in range(frames):
        active = schedule(t)
        if not active:
            raise ClipganError(f"no prompt is active at frame {t}")
        seen.update(active)
    _check_prompts(seen)


# ---------------------------------------------------------------- shared machinery


def _split_kwargs(options_cls, settings: Settings | None, kwargs: dict):
    """Keyword arguments -> (options, settings): each name belongs to one of the two dataclasses."""
    option_names = {f.name for f in dataclasses.fields(options_cls)}
    setting_names = {f.name for f in dataclasses.fields(Settings)}
    unknown = sorted(set(kwargs) - option_names - setting_names)
    if unknown:
        raise TypeError(f"unknown argument(s): {', '.join(unknown)}")
    options = options_cls(**{k: v for k, v in kwargs.items() if k in option_names})
    options.validate()
    base = settings or Settings()
    s = base.replace(**{k: v for k, v in kwargs.items() if k in setting_names})
    return options, s


def _setup(s: Settings, models: "Models | None", box_of: tuple[int, int] | None = None):
    """Models loaded, seed drawn, size fitted to the image model (and the size a box that a source of
    size `box_of` fits in), memory checked: the settings as they will run."""
    from clipgan.runsetup import prepare

    # keyframes and frames all run at this size: refused before the first
    return prepare(s, models, box_of)


def _refuse_pictures(s: Settings, what: str) -> None:
    from clipgan.runsetup import refuse_pictures

    refuse_pictures(s, what)


def _carry(next_frame: int, **values) -> dict:
    """Taken just before a frame is yielded: nothing draws random numbers until the next frame starts."""
    from clipgan.runsetup import rng_state

    return {"next": next_frame, **values, **rng_state()}


def _resumed(resume: dict | None, s: Settings, models: "Models") -> dict:
    """The carry's values on the models' device, with its RNG states put back; {} without one.
    A carry that does not fit this run (edited, or of another size or model) is refused first."""
    if resume is None:
        return {}
    import torch

    from clipgan.interrupt import move
    from clipgan.runsetup import restore_rng, z_shape

    next_frame = resume.get("next") if isinstance(resume, dict) else None
    if isinstance(next_frame, bool) or not isinstance(next_frame, int) or next_frame < 0:
        raise ClipganError(f"resume: the carry's next frame must be a whole number of at least 0, got {brief(next_frame)}")
    rng = resume.get("rng")
    if not isinstance(rng, torch.Tensor) or rng.dtype != torch.uint8 or rng.shape != torch.get_rng_state().shape:
        raise ClipganError("resume: the carry's random number generator state is not torch's")
    w, h = s.size
    want = {"z": z_shape(s, models), "image": (1, 3, h, w), "previous": (1, 3, h, w)}

    def check(value, name):
        if name in want and value is not None:  # before the dict case: a dict where a tensor belongs is refused too
            if not isinstance(value, torch.Tensor):  # an edited state: a list where a tensor belongs
                raise ClipganError(f"resume: the carry's {name} is not a tensor but {brief(value)}")
            if tuple(value.shape) != want[name] or not value.is_floating_point():
                raise ClipganError(f"resume: the carry's {name} is {tuple(value.shape)}, but this run's is {want[name]} "
                                   "(a state of another size or model)")
        elif isinstance(value, dict):
            for k, v in value.items():
                check(v, k if isinstance(k, str) else name)

    check({k: v for k, v in resume.items() if k not in ("rng", "cuda_rng")}, "carry")
    restore_rng(resume)
    return move({k: v for k, v in resume.items() if k not in ("rng", "cuda_rng")}, models.device)


class _Runner:
    """Short iterate() runs with the settings' optimizer, and text guides cached by prompt set."""

    def __init__(self, s: Settings, models: "Models", callback: StepCallback | None):
        self.s, self.models, self.callback = s, models, callback
        self._guides: dict[tuple[str, ...], list] = {}

    def guides(self, prompts: Sequence[str]) -> list["Guide"]:
        from clipgan.runsetup import build_guides

        key = tuple(prompts)
        if key not in self._guides:
            self._guides[key] = build_guides(self.s.replace(prompts=list(key)), self.models)
        return self._guides[key]

    def run(self, guides, z: "Tensor", steps: int) -> "Step":
        from clipgan.runsetup import model_of, run_loop

        last, _ = run_loop(self.s, self.models, model_of(self.s, self.models, z), guides,
                           callback=self.callback, steps=steps)
        return last

    def render(self, z: "Tensor") -> "Tensor":
        """The picture of parameters `z`, without a step."""
        import torch

        from clipgan.runsetup import model_of

        with torch.no_grad():
            return model_of(self.s, self.models, z).render(z)

    def encode(self, image: "Tensor") -> "Tensor":
        """The parameters whose picture is `image`."""
        from clipgan.runsetup import model_from_image

        return model_from_image(self.s, self.models, image).z.detach()


def slerp(a: "Tensor", b: "Tensor", w: float) -> "Tensor":
    """Spherical interpolation of two latents taken as whole vectors; exactly a at 0 and b at 1."""
    import torch

    if w <= 0:
        return a.clone()
    if w >= 1:
        return b.clone()
    af, bf = a.flatten().float(), b.flatten().float()  # float32: MPS has no float64
    cos = (af @ bf / (af.norm() * bf.norm()).clamp_min(1e-12)).clamp(-1, 1)
    theta = torch.acos(cos).item()
    if theta < 1e-4:  # nearly parallel: the formula divides by ~0
        return torch.lerp(a, b, w)
    out = (math.sin((1 - w) * theta) * af + math.sin(w * theta) * bf) / math.sin(theta)
    return out.view_as(a).to(a.dtype)


def _blend(a: "GuideSchedule", b: "GuideSchedule", w: float) -> "GuideSchedule":
    """Guides scoring both prompt sets, A's targets weighted 1-w and B's w (schedules: step by step).
    Guides pair by position; one that only A or B has (a contrast guide where the other prompt names
    no contrast word) keeps its own targets at its own share."""
    from clipgan.losses.terms import Guide, Target

    if callable(a) or callable(b):
        return lambda step: _blend(a(step) if callable(a) else a, b(step) if callable(b) else b, w)

    def scaled(g, scale, tag):
        return [Target(f"{tag}:{t.label}", t.embeds, t.weight * scale, t.stop) for t in g.targets] if g and scale > 0 else []

    out = []
    for ga, gb in itertools.zip_longest(a, b):
        g, targets = ga or gb, scaled(ga, 1 - w, "a") + scaled(gb, w, "b")
        if targets:
            out.append(Guide(g.perceptor, g.cutouts, targets))
    return out


# ---------------------------------------------------------------- morph


def morph_frame_count(prompts: int, frames_per_transition: int, loop: bool = False) -> int:
    """Frames a morph yields: each transition gives its start keyframe and the frames up to the
    next one; the last keyframe closes the video, except with loop, where the video wraps
    back onto its first frame. So (K-1)*N + 1, or K*N with loop, for K prompts."""
    if loop:
        return prompts * frames_per_transition
    return (prompts - 1) * frames_per_transition + 1


def morph(
    prompts: Sequence[str],
    *,
    models: "Models | None" = None,
    settings: Settings | None = None,
    callback: StepCallback | None = None,
    resume: dict | None = None,
    checkpoint: Callable[[dict], None] | None = None,
    **kwargs,
) -> Iterator[Frame]:
    """Frames that morph from prompt to prompt (each may be "a | b:0.5"); see `MorphOptions`.

    Keyframe 0 is optimized from the seeded start for `keyframe_steps`, keyframe k from
    keyframe k-1's latent. In between, at blend weight w = easing(j / N):
    guided: the frame starts from the previous frame's latent (moved `anchor` of the way
    towards slerp(zA, zB, w)) and takes `steps_per_frame` steps towards A at 1-w and B at w;
    latent: the frame is the decode of slerp(zA, zB, w). `morph_frame_count` gives the count.
    `callback(step)` sees every optimization step; `checkpoint(carry)` gets a carry, good for
    `resume=` like a frame's, each time a keyframe is done (several run before a frame).
    """
    if isinstance(prompts, str):
        prompts = [prompts]
    prompts = list(prompts)
    opts, s = _split_kwargs(MorphOptions, settings, kwargs)
    if len(prompts) < 2:
        raise ClipganError("a morph needs at least two prompts")
    for p in prompts:
        _check_prompts([p])
    s, models = _setup(s, models)
    return _morph(prompts, opts, s, models, callback, resume, checkpoint)


def _morph(prompts: list[str], o: MorphOptions, s: Settings, models: "Models", callback, resume,
           checkpoint=None) -> Iterator[Frame]:
    import torch

    from clipgan.runsetup import initial_z

    torch.manual_seed(s.seed)
    runner = _Runner(s, models, callback)
    guides = [runner.guides([p]) for p in prompts]
    ease, n = EASINGS[o.easing], o.frames_per_transition
    key_steps = o.keyframe_steps or s.iterations
    # one entry per frame: frame j of the transition a -> b (j = 0: a's keyframe); b None closes the video
    order = list(range(len(prompts))) + ([0] if o.loop else [])
    plan = [(a, b, j) for a, b in zip(order, order[1:]) for j in range(n)]
    if not o.loop:
        plan.append((len(prompts) - 1, None, 0))
    carried = _resumed(resume, s, models)
    keys: dict[int, dict] = carried.get("keys", {})  # k -> z, image and loss of keyframe k
    if not isinstance(keys, dict) or any(k not in range(len(prompts)) or not isinstance(v, dict) or not {"z", "image"} <= set(v)
                                         for k, v in keys.items()):
        raise ClipganError("resume: the carry's keyframes do not fit these prompts")
    z = carried.get("z")  # guided: the latent of the previous frame

    def keyframe(k: int, index: int) -> dict:
        if k not in keys:
            start = keys[k - 1]["z"] if k else initial_z(s, models)
            step = runner.run(guides[k], start, key_steps)
            keys[k] = {"z": step.z, "image": step.image, "loss": step.loss}
            if checkpoint is not None:  # resumes at frame `index` with this keyframe made
                checkpoint(_carry(index, keys=dict(keys), z=z))
        return keys[k]

    for index in range(carried.get("next", 0), len(plan)):
        a, b, j = plan[index]
        if j == 0:
            ka = keyframe(a, index)
            if b is not None:  # the transition's target first, so each frame can aim at it
                keyframe(b, index)
            z = ka["z"]
            frame = Frame(index, ka["image"], ka["z"], s.seed, ka["loss"], (prompts[a],), keyframe=a)
        else:
            ka, kb, w = keys[a], keys[b], ease(j / n)
            path = slerp(ka["z"], kb["z"], w)
            mixed = (prompts[a], prompts[b])
            if o.mode == "latent":
                image = runner.render(path)
                frame = Frame(index, image, path, s.seed, None, mixed, mix=w)
            else:
                step = runner.run(_blend(guides[a], guides[b], w), slerp(z, path, o.anchor), o.steps_per_frame)
                z = step.z
                frame = Frame(index, step.image, step.z, s.seed, step.loss, mixed, mix=w)
        frame.carry = _carry(index + 1, keys=dict(keys), z=z)
        yield frame


# ---------------------------------------------------------------- zoom


def zoom(
    prompts: Sequence[PromptItem],
    *,
    models: "Models | None" = None,
    settings: Settings | None = None,
    callback: StepCallback | None = None,
    resume: dict | None = None,
    **kwargs,
) -> Iterator[Frame]:
    """`frames` frames, each the previous one zoomed, rotated and shifted, re-encoded and
    optimized for `steps_per_frame` steps; see `ZoomOptions` and `prompt_schedule`.

    Frame 0 comes from the seeded start (or settings.init_image) in `first_steps` steps.
    The transform for frame t is evaluated at t (1, 2, ...).
    """
    opts, s = _split_kwargs(ZoomOptions, settings, kwargs)
    schedule = prompt_schedule(prompts, opts.frames)
    _check_schedule(schedule, opts.frames)
    _refuse_pictures(s, "zoom")
    s, models = _setup(s, models)
    return _zoom(schedule, opts, s, models, callback, resume)


def warp(image: "Tensor", zoom: float = 1.0, angle: float = 0.0, shift_x: float = 0.0, shift_y: float = 0.0) -> "Tensor":
    """Scale about the centre, rotate (degrees, counter-clockwise), then shift (pixels).
    Edges revealed by zooming out or shifting are filled by reflection."""
    import torch
    from kornia.geometry.transform import get_rotation_matrix2d, warp_affine

    if zoom == 1 and angle == 0 and shift_x == 0 and shift_y == 0:
        return image
    _, _, h, w = image.shape
    dev = image.device
    center = torch.tensor([[(w - 1) / 2, (h - 1) / 2]], device=dev)
    matrix = get_rotation_matrix2d(center, torch.tensor([float(angle)], device=dev), torch.full((1, 2), float(zoom), device=dev))
    matrix[:, 0, 2] += shift_x
    matrix[:, 1, 2] += shift_y
    return warp_affine(image, matrix, (h, w), padding_mode="reflection", align_corners=True).clamp(0, 1)


def _zoom(schedule, o: ZoomOptions, s: Settings, models: "Models", callback, resume) -> Iterator[Frame]:
    import torch

    from clipgan.runsetup import initial_z

    torch.manual_seed(s.seed)
    runner = _Runner(s, models, callback)
    params = [Expr(getattr(o, name), name) for name in ("zoom", "angle", "shift_x", "shift_y")]
    z = initial_z(s, models)
    carried = _resumed(resume, s, models)
    image = carried.get("image")  # the previous frame
    for t in range(carried.get("next", 0), o.frames):
        if image is not None:
            z = runner.encode(warp(image, *(p(t) for p in params)))
        active = schedule(t)
        step = runner.run(runner.guides(active), z, o.steps_per_frame if t else (o.first_steps or s.iterations))
        image = step.image
        yield Frame(t, step.image, step.z, s.seed, step.loss, active, carry=_carry(t + 1, image=image))


# ---------------------------------------------------------------- restyle


def restyle(
    video: str,
    prompts: Sequence[PromptItem],
    *,
    models: "Models | None" = None,
    settings: Settings | None = None,
    callback: StepCallback | None = None,
    resume: dict | None = None,
    **kwargs,
) -> Iterator[Frame]:
    """Every frame of `video` restyled towards the prompts; see `RestyleOptions`.

    The output keeps the source's aspect ratio inside settings.size (by default the model's own
    size, `pipeline.default_size`) and one frame per source frame (write it at
    `clipgan.video.video_fps(video)` to keep the timing). Each frame starts
    from the source frame mixed with the previous output (`blend`), encoded.
    """
    from clipgan.video import iter_frames, read_video_info

    opts, s = _split_kwargs(RestyleOptions, settings, kwargs)
    _refuse_pictures(s, "restyle")
    count, _, _ = read_video_info(video)
    if count < 1:
        raise ClipganError(f"{video} has no frames")
    count = min(count, opts.max_frames or count)
    schedule = prompt_schedule(prompts, count)
    _check_schedule(schedule, count)
    frames = iter_frames(video)
    first = next(frames)
    frames.close()
    s, models = _setup(s, models, box_of=first.size)
    return _restyle(video, count, schedule, opts, s, models, callback, resume)


def _restyle(video, count: int, schedule, o: RestyleOptions, s: Settings, models: "Models", callback, resume) -> Iterator[Frame]:
    import torch

    from clipgan.io import to_tensor
    from clipgan.video import iter_frames

    torch.manual_seed(s.seed)
    runner = _Runner(s, models, callback)
    carried = _resumed(resume, s, models)
    previous = carried.get("previous")  # the previous output
    for t, source in enumerate(iter_frames(video)):
        if t >= count:
            break
        if t < carried.get("next", 0):
            continue
        start = to_tensor(source, s.size, models.device)
        if previous is not None and o.blend:
            start = torch.lerp(start, previous, o.blend)
        z = runner.encode(start)
        active = schedule(t)
        step = runner.run(runner.guides(active), z, o.steps_per_frame)
        previous = step.image
        yield Frame(t, step.image, step.z, s.seed, step.loss, active, carry=_carry(t + 1, previous=previous))
