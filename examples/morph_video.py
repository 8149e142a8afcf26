"""A morph video: a keyframe per prompt, frames sliding from one to the next.

    python examples/morph_video.py [--out DIR] [--frames N] [--keyframe-steps N] [--steps-per-frame N] [--size PX]

The same as `clipgan morph PROMPT... -o morph.mp4`, written with the Python API: frames come
from an iterator as they are made and stream straight into the video file. Writes morph.mp4
and the last keyframe as morph-last.png.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

PROMPTS = ["a red circle on a blue background", "a yellow star on a blue background", "a white cross on a black background"]


def main(argv: list[str] | None = None, **settings) -> Path:
    """Returns the path of the video. `settings` go to clipgan.animate.morph (e.g. other models)."""
    from clipgan.animate import morph, morph_frame_count
    from clipgan.video import VideoWriter

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("CLIPGAN_EXAMPLES_OUT", ".")))
    parser.add_argument("--frames", type=int, default=12, help="frames per transition")
    parser.add_argument("--keyframe-steps", type=int, default=100)
    parser.add_argument("--steps-per-frame", type=int, default=8)
    parser.add_argument("--size", type=int, help="pixels per side (default: the model's own, 64 for the bundled ones)")
    parser.add_argument("--fps", type=float, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    total = morph_frame_count(len(PROMPTS), args.frames)
    frames = morph(PROMPTS, frames_per_transition=args.frames, keyframe_steps=args.keyframe_steps,
                   steps_per_frame=args.steps_per_frame, size=args.size and (args.size, args.size), seed=args.seed, **settings)
    path = args.out / "morph.mp4"
    with VideoWriter(path, fps=args.fps) as video:  # the file appears only when every frame is in
        for frame in frames:
            video.append(frame.image)
            what = f"keyframe {frame.keyframe}" if frame.keyframe is not None else f"mix {frame.mix:.2f}"
            print(f"frame {frame.index + 1}/{total} ({what})", flush=True)
    frame.pil().save(args.out / "morph-last.png")
    print(f"{path}: {video.frames} frames at {args.fps:g} fps")
    return path


if __name__ == "__main__":
    main()
