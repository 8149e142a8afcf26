"""Weighted and negative prompts: "text:weight". A negative weight pushes away from the text.

    python examples/weighted_prompts.py [--out DIR] [--iterations N] [--size PX] [--seed N]

Makes the same seeded picture twice, without and with a negative prompt, writes both
(weighted.png, negative.png) and prints how CLIP scores each against the unwanted text.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

PROMPTS = ["a yellow star:1", "a purple background:0.5"]  # the star counts twice as much as the background
NEGATIVE = "a yellow circle:-0.5"  # ... and it should not look like a circle


def main(argv: list[str] | None = None, **settings) -> list[Path]:
    """Returns the two paths. `settings` go to clipgan.generate (e.g. other models)."""
    import clipgan
    from clipgan.io import save_image
    from clipgan.pipeline import load_models
    from clipgan.score import score

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("CLIPGAN_EXAMPLES_OUT", ".")))
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--size", type=int, help="pixels per side (default: the model's own, 64 for the bundled ones)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    base = clipgan.Settings().replace(iterations=args.iterations, size=args.size and (args.size, args.size), seed=args.seed, **settings)
    models = load_models(base)  # load once, use twice
    paths = []
    for name, prompts in [("weighted", PROMPTS), ("negative", PROMPTS + [NEGATIVE])]:
        result = clipgan.generate(prompts, models=models, settings=base)
        paths.append(save_image(result.image, args.out / f"{name}.png", result.settings.to_dict()))

    unwanted = NEGATIVE.rsplit(":", 1)[0]
    for s in score(paths, [unwanted], perceptors=models.perceptors):
        print(f"{s.image}: similarity to {unwanted!r} = {s.score:.3f}")
    return paths


if __name__ == "__main__":
    main()
