"""The README's gallery: a few pictures and a morph GIF, made with the bundled models.

    make gallery                      # = python examples/gallery.py (writes docs/gallery/)
    python examples/gallery.py --out some/folder --iterations 20

Seeded, so a rerun on the same machine and models gives the same files. Keep them small:
the README shows them and they are committed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs" / "gallery"
PICTURES = {  # file -> prompt
    "red-circle.png": "a red circle on a blue background",
    "yellow-star.png": "a yellow star on a purple background",
    "white-cross.png": "a white cross on a black background",
    "green-triangle.png": "a green triangle on an orange background",
}
MORPH = ["a red circle on a blue background", "a yellow star on a blue background", "a white square on a black background"]
VIDEO = "morph.gif"


def main(argv: list[str] | None = None, **settings) -> list[Path]:
    """Returns the files written. `settings` go to clipgan.generate and morph (e.g. other models)."""
    import clipgan
    from clipgan.animate import morph
    from clipgan.io import save_image
    from clipgan.pipeline import load_models
    from clipgan.video import VideoWriter

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DOCS)
    parser.add_argument("--iterations", type=int, help="steps per picture (default: clipgan's own)")
    parser.add_argument("--size", type=int, help="side in px (default: clipgan's own recipe, as a new user gets it)")
    parser.add_argument("--frames", type=int, default=8, help="morph frames per transition")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    given = {"iterations": args.iterations, "size": None if args.size is None else (args.size, args.size)}
    base = clipgan.Settings().replace(seed=args.seed, **{k: v for k, v in given.items() if v is not None}, **settings)
    models = load_models(base)
    written = []
    for name, prompt in PICTURES.items():
        result = clipgan.generate(prompt, models=models, settings=base)
        written.append(save_image(result.image, args.out / name, result.settings.to_dict()))
        print(f"{written[-1]}: {prompt!r}", flush=True)
    frames = morph(MORPH, models=models, settings=base, frames_per_transition=args.frames, loop=True,
                   steps_per_frame=max(1, base.iterations // 20))
    with VideoWriter(args.out / VIDEO, fps=8) as video:
        for frame in frames:
            video.append(frame.image)
    written.append(video.path)
    print(f"{video.path}: {video.frames} frames", flush=True)
    return written


if __name__ == "__main__":
    main()
