"""The command-line side of diffusion morphs (`clipgan morph --image-model diffusion`): a progress
bar over the frames and the video file. The frames come from clipgan.run.morph."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from clipgan.config import Settings

if TYPE_CHECKING:
    from clipgan.animate import MorphOptions


def diffusion_morph(prompts: list[str], output: Path, settings: Settings, options: MorphOptions, fps: float,
                    quiet: bool) -> None:
    """Writes the morph's video to `output` (whole or not at all) and says where it went."""
    from tqdm import tqdm

    from clipgan.animate import morph_frame_count
    from clipgan.io import output_lock
    from clipgan.pipeline import draw_seed
    from clipgan.run import morph
    from clipgan.video import VideoWriter

    if settings.seed is None:  # drawn here so that it can be printed
        settings = settings.replace(seed=draw_seed())
    total = morph_frame_count(len(prompts), options.frames_per_transition, options.loop)
    with output_lock(output), VideoWriter(output, fps=fps) as video, \
            tqdm(total=total, disable=quiet, unit="frame", dynamic_ncols=True) as bar:
        for frame in morph(prompts, options, settings=settings):
            video.append(frame.image)
            bar.update(1)
    if not quiet:
        typer.echo(f"saved {output} ({total} frames, seed {settings.seed})")
