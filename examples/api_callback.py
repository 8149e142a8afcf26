"""The Python API with a per-step callback: watch the loss, keep frames, make a progress video.

    python examples/api_callback.py [--out DIR] [--iterations N] [--every N] [--size PX] [--seed N]

`clipgan.generate(..., callback=fn)` calls fn(step) after every optimization step. A step
carries its index, total loss, loss per prompt, latent `z` and the decoded image (a tensor in
[0, 1]), so saving a frame needs no second decode. Here the callback prints the losses and
streams every --every-th image into progress.gif; the result goes to callback.png.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def main(argv: list[str] | None = None, **settings) -> list[Path]:
    """Returns [picture, video]. `settings` go to clipgan.generate (e.g. other models)."""
    import clipgan
    from clipgan.io import save_image
    from clipgan.video import VideoWriter

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("CLIPGAN_EXAMPLES_OUT", ".")))
    parser.add_argument("--prompt", default="a purple square on an orange background")
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--every", type=int, default=5, help="keep a frame every N steps")
    parser.add_argument("--size", type=int, help="pixels per side (default: the model's own, 64 for the bundled ones)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    with VideoWriter(args.out / "progress.gif", fps=10) as video:

        def on_step(step):  # step: clipgan.optimize.Step
            if step.index % args.every == 0 or step.index == args.iterations - 1:
                video.append(step.image)
                parts = ", ".join(f"{label} {value:.3f}" for label, value in step.losses.items())
                print(f"step {step.index:4d}  loss {step.loss:.4f}  ({parts})", flush=True)

        result = clipgan.generate(args.prompt, callback=on_step, iterations=args.iterations,
                                  size=args.size and (args.size, args.size), seed=args.seed, **settings)
    picture = save_image(result.image, args.out / "callback.png", result.settings.to_dict())
    print(f"{picture} and {video.path} ({video.frames} frames); loss {result.losses[0]:.3f} -> {result.losses[-1]:.3f}")
    return [picture, video.path]


if __name__ == "__main__":
    main()
