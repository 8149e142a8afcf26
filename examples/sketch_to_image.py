"""Start from a crude drawing: a red blob on the left of a blue background.

The sketch is encoded as the starting latent (like `clipgan generate --init-image sketch.png`)
and the prompt refines it; the blob stays where it was drawn.

    python examples/sketch_to_image.py --out sketch-out
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw

PROMPT = "a red circle on a blue background"


def draw_sketch(path: Path, size: int = 64) -> Path:
    """A wobbly red blob in the left half, on flat blue: what a quick mouse drawing looks like."""
    image = Image.new("RGB", (size, size), (30, 70, 220))
    d = ImageDraw.Draw(image)
    s = size / 64
    d.ellipse([6 * s, 18 * s, 30 * s, 46 * s], fill=(220, 30, 30))
    d.ellipse([14 * s, 14 * s, 34 * s, 38 * s], fill=(220, 30, 30))
    image.save(path)
    return path


def main(argv: list[str] | None = None, **settings) -> Path:
    """Draws the sketch, generates from it and returns the output path. `settings` go to generate()."""
    import clipgan

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("sketch-out"), help="folder for sketch.png and result.png")
    parser.add_argument("--prompt", default=PROMPT)
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    sketch = draw_sketch(args.out / "sketch.png", args.size)
    settings = dict(dict(init_weight=0.5, device="cpu"), **settings)  # init_weight: keep the drawn layout
    result = clipgan.generate(args.prompt, init_image=str(sketch), size=(args.size, args.size),
                              iterations=args.iterations, seed=args.seed, **settings)
    out = args.out / "result.png"
    result.image.save(out)
    print(f"sketch: {sketch}\nresult: {out} (seed {result.seed})")
    return out


if __name__ == "__main__":
    main()
