"""How well clipgan steers the bundled models: a benchmark, not a test.

For a fixed set of prompts from the shapes world it generates one image each (seeded), then
reports how often the named foreground and background colours appear (pixel fractions), how often
an independent shape classifier (trained on renders, not the guiding CLIP) sees the named shape,
and the seconds per image. Settings flags change the generation (e.g. --precision fp32).

    python -m clipgan.toyworld.bench [--n 24] [--image-model vqgan|pixels|fft|strokes] [--iterations N]
        [--size W H] [--precision bf16] [--lr X] [--contrast WORDS|none] [--contrast-weight C] [--contrast-clip CLIP|none] [--other-shapes W]
        [--json out.json] [--picture first.png]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import time

import torch

from clipgan.config import IMAGE_MODELS
from clipgan.toyworld import render as rw

FG_MIN = 0.1  # share of pixels whose nearest toy-world colour is the foreground's
BG_MIN = 0.2  # and the background's


# Prompt sets: "main" is the one the recipe was tuned on; "heldout" (other colour pairs, other
# shapes for them, other seeds) was never looked at while tuning, to show the figures generalize.
SETS = ("main", "heldout")
HELDOUT_SEED = 1000  # added to --seed for the held-out set


def prompts(n: int = 24, which: str = "main") -> list[tuple[str, str, str]]:
    """n fixed (fg, shape, bg) triples covering every colour and shape, fg != bg.

    "heldout" takes the colour pairs "main" skips, each with the shape two further on.
    """
    if n < 1:
        raise ValueError(f"the bench needs at least one prompt, got n={n}")
    colors, shapes = rw.COLOR_NAMES, rw.SHAPES
    shift, start = (0, 0) if which == "main" else (2, 1)
    triples = [(fg, shapes[(i + shift) % len(shapes)], bg) for i, (fg, bg) in
               enumerate(p for p in itertools.product(colors, colors) if p[0] != p[1])]
    step = max(1, len(triples) // n)
    return triples[start::step][:n]


def whole(low: int):
    """An argparse type: a whole number, `low` or more (a count of prompts, steps or workers)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be {low} or more, got {value}")
        return value
    parse.__name__ = f"whole number >= {low}"  # argparse names the type in its errors
    return parse


def score(image: torch.Tensor, fg: str, shape: str, bg: str, classifier) -> dict:
    from clipgan.toyworld.classifier import predict

    fr = rw.nearest_color_fractions(image)
    return {
        "fg_hit": float(fr[fg]) >= FG_MIN,
        "bg_hit": float(fr[bg]) >= BG_MIN,
        "shape_hit": predict(classifier, image[None])[0] == shape,
        "fg_fraction": round(float(fr[fg]), 3),
        "bg_fraction": round(float(fr[bg]), 3),
    }


def first_seed(seed: int, which: str) -> int:
    """The seed of a set's first prompt (prompt k gets first_seed + k): the held-out set has its own."""
    return seed + (HELDOUT_SEED if which != "main" else 0)


def draw(triple: tuple[str, str, str], seed: int, models, settings, classifier, other_weight: float = 0.0):
    """One bench picture: the prompt of (fg, shape, bg), with the other shapes pushed away at
    `other_weight` if given, generated at `seed` and judged -> (row, result)."""
    import clipgan
    from clipgan.io import to_tensor

    fg, shape, bg = triple
    text = rw.caption(rw.Spec(shape, fg, bg))
    negatives = other_shapes(fg, shape, bg, other_weight) if other_weight else []
    result = clipgan.generate([text, *negatives], models=models, settings=settings, seed=seed)
    return {"prompt": text, **score(to_tensor(result.image)[0], fg, shape, bg, classifier)}, result


def other_shapes(fg: str, shape: str, bg: str, weight: float) -> list[str]:
    """The same scene with each other shape, as negative prompts of `weight` each: the colours cancel
    between the prompt and these, so what is left of the pull is the asked shape's."""
    return [f"{rw.caption(rw.Spec(other, fg, bg))}:{-weight:g}" for other in rw.SHAPES if other != shape]


def run(n: int = 24, seed: int = 0, which: str = "main", picture: str | None = None, other_weight: float = 0.0,
        **settings) -> dict:
    from clipgan.config import Settings
    from clipgan.run import load_models_for
    from clipgan.toyworld.classifier import bundled

    classifier = bundled()
    base = Settings().replace(**settings)
    models = load_models_for(base)
    rows, seconds = [], []
    first = first_seed(seed, which)
    for k, triple in enumerate(prompts(n, which)):
        t0 = time.perf_counter()
        row, result = draw(triple, first + k, models, base, classifier, other_weight)
        seconds.append(time.perf_counter() - t0)
        rows.append(row)
        if picture and k == 0:
            result.image.save(picture)
    mean = lambda key: sum(r[key] for r in rows) / len(rows)  # noqa: E731
    return {
        "set": which,
        "prompts": len(rows),
        "fg_color_hit_rate": mean("fg_hit"),
        "bg_color_hit_rate": mean("bg_hit"),
        "color_hit_rate": (mean("fg_hit") + mean("bg_hit")) / 2,
        "shape_accuracy": mean("shape_hit"),
        "seconds_per_image": sum(seconds) / len(seconds),
        "other_shapes_weight": other_weight,
        "settings": {k: v for k, v in base.to_dict().items() if k not in ("prompts", "seed")},
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=whole(1), default=24, help="number of prompts (at least 20 for the README figures)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", choices=SETS, default="main", dest="which",
                        help="prompt set: main (tuned on) or heldout (never tuned on)")
    parser.add_argument("--iterations", type=int)
    parser.add_argument("--precision")
    parser.add_argument("--cutn", type=int)
    parser.add_argument("--size", type=int, nargs=2, metavar=("W", "H"))
    parser.add_argument("--image-model", choices=IMAGE_MODELS)
    parser.add_argument("--strokes", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--lr-schedule", help="constant or cosine (Settings.lr_schedule)")
    parser.add_argument("--cut-schedule", help="constant or ramp (Settings.cut_schedule)")
    parser.add_argument("--guidance-scale", type=float)
    parser.add_argument("--scheduler")
    parser.add_argument("--early-stop", type=int, help="stop each run once its loss stalls over this many steps")
    parser.add_argument("--upscale", type=float, help="refine at this factor of --size after (coarse to fine)")
    parser.add_argument("--upscale-steps", type=int)
    parser.add_argument("--candidates", type=int, help="diffusion: starting noises tried per picture")
    parser.add_argument("--clip", action="append", help="CLIP spec (ARCH:WEIGHTS or alias); repeat for an ensemble")
    parser.add_argument("--diffusion", help="a diffusers UNet folder (default: the bundled toy)")
    parser.add_argument("--init-noise", help="codes, pixels or gradient (Settings.init_noise)")
    parser.add_argument("--vqgan-config", help="a taming yaml (with --vqgan-checkpoint): another VQGAN than the bundled one")
    parser.add_argument("--vqgan-checkpoint")
    parser.add_argument("--contrast", help="words set against each other (Settings.contrast; default: the CLIP's own, none: off)")
    parser.add_argument("--contrast-weight", type=float)
    parser.add_argument("--contrast-clip", action="append",
                        help="a CLIP pulling only the contrast (Settings.contrast_clip; default: the CLIP's partner, none: off)")
    parser.add_argument("--other-shapes", type=float, default=0.0, dest="other_weight", metavar="W",
                        help="add the scene with each other shape as a negative prompt of weight W (e.g. 0.05)")
    parser.add_argument("--json", help="also write the full report here")
    parser.add_argument("--picture", help="also save the first prompt's picture here (the README gallery)")
    args = parser.parse_args(argv)
    if not (math.isfinite(args.other_weight) and args.other_weight >= 0):
        parser.error("--other-shapes must be a number, 0 or more (it is the weight each other shape is pushed away with)")
    # every other option is a Settings field of the same name: given ones override the defaults
    overrides = {k: v for k, v in vars(args).items() if k not in ("n", "seed", "which", "json", "picture", "other_weight")
                 and v is not None}
    if "clip" in overrides:
        overrides["clip"] = tuple(overrides["clip"])
    if "size" in overrides:
        overrides["size"] = tuple(overrides["size"])
    from clipgan.config import Settings
    from clipgan.errors import ClipganError

    try:
        Settings().replace(**overrides)  # a bad value is a one-line error before any model loads
    except ClipganError as e:
        parser.error(str(e))
    report = run(args.n, args.seed, args.which, picture=args.picture, other_weight=args.other_weight, **overrides)
    for r in report["rows"]:
        marks = "".join("x" if r[k] else "." for k in ("fg_hit", "bg_hit", "shape_hit"))
        print(f"{marks}  fg {r['fg_fraction']:.2f}  bg {r['bg_fraction']:.2f}  {r['prompt']}")
    print(f"prompts {report['prompts']}  colour hit rate {report['color_hit_rate']:.0%} "
          f"(fg {report['fg_color_hit_rate']:.0%}, bg {report['bg_color_hit_rate']:.0%})  "
          f"shape accuracy {report['shape_accuracy']:.0%}  {report['seconds_per_image']:.1f} s/image")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
