"""Time to a right picture on the bundled models: the classic recipe against clipgan's defaults.

For each bench prompt (clipgan.toyworld.bench.prompts) and seed, a run goes step by step; every
`--every` steps its picture is judged (the independent shape classifier sees the asked shape, and
both colours hit, as the quality bench judges them). The clock counts only the steps: the judging is
left out. A run that is never right within `--max-steps` counts as not reached (infinitely slow),
so the median is "not reached" when half the runs or more never get there.

    python -m clipgan.bench.right [--n 8] [--max-steps 300] [--every 5] [--json out.json]
        [--variant "cosine: lr_schedule=cosine"]...

A `--variant "NAME: key=value, ..."` adds a recipe: clipgan's defaults with those settings changed
(values read as JSON where they parse, else as text). clipgan's runs are `--max-steps` long, so
settings that follow the run's length (the lr and cutout schedules) span exactly the judged steps;
a variant that names `iterations` runs that long instead (`"default: iterations=100"`: a default run,
its refinement included, judged as it goes).

The classic recipe is clipgan.bench.classic (the peer CLI's defaults: pooled cutouts with its
augmentations, Adam lr 0.1, a PNG save every 50 steps, random codes to start); clipgan's is
`clipgan.generate` with Settings defaults and the same seed. Both use the bundled VQGAN and CLIP.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch

from clipgan.toyworld import bench as quality

RECIPES = ("classic", "clipgan")  # always run; --variant adds more


@dataclass
class Clock:
    """Seconds spent in steps only: `pause()` before judging, `resume()` after."""

    now: Callable[[], float] = time.perf_counter
    spent: float = 0.0
    since: float | None = None

    def __post_init__(self):
        self.since = self.now()

    def pause(self) -> float:
        self.spent += self.now() - self.since
        return self.spent

    def resume(self) -> None:
        self.since = self.now()


class Reached(Exception):
    """Raised from a callback to stop a run once its picture is right."""


# the classifier's training size: a coarse-to-fine draft (32 px) is judged enlarged to it, by pixel
# repetition, so its colour fractions stay exactly the draft's
JUDGED_SIDE = 64


def judge(image: torch.Tensor, triple: tuple[str, str, str], classifier) -> bool:
    fg, shape, bg = triple
    image = image.detach().float().cpu()
    if image.shape[-2:] != (JUDGED_SIDE, JUDGED_SIDE):
        image = torch.nn.functional.interpolate(image, size=(JUDGED_SIDE, JUDGED_SIDE), mode="nearest")
    s = quality.score(image[0], fg, shape, bg, classifier)
    return s["fg_hit"] and s["bg_hit"] and s["shape_hit"]


def classic_time(models, text: str, triple, seed: int, classifier, max_steps: int, every: int) -> float | None:
    from clipgan.bench.classic import ClassicStep
    from clipgan.bench.speed import initial_z
    from clipgan.config import Settings
    from clipgan.models import registry

    vqgan, perceptor = models.vqgan, models.perceptors[0]
    torch.manual_seed(seed)
    with torch.no_grad():
        target = perceptor.encode_text([text]).float()
    side = registry.get_entry(Settings().vqgan).size  # the bundled VQGAN's own size, as clipgan's run uses
    run = ClassicStep(vqgan, perceptor.model, [(target, 1.0, float("-inf"))],
                      initial_z(vqgan, side, torch.device("cpu"), seed))
    clock = Clock()
    for i in range(max_steps):
        run.step(i)
        if (i + 1) % every == 0:
            clock.pause()
            with torch.no_grad():
                right = judge(run.synth(run.z), triple, classifier)
            if right:
                return clock.spent
            clock.resume()
    return None


def clipgan_time(models, text: str, triple, seed: int, classifier, max_steps: int, every: int,
                 changes: dict | None = None) -> float | None:
    import clipgan

    clock = Clock()

    def check(step):
        if (step.index + 1) % every:
            return
        clock.pause()
        if judge(step.image, triple, classifier):
            raise Reached
        clock.resume()

    try:
        # a variant may name its own run length (e.g. the default run's): then the run stops there
        clipgan.generate(text, models=models, seed=seed, callback=check, **{"iterations": max_steps, **(changes or {})})
    except Reached:
        return clock.spent
    return None


def median_or_none(times: list[float | None]) -> float | None:
    """Median with never-right runs as +inf; None when that median is not reached."""
    m = statistics.median([math.inf if t is None else t for t in times])
    return None if math.isinf(m) else m


def parse_variant(text: str) -> tuple[str, dict]:
    """ "NAME: key=value, key=value" -> (NAME, {key: value}); values as JSON where they parse."""
    name, sep, rest = text.partition(":")
    if not sep or not name.strip():
        raise ValueError(f"a variant is 'NAME: key=value, ...', got {text!r}")
    changes = {}
    for item in filter(None, (i.strip() for i in re.split(r",\s*(?=\w+\s*=)", rest))):  # commas inside [32,32] stay
        key, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"{item!r} in variant {name!r} is not key=value")
        try:
            changes[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            changes[key.strip()] = value.strip()
    return name.strip(), changes


def run(n: int = 8, which: str = "main", seed: int = 0, max_steps: int = 300, every: int = 5,
        variants: dict[str, dict] | None = None) -> dict:
    from clipgan.config import Settings
    from clipgan.pipeline import load_models
    from clipgan.toyworld import render as rw
    from clipgan.toyworld.classifier import bundled

    classifier = bundled()
    models = load_models(Settings(device="cpu"))
    seed = quality.first_seed(seed, which)
    timers = dict(zip(RECIPES, (classic_time, clipgan_time)))
    for name, changes in (variants or {}).items():
        Settings().replace(**changes)  # a wrong key or value fails here, before any run
        timers[name] = lambda *a, changes=changes: clipgan_time(*a, changes=changes)
    recipes = list(timers)
    rows = []
    for k, triple in enumerate(quality.prompts(n, which)):
        fg, shape, bg = triple
        text = rw.caption(rw.Spec(shape, fg, bg))
        row = {"prompt": text, "seed": seed + k}
        for name in recipes:
            row[name] = timers[name](models, text, triple, seed + k, classifier, max_steps, every)
        rows.append(row)
        print(json.dumps(row), flush=True)
    medians = {name: median_or_none([r[name] for r in rows]) for name in recipes}
    classic = medians["classic"]
    ratios = {name: None if classic is None or m is None else m / classic
              for name, m in medians.items() if name != "classic"}
    from clipgan.bench.speed import machine

    return {"set": which, "prompts": n, "max_steps": max_steps, "every": every, "variants": variants or {},
            "median_seconds": medians, "ratio": ratios["clipgan"], "ratios": ratios,
            "reached": {name: sum(r[name] is not None for r in rows) for name in recipes},
            "machine": machine(), "threads": torch.get_num_threads(), "rows": rows}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=quality.whole(1), default=8, help="bench prompts")
    p.add_argument("--set", choices=quality.SETS, default="main", dest="which")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-steps", type=quality.whole(1), default=300)
    p.add_argument("--every", type=quality.whole(1), default=5, help="judge the picture every this many steps")
    p.add_argument("--variant", action="append", default=[], type=parse_variant,
                   help='another clipgan recipe: "NAME: key=value, ..." (settings changed from the defaults)')
    p.add_argument("--json", help="also write the report here")
    a = p.parse_args(argv)
    report = run(a.n, a.which, a.seed, a.max_steps, a.every, dict(a.variant))
    show = lambda t: "not reached" if t is None else f"{t:.1f} s"  # noqa: E731
    for name, median in report["median_seconds"].items():
        print(f"{name}: median {show(median)}, right in {report['reached'][name]} of {report['prompts']}")
    for name, ratio in report["ratios"].items():
        if ratio is not None:
            print(f"{name} / classic: {ratio:.2f}x")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
