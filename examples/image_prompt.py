"""An image prompt plus an init image: steer towards a picture's look, start from another picture.

    python examples/image_prompt.py [--out DIR] [--iterations N] [--size PX] [--seed N]

Draws two small pictures with PIL (so the example needs no files): reference.png, a green
triangle on black, used as an image prompt (`--image-prompt` on the command line), and
start.png, an orange-to-white gradient, used as the init image (`--init-image`). The text
prompt and the image prompt pull together; init_weight keeps some of the start. Writes
reference.png, start.png and image-prompt.png.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from PIL import Image, ImageDraw

PROMPT = "a green triangle"


def draw_reference(path: Path, size: int) -> Path:
    image = Image.new("RGB", (size, size), (0, 0, 0))
    ImageDraw.Draw(image).polygon([(size * 0.5, size * 0.15), (size * 0.85, size * 0.8), (size * 0.15, size * 0.8)],
                                  fill=(40, 200, 60))
    image.save(path)
    return path


def draw_start(path: Path, size: int) -> Path:
    image = Image.linear_gradient("L").resize((size, size)).convert("RGB")  # black at the top, white at the bottom
    orange = Image.new("RGB", (size, size), (240, 140, 20))
    Image.blend(orange, image, 0.5).save(path)
    return path


def main(argv: list[str] | None = None, **settings) -> Path:
    """Returns the path of the result. `settings` go to clipgan.generate (e.g. other models)."""
    import clipgan
    from clipgan.io import save_image

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("CLIPGAN_EXAMPLES_OUT", ".")))
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--size", type=int, default=64, help="pixels per side (64: the bundled models' own size)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    reference = draw_reference(args.out / "reference.png", args.size)
    start = draw_start(args.out / "start.png", args.size)
    result = clipgan.generate(
        PROMPT,
        image_prompts=[f"{reference}:0.5"],  # path:weight, like a text prompt
        init_image=str(start),
        init_weight=0.1,  # a gentle pull back towards the start
        iterations=args.iterations, size=(args.size, args.size), seed=args.seed, **settings)
    path = save_image(result.image, args.out / "image-prompt.png", result.settings.to_dict())
    print(f"{path}: {PROMPT!r} + image prompt {reference.name}, started from {start.name}")
    return path


if __name__ == "__main__":
    main()
