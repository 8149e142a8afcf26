"""`clipgan generate` and `clipgan resume`: a run with its progress bar, saved frames, progress
video, and a resumable state file when it is interrupted (Ctrl-C or SIGTERM)."""

from __future__ import annotations

import contextlib
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer

from clipgan.cli import CUT, FEATHER_HELP, INIT, MODELS, OPT, OUTPUT, PROMPTS, RUN, SIZE_HELP, D, app, given, notices, user_errors
from clipgan.config import DEFAULT_FPS, Augment, InitNoise, Optimizer, Precision, Settings
from clipgan.errors import ClipganError, NumericError
from clipgan.interrupt import INTERRUPTED, load_state, save_state, sigterm_interrupts, state_path

EDIT = "Inpaint and upscale"


@dataclass
class Job:
    """Where a run's files go: saved in the state file, so `clipgan resume` writes the same ones."""

    output: Path
    save_every: int = 0
    frames_dir: Path | None = None
    video: Path | None = None
    fps: float = DEFAULT_FPS

    def to_dict(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> "Job":
        paths = {k: Path(v) if k in ("output", "frames_dir", "video") and v is not None else v for k, v in data.items()}
        return cls(**paths)


def default_output(prompts: list[str]) -> Path:
    """A new file named after the first prompt, never one that exists."""
    stem = re.sub(r"[^a-z0-9]+", "-", (prompts[0] if prompts else "clipgan").lower()).strip("-")[:60] or "clipgan"
    path, n = Path(f"{stem}.png"), 1
    while path.exists():
        path, n = Path(f"{stem}-{n}.png"), n + 1
    return path


@app.command()
@user_errors
def generate(
    ctx: typer.Context,
    prompts: Annotated[Optional[list[str]], typer.Argument(help='Text prompts "text:weight:stop"; "a | b" holds two.', show_default=False)] = None,
    iterations: Annotated[int, typer.Option("-i", "--iterations", help="Optimization steps.", rich_help_panel=RUN)] = D.iterations,
    change_prompt_every: Annotated[int, typer.Option(help='Steps per part of a story prompt "a ^ b ^ c" (0: spread over the run).', rich_help_panel=PROMPTS)] = D.change_prompt_every,
    size: Annotated[Optional[tuple[int, int]], typer.Option("-s", "--size", help=SIZE_HELP, rich_help_panel=OUTPUT, show_default=False)] = D.size,
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="png, jpg or webp; default: named after the prompt.", rich_help_panel=OUTPUT)] = None,
    save_every: Annotated[int, typer.Option(help="Rewrite the output every N steps (0: only at the end).", rich_help_panel=OUTPUT)] = 0,
    frames_dir: Annotated[Optional[Path], typer.Option(help="With --save-every, also write numbered frames here.", rich_help_panel=OUTPUT)] = None,
    video: Annotated[Optional[Path], typer.Option(help="Progress video (mp4, webm, gif): a frame every --save-every steps (every step if 0).", rich_help_panel=OUTPUT)] = None,
    fps: Annotated[float, typer.Option(help="Frames per second of --video.", rich_help_panel=OUTPUT)] = DEFAULT_FPS,
    image_prompt: Annotated[Optional[list[str]], typer.Option(help="Image prompt path[:weight[:stop]]; repeatable.", rich_help_panel=PROMPTS)] = None,
    init_image: Annotated[Optional[str], typer.Option(help="Start from this image.", rich_help_panel=INIT)] = D.init_image,
    init_weight: Annotated[float, typer.Option(help="Pull towards the starting latent.", rich_help_panel=INIT)] = D.init_weight,
    init_noise: Annotated[InitNoise, typer.Option(help="Start without an image from random codes, pixel noise or a gradient.", rich_help_panel=INIT)] = InitNoise(D.init_noise),
    mask: Annotated[Optional[str], typer.Option(help="With --init-image: regenerate only the white part; black stays exactly as it was beyond the --feather band. The picture keeps its own size.", rich_help_panel=EDIT)] = D.mask,
    feather: Annotated[Optional[int], typer.Option(help=FEATHER_HELP, rich_help_panel=EDIT, show_default=False)] = D.feather,
    upscale: Annotated[Optional[float], typer.Option(help="Enlarge the result by this factor (>1), then refine it at the larger size.", rich_help_panel=EDIT)] = D.upscale,
    upscale_steps: Annotated[int, typer.Option(help="Refinement steps at the larger size (with --upscale).", rich_help_panel=EDIT)] = D.upscale_steps,
    tv_weight: Annotated[float, typer.Option(help="Total-variation smoothing weight.", rich_help_panel=OPT)] = D.tv_weight,
    cutn: Annotated[int, typer.Option(help="Cutouts scored by CLIP per step.", rich_help_panel=CUT)] = D.cutn,
    cut_pow: Annotated[float, typer.Option(help="Cutout size exponent (>1: smaller crops).", rich_help_panel=CUT)] = D.cut_pow,
    augments: Annotated[str, typer.Option(help=f"Comma-separated: {', '.join(a.value for a in Augment)}.", rich_help_panel=CUT)] = ",".join(D.augments),
    optimizer: Annotated[Optimizer, typer.Option(help="torch optimizer.", rich_help_panel=OPT)] = Optimizer(D.optimizer),
    lr: Annotated[float, typer.Option(help="Learning rate.", rich_help_panel=OPT)] = D.lr,
    seed: Annotated[Optional[int], typer.Option(help="Random seed (default: drawn and printed).", rich_help_panel=RUN)] = D.seed,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.", rich_help_panel=RUN)] = D.device,
    precision: Annotated[Precision, typer.Option(help="Autocast precision.", rich_help_panel=RUN)] = Precision(D.precision),
    low_memory: Annotated[bool, typer.Option(help="Recompute decoder activations in the backward pass: much less memory, somewhat slower.", rich_help_panel=RUN)] = D.low_memory,
    vqgan: Annotated[str, typer.Option(help="VQGAN name from `clipgan models`.", rich_help_panel=MODELS)] = D.vqgan,
    vqgan_config: Annotated[Optional[str], typer.Option(help="taming yaml (with --vqgan-checkpoint).", rich_help_panel=MODELS)] = D.vqgan_config,
    vqgan_checkpoint: Annotated[Optional[str], typer.Option(help="taming .ckpt or .safetensors.", rich_help_panel=MODELS)] = D.vqgan_checkpoint,
    clip: Annotated[Optional[list[str]], typer.Option(help=f"ARCH:WEIGHTS (open_clip name or config .json : tag or file); repeat for an ensemble. Default: {','.join(D.clip)}.", rich_help_panel=MODELS)] = None,
    trust_checkpoint: Annotated[bool, typer.Option(help="Allow checkpoints that need full unpickling (can run code).", rich_help_panel=MODELS)] = D.trust_checkpoint,
    from_png: Annotated[Optional[Path], typer.Option(help="Rerun the settings stored in a clipgan image; other flags override.", rich_help_panel=RUN)] = None,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="No progress bar or notes.", rich_help_panel=RUN)] = False,
):
    """Generate an image from text (and image) prompts."""
    from clipgan.io import check_output, read_settings

    values = dict(prompts=prompts or [], iterations=iterations, change_prompt_every=change_prompt_every, size=size, image_prompts=image_prompt or [],
                  init_image=init_image, init_weight=init_weight, init_noise=init_noise, mask=mask, feather=feather,
                  upscale=upscale, upscale_steps=upscale_steps, tv_weight=tv_weight,
                  cutn=cutn, cut_pow=cut_pow, augments=augments, optimizer=optimizer, lr=lr, seed=seed,
                  device=device, precision=precision, low_memory=low_memory, vqgan=vqgan, vqgan_config=vqgan_config,
                  vqgan_checkpoint=vqgan_checkpoint, clip=clip or list(D.clip), trust_checkpoint=trust_checkpoint)
    params = {"prompts": "prompts", "image_prompts": "image_prompt"}
    typed = set(given(ctx, [params.get(k, k) for k in values]))
    if from_png:
        base = Settings.from_dict(read_settings(from_png))
        changes = {k: v for k, v in values.items() if params.get(k, k) in typed}
    else:
        base, changes = Settings(), values
    settings = base.replace(**changes)
    output = check_output(output or default_output(settings.prompts))
    if save_every < 0:
        raise ClipganError(f"save-every must be 0 or more, got {save_every}")
    if frames_dir is not None and not frames_dir.parent.is_dir():
        raise ClipganError(f"folder for frames does not exist: {frames_dir.parent}")
    if frames_dir is not None and frames_dir.exists() and not frames_dir.is_dir():
        raise ClipganError(f"--frames-dir {frames_dir} is a file, not a folder")
    if video is not None:
        from clipgan.video import check_fps, check_video_output

        check_video_output(video)
        check_fps(fps)
    check_inputs(settings)
    job = Job(output, save_every, frames_dir, video, fps)
    run_job(settings, job, quiet)


def check_inputs(settings: Settings) -> None:
    """Cheap checks before any model loads: prompts parse, local image files are images, a mask
    has something to regenerate."""
    from clipgan.io import open_image
    from clipgan.prompts import parse_prompts

    texts, images = parse_prompts(settings.prompts), parse_prompts(settings.image_prompts)
    if not texts and not images:
        raise ClipganError("give at least one text prompt or --image-prompt")
    local = [src for src in [p.text for p in images] + [settings.init_image, settings.mask]
             if src and not src.startswith(("http://", "https://"))]  # URLs are fetched once, by the run
    opened = {src: open_image(src) for src in local}
    if settings.mask in opened and settings.init_image in opened:
        from clipgan.edit import hard, load_mask

        if not hard(load_mask(opened[settings.mask], opened[settings.init_image].size)).any():
            raise ClipganError(f"the mask {settings.mask} is all black: nothing to regenerate")


def run_job(settings: Settings, job: Job, quiet: bool, resume: dict | None = None):
    """Runs generate with progress, saves and video; on Ctrl-C/SIGTERM saves image + state, exit 130
    (the image only for masked and upscaled runs)."""
    from PIL import Image
    from tqdm import tqdm

    from clipgan.io import save_image, to_pil
    from clipgan.pipeline import draw_seed, resume_state, rng_state
    from clipgan.pipeline import generate as run_generate

    drawn = settings.seed is None
    if drawn:  # drawn here so that intermediate saves carry it too
        settings = settings.replace(seed=draw_seed())
    # masked and upscaled runs go through clipgan.edit: saved as they go, but not resumable
    resumable = settings.mask is None and settings.upscale is None
    total = settings.iterations + (settings.upscale_steps if settings.upscale is not None else 0)
    bar, last, done = None, {}, 0  # done: steps so far over all runs (an upscale's refinement counts on)
    losses = list(resume.get("losses", [])) if resume else []
    video_every = job.save_every or 1

    def on_step(step):
        nonlocal bar, done
        if bar is None:  # made at the first step, so a run that fails while loading prints only its error
            if drawn and not quiet:
                tqdm.write(f"seed: {settings.seed}", file=sys.stderr)
            done = step.index
            bar = tqdm(total=total, initial=done, disable=quiet, unit="step", dynamic_ncols=True)
        done += 1
        losses.append(step.loss)
        last.update(step=step, rng=rng_state() if resumable else None)
        bar.update(1)
        bar.set_postfix(loss=f"{step.loss:.4f}")
        if video is not None and done % video_every == 0:
            frame = step.image
            if video.size is not None and tuple(frame.shape[-2:]) != video.size[::-1]:  # upscaled: keep the video's size
                frame = to_pil(frame).resize(video.size, Image.LANCZOS)
            video.append(frame)
        if job.save_every and done % job.save_every == 0:
            image = to_pil(step.image)
            save_image(image, job.output, settings.to_dict())
            if job.frames_dir is not None:
                job.frames_dir.mkdir(exist_ok=True)
                save_image(image, job.frames_dir / f"{done:05d}.png")

    kept = None  # the progress video's frames so far, for the state file
    try:
        with notices(quiet), sigterm_interrupts(), _video(job) as video:
            try:
                if resume is not None and video is not None:  # the progress video before the interruption
                    video.restore(resume.get("frames"))
                result = run_generate(settings=settings, callback=on_step, resume=resume)
            except KeyboardInterrupt:
                if video is not None and resumable and last:
                    kept = video.salvage()
                raise
    except KeyboardInterrupt:
        _close(bar)
        if not last:
            raise typer.Exit(INTERRUPTED) from None
        save_image(to_pil(last["step"].image), job.output, settings.to_dict())
        if not resumable:
            typer.echo(f"interrupted at step {done}; image so far saved to {job.output} "
                       "(masked and upscaled runs cannot be resumed)", err=True)
            raise typer.Exit(INTERRUPTED) from None
        state = {**resume_state(last["step"], settings, losses, last["rng"]), "job": job.to_dict(), "frames": kept}
        save_state(state, state_path(job.output))
        typer.echo(f"interrupted at step {last['step'].index + 1}; image saved to {job.output}; "
                   f"resume with: clipgan resume {state_path(job.output)}", err=True)
        raise typer.Exit(INTERRUPTED) from None
    except NumericError:
        _close(bar)
        if last:  # keep the last good picture
            save_image(to_pil(last["step"].image), job.output, settings.to_dict())
        raise
    _close(bar)
    save_image(result.image, job.output, result.settings.to_dict())
    if not quiet:
        typer.echo(f"saved {job.output} (seed {result.seed})" + (f" and {job.video}" if job.video else ""))
    return result


@app.command()
@user_errors
def resume(
    state: Annotated[Path, typer.Argument(help="A .state.pt file written when a run was interrupted.")],
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="No progress bar or notes.")] = False,
):
    """Finish an interrupted generate, morph, zoom or restyle; on CPU with a seed, the result equals
    an uninterrupted run's."""
    data = load_state(state)
    if data["kind"] != "generate":
        from clipgan.cli_animate import resume_animation

        resume_animation(data, quiet)
        output = Path(data["job"]["output"])
    else:
        output = _resume_generate(data, state, quiet)
    if state.resolve() == state_path(output).resolve():
        state.unlink(missing_ok=True)


def _resume_generate(data: dict, state: Path, quiet: bool) -> Path:
    job = Job.from_dict(data["job"])
    settings = Settings.from_dict(data["settings"])
    if settings.mask is not None or settings.upscale is not None:  # never written by clipgan: refused before work
        raise ClipganError(f"{state} is a masked or upscaled run, and those cannot be resumed")
    run_job(settings, job, quiet, resume=data)
    return job.output


def _close(bar) -> None:
    if bar is not None:
        bar.close()


@contextlib.contextmanager
def _video(job: Job):
    if job.video is None:
        yield None
        return
    from clipgan.video import VideoWriter

    with VideoWriter(job.video, fps=job.fps) as writer:
        yield writer
