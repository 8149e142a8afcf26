"""Text to picture: the smallest clipgan program.

    python examples/basic_generation.py [--out DIR] [--prompt TEXT] [--iterations N] [--size PX] [--seed N]

Writes basic.png into --out (or $CLIPGAN_EXAMPLES_OUT, default: the current folder). The PNG
carries its settings, so `clipgan generate --from-png basic.png -i 300` reruns it with more steps.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def main(argv: list[str] | None = None, **settings) -> Path:
    """Returns the path of the picture. `settings` go to clipgan.generate (e.g. other models)."""
    import clipgan
    from clipgan.io import save_image

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("CLIPGAN_EXAMPLES_OUT", ".")))
    parser.add_argument("--prompt", default="a red circle on a blue background")
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--size", type=int, help="pixels per side (default: the model's own, 64 for the bundled ones)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    result = clipgan.generate(args.prompt, iterations=args.iterations, size=args.size and (args.size, args.size),
                              seed=args.seed, **settings)
    path = save_image(result.image, args.out / "basic.png", result.settings.to_dict())
    print(f"{path}: {args.prompt!r}, seed {result.seed}, final loss {result.losses[-1]:.3f}")
    return path


if __name__ == "__main__":
    main()
