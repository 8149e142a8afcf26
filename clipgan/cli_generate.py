"""`clipgan generate` and `clipgan resume`: a run with its progress bar, saved frames, progress
video, and a resumable state file when it is interrupted (Ctrl-C or SIGTERM)."""

from __future__ import annotations

import contextlib
import os
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer

from clipgan import cli_options as O
from clipgan.cli_app import FEATHER_HELP, OUTPUT, RUN, D, app, given, notices, user_errors
from clipgan.config import DEFAULT_FPS, CutSchedule, InitNoise, LrSchedule, Optimizer, Precision, Settings, Switch
from clipgan.errors import ClipganError, NumericError, brief
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
    interpolate_fps: float | None = None  # the video's rate after motion interpolation

    def to_dict(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> "Job":
        """From a state file, checked field by field (it may be edited or foreign)."""
        fields = set(cls.__dataclass_fields__)
        if set(data) - fields or "output" not in data:
            raise ClipganError(f"the state's job has unknown or missing fields ({', '.join(sorted(map(str, set(data) ^ fields)))})")
        for k in ("output", "frames_dir", "video"):
            if not isinstance(data.get(k), str) and not (k != "output" and data.get(k) is None):
                raise ClipganError(f"the state's job.{k} must be a path, got {brief(data.get(k))}")
        save_every = data.get("save_every", 0)
        if isinstance(save_every, bool) or not isinstance(save_every, int) or save_every < 0:
            raise ClipganError(f"the state's job.save_every must be a whole number of at least 0, got {brief(save_every)}")
        paths = {k: Path(v) if k in ("output", "frames_dir", "video") and v is not None else v for k, v in data.items()}
        job = cls(**paths)
        from clipgan.video import check_fps

        check_fps(job.fps)
        return job


def save_output(path: Path, image, z, settings: dict):
    """The picture, or with an .svg name the strokes `z` it was drawn from, with the settings."""
    from clipgan.io import save_image, to_pil

    if path.suffix.lower() == ".svg":
        from clipgan.image_models.strokes import to_svg
        from clipgan.io import save_svg

        size = (image.width, image.height) if hasattr(image, "width") else (image.shape[-1], image.shape[-2])
        return save_svg(to_svg(z, size), path, settings)
    return save_image(image if hasattr(image, "width") else to_pil(image), path, settings)


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
    prompt: O.Prompt = None,
    iterations: O.Iterations = D.iterations,
    change_prompt_every: O.ChangePromptEvery = D.change_prompt_every,
    size: O.Size = D.size,
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="png, jpg or webp (svg with --image-model strokes); default: named after the prompt.", rich_help_panel=OUTPUT)] = None,
    save_every: O.SaveEvery = 0,
    frames_dir: Annotated[Optional[Path], typer.Option(help="With --save-every, also write numbered frames here.", rich_help_panel=OUTPUT)] = None,
    video: Annotated[Optional[Path], typer.Option(help="Progress video (mp4, webm, gif): a frame every --save-every steps (every step if 0).", rich_help_panel=OUTPUT)] = None,
    video_mp4: O.VideoMp4 = False,
    fps: Annotated[float, typer.Option(help="Frames per second of --video.", rich_help_panel=OUTPUT)] = DEFAULT_FPS,
    video_length: O.VideoLength = None,
    output_fps: O.OutputFps = None,
    image_prompt: O.ImagePrompt = None,
    noise_prompt_seeds: O.NoiseSeeds = None,
    noise_prompt_weights: O.NoiseWeights = None,
    contrast: O.Contrast = None,
    contrast_weight: O.ContrastWeight = D.contrast_weight,
    contrast_clip: O.ContrastClip = None,
    init_image: O.InitImage = D.init_image,
    init_weight: O.InitWeight = D.init_weight,
    init_noise: O.InitNoiseOpt = InitNoise(D.init_noise),
    mask: Annotated[Optional[str], typer.Option(help="With --init-image: regenerate only the white part; black stays exactly as it was beyond the --feather band. The picture keeps its own size.", rich_help_panel=EDIT)] = D.mask,
    feather: Annotated[Optional[int], typer.Option(help=FEATHER_HELP, rich_help_panel=EDIT, show_default=False)] = D.feather,
    upscale: Annotated[Optional[float], typer.Option(help="Enlarge the result by this factor (>1), then refine it at the larger size.", rich_help_panel=EDIT)] = D.upscale,
    upscale_steps: Annotated[int, typer.Option(help="Refinement steps at the larger size (with --upscale).", rich_help_panel=EDIT)] = D.upscale_steps,
    tv_weight: O.TvWeight = D.tv_weight,
    cutn: O.Cutn = D.cutn,
    cut_pow: O.CutPow = D.cut_pow,
    cut_method: O.CutMethodOpt = D.cut_method,
    cut_schedule: O.CutScheduleOpt = CutSchedule(D.cut_schedule),
    augments: O.Augments = ",".join(D.augments),
    optimizer: O.OptimizerOpt = Optimizer(D.optimizer),
    lr: O.Lr = D.lr,
    lr_schedule: O.LrScheduleOpt = LrSchedule(D.lr_schedule),
    early_stop: O.EarlyStop = D.early_stop,
    seed: O.Seed = D.seed,
    device: O.Device = D.device,
    precision: O.PrecisionOpt = Precision(D.precision),
    low_memory: Annotated[bool, typer.Option("--low-memory", help="Recompute decoder activations in the backward pass: much less memory, somewhat slower.", rich_help_panel=RUN)] = D.low_memory,
    compile: Annotated[Switch, typer.Option(help="torch.compile the decoder and CLIP; a failure falls back to eager (auto: off, CUDA graphs pay sooner).", rich_help_panel=RUN)] = Switch(D.compile),
    cuda_graphs: Annotated[Switch, typer.Option(help="Also replay them as CUDA graphs (auto: on CUDA from 1200 steps, where the compile time pays back).", rich_help_panel=RUN)] = Switch(D.cuda_graphs),
    image_model: O.ImageModelOpt = D.image_model,
    strokes: O.StrokesOpt = D.strokes,
    vqgan: O.VqganName = D.vqgan,
    vqgan_config: O.VqganConfig = D.vqgan_config,
    vqgan_checkpoint: O.VqganCheckpoint = D.vqgan_checkpoint,
    clip: O.Clip = None,
    trust_checkpoint: O.Trust = D.trust_checkpoint,
    diffusion: O.Diffusion = D.diffusion,
    scheduler: O.Scheduler = O.SchedulerChoice(D.scheduler),
    guidance_scale: O.GuidanceScale = D.guidance_scale,
    candidates: O.Candidates = D.candidates,
    strength: O.Strength = D.strength,
    from_png: Annotated[Optional[Path], typer.Option(help="Rerun the settings stored in a clipgan image; other flags override.", rich_help_panel=RUN)] = None,
    zoom_video: O.ZoomVideo = False,
    quiet: O.Quiet = False,
):
    """Generate an image from text (and image) prompts. nerdyrodent/VQGAN-CLIP's flags work too (-p, -ii, -cuts, -opt, ...)."""
    settings, job = generate_settings(ctx, locals())
    run_job(settings, job, quiet)


def generate_settings(ctx: typer.Context, a: dict) -> tuple[Settings, "Job"]:
    """The command line's values -> the run's Settings and Job, checked; nothing runs yet."""
    from clipgan.io import FORMATS, check_output, read_settings

    if a["zoom_video"]:
        raise ClipganError("-zvid: a zoom video is its own command here: clipgan zoom PROMPT -o zoom.mp4 "
                           "(--steps-per-frame for -zse, --zoom for -zsc, --shift-x/--shift-y for -zsx/-zsy)")
    texts = (a["prompts"] or []) + (a["prompt"] or [])
    O.check_numeric_prompts(texts)
    values = dict(prompts=texts, iterations=a["iterations"], change_prompt_every=a["change_prompt_every"], size=a["size"],
                  image_prompts=a["image_prompt"] or [],
                  noise_prompt_seeds=O.numbers(a["noise_prompt_seeds"], int, "noise-prompt-seeds"),
                  noise_prompt_weights=O.numbers(a["noise_prompt_weights"], float, "noise-prompt-weights"),
                  contrast=a["contrast"], contrast_weight=a["contrast_weight"], contrast_clip=O.contrast_clip(a["contrast_clip"]),
                  init_image=a["init_image"], init_weight=a["init_weight"], init_noise=a["init_noise"], mask=a["mask"],
                  feather=a["feather"], upscale=a["upscale"], upscale_steps=a["upscale_steps"], tv_weight=a["tv_weight"],
                  cutn=a["cutn"], cut_pow=a["cut_pow"], cut_method=O.cut_method(a["cut_method"]),
                  augments=O.augments(a["augments"]), optimizer=a["optimizer"], lr=a["lr"], early_stop=a["early_stop"], seed=a["seed"],
                  lr_schedule=a["lr_schedule"], cut_schedule=a["cut_schedule"],
                  device=a["device"], precision=a["precision"], low_memory=a["low_memory"], compile=a["compile"],
                  cuda_graphs=a["cuda_graphs"], vqgan=a["vqgan"], image_model=a["image_model"], strokes=a["strokes"],
                  vqgan_config=a["vqgan_config"], vqgan_checkpoint=a["vqgan_checkpoint"],
                  clip=[O.clip_name(c) for c in a["clip"] or D.clip], trust_checkpoint=a["trust_checkpoint"],
                  diffusion=a["diffusion"], scheduler=a["scheduler"],
                  guidance_scale=a["guidance_scale"], candidates=a["candidates"], strength=a["strength"])
    params = {"prompts": ["prompts", "prompt"], "image_prompts": ["image_prompt"]}
    typed = set(given(ctx, [n for k in values for n in params.get(k, [k])]))
    if a["from_png"]:
        base = Settings.from_dict(read_settings(a["from_png"]))
        changes = {k: v for k, v in values.items() if typed & set(params.get(k, [k]))}
    else:
        base, changes = Settings(), values
    settings = base.replace(**changes)
    output = check_output(a["output"] or default_output(settings.prompts), {**FORMATS, ".svg": "SVG"})
    if output.suffix.lower() == ".svg" and settings.image_model != "strokes":
        raise ClipganError(f"{output}: SVG output draws strokes; add --image-model strokes (or write png, jpg or webp)")
    video, frames_dir, save_every = a["video"], a["frames_dir"], a["save_every"]
    if a["video_mp4"]:
        if video is not None:
            raise ClipganError("give --video PATH or -vid, not both")
        video = O.video_beside(output)
    if save_every < 0:
        raise ClipganError(f"save-every must be 0 or more, got {save_every}")
    if frames_dir is not None and not frames_dir.parent.is_dir():
        raise ClipganError(f"folder for frames does not exist: {frames_dir.parent}")
    if frames_dir is not None and frames_dir.exists() and not frames_dir.is_dir():
        raise ClipganError(f"--frames-dir {frames_dir} is a file, not a folder")
    fps, interpolate = a["fps"], a["output_fps"]
    if video is None and (a["video_length"] is not None or interpolate is not None):
        raise ClipganError("--video-length and --output-fps shape a progress video: add --video PATH (or -vid)")
    if frames_dir is not None and not os.access(frames_dir if frames_dir.is_dir() else frames_dir.parent, os.W_OK | os.X_OK):
        raise ClipganError(f"cannot write in --frames-dir {frames_dir}")
    if video is not None:
        from clipgan.video import check_fps, check_video_output

        check_video_output(video)
        if a["video_length"] is not None:
            fps = video_fps_for(a["video_length"], settings.iterations, save_every)
        check_fps(fps)
        if interpolate is not None:
            check_fps(interpolate)
            if interpolate <= fps:
                raise ClipganError(f"--output-fps {interpolate:g} must be more than the video's {fps:g} fps")
    check_inputs(settings)
    return settings, Job(output, save_every, frames_dir, video, fps, interpolate)


def video_fps_for(seconds: float, iterations: int, save_every: int) -> float:
    """The frame rate at which the progress video's frames last `seconds`."""
    if not seconds > 0:
        raise ClipganError(f"video-length must be positive seconds, got {seconds:g}")
    return max(iterations // (save_every or 1), 1) / seconds


def check_inputs(settings: Settings) -> None:
    """Cheap checks before any model loads: prompts parse, local image files are images, a mask
    has something to regenerate."""
    from clipgan.io import open_image
    from clipgan.prompts import parse_prompts

    texts, images = parse_prompts(settings.prompts), parse_prompts(settings.image_prompts)
    if not texts and not images and not settings.noise_prompt_seeds:
        raise ClipganError("give at least one text prompt, --image-prompt or --noise-prompt-seeds")
    local = [src for src in [p.text for p in images] + [settings.init_image, settings.mask]
             if src and not src.startswith(("http://", "https://"))]  # URLs are fetched once, by the run
    opened = {src: open_image(src) for src in local}
    if settings.mask in opened and settings.init_image in opened:
        from clipgan.edit import hard, load_mask

        if not hard(load_mask(opened[settings.mask], opened[settings.init_image].size)).any():
            raise ClipganError(f"the mask {settings.mask} is all black: nothing to regenerate")


def run_job(settings: Settings, job: Job, quiet: bool, resume: dict | None = None):
    """Runs generate with progress, saves and video; on Ctrl-C/SIGTERM saves image + state, exit 130
    (the image only for diffusion runs). The output (and video) are locked first, before
    any model loads, so a second run writing them is refused."""
    from clipgan.io import output_lock

    with contextlib.ExitStack() as stack:
        for path in (job.output, job.video):
            if path is not None:
                stack.enter_context(output_lock(path))
        return _run_job(settings, job, quiet, resume)


def _run_job(settings: Settings, job: Job, quiet: bool, resume: dict | None):
    from PIL import Image
    from tqdm import tqdm

    from clipgan.io import save_image, to_pil
    from clipgan.pipeline import draw_seed, resume_state, rng_state
    from clipgan.run import generate as run_generate, total_steps  # every image model

    drawn = settings.seed is None
    if drawn:  # drawn here so that intermediate saves carry it too
        settings = settings.replace(seed=draw_seed())
    resumable = settings.image_model != "diffusion"  # a denoising run is not resumable: run it again
    total = total_steps(settings)
    bar, last, done = None, {}, 0  # done: steps so far over all runs (an upscale's refinement counts on)
    losses = list(resume.get("losses", [])) if resume else []
    video_every = job.save_every or 1

    def on_step(step):
        with guard.held():  # a signal waits until the step's frame, saves and state are all noted
            _record(step)

    def _record(step):
        nonlocal bar, done
        if bar is None:  # made at the first step, so a run that fails while loading prints only its error
            if drawn and not quiet:
                tqdm.write(f"seed: {settings.seed}", file=sys.stderr)
            done = max(step.index, len(losses))  # an upscale's refinement counts on from the first run's steps
            bar = tqdm(total=total, initial=done, disable=quiet, unit="step", dynamic_ncols=True)
        done += 1
        losses.append(step.loss)
        bar.update(1)
        bar.set_postfix(loss=f"{step.loss:.4f}")
        if video is not None and done % video_every == 0:
            frame = step.image
            if video.size is not None and tuple(frame.shape[-2:]) != video.size[::-1]:
                if settings.upscale is None:  # only saved frames of a resumed state can differ: never shrink the video
                    h, w = frame.shape[-2:]
                    raise ClipganError(f"the saved frames of the state are {video.size[0]}x{video.size[1]}, "
                                       f"but this run makes {w}x{h} frames")
                frame = to_pil(frame).resize(video.size, Image.LANCZOS)  # upscaled: keep the video's size
            video.append(frame)
        if job.save_every and done % job.save_every == 0:
            image = to_pil(step.image)
            save_output(job.output, image, getattr(step, "z", None), settings.to_dict())  # diffusion steps have no z
            if job.frames_dir is not None:
                job.frames_dir.mkdir(exist_ok=True)
                save_image(image, job.frames_dir / f"{done:05d}.png")
        # taken now: the next step changes z and the optimizer in place
        last.update(step=step, state=resume_state(step, settings, losses, rng_state()) if resumable else None)

    kept, guard = None, None  # kept: the progress video's frames so far, for the state file
    path = state_path(job.output)
    try:
        with notices(quiet), sigterm_interrupts() as guard, _video(job) as video:
            try:
                if resume is not None and video is not None:  # the progress video before the interruption
                    video.restore(resume.get("frames"))
                result = run_generate(settings=settings, callback=on_step, resume=resume if resume and "z" in resume else None)
            except KeyboardInterrupt:
                if video is not None and resumable and last:
                    kept = video.salvage()
                raise
    except KeyboardInterrupt:
        _close(bar)
        if not last:  # nothing made yet: a state that starts the same run (seed included) over
            if resumable and resume is None:
                save_state({"kind": "generate", "version": 1, "settings": settings.to_dict(), "job": job.to_dict()}, path)
            if resumable and path.exists():
                typer.echo(f"interrupted before the first step; resume with: clipgan resume {path}", err=True)
            else:
                typer.echo("interrupted before the first step; nothing to keep", err=True)
            raise typer.Exit(INTERRUPTED) from None
        save_output(job.output, last["step"].image, last["step"].z, settings.to_dict())
        if not resumable:
            typer.echo(f"interrupted at step {done}; image so far saved to {job.output} "
                       "(diffusion runs cannot be resumed)", err=True)
            raise typer.Exit(INTERRUPTED) from None
        save_state({**last["state"], "job": job.to_dict(), "frames": kept}, path)
        typer.echo(f"interrupted at step {done}; image saved to {job.output}; "
                   f"resume with: clipgan resume {path}", err=True)
        raise typer.Exit(INTERRUPTED) from None
    except NumericError:
        _close(bar)
        if last:  # keep the last good picture
            save_output(job.output, last["step"].image, last["step"].z, settings.to_dict())
        raise
    _close(bar)
    save_output(job.output, result.image, result.z, result.settings.to_dict())
    if not quiet:
        typer.echo(f"saved {job.output} (seed {result.seed})" + (f" and {job.video}" if job.video else ""))
    return result


@app.command()
@user_errors
def resume(
    state: Annotated[Path, typer.Argument(help="A .state.pt file written when a run was interrupted.")],
    trust_checkpoint: Annotated[bool, typer.Option(help="Allow checkpoints that need full unpickling (can run code); never taken from the state file.")] = D.trust_checkpoint,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="No progress bar or notes.")] = False,
):
    """Finish an interrupted generate, morph, zoom, restyle, outpaint or upscale; on CPU with a seed,
    the result equals an uninterrupted run's."""
    data = load_state(state)
    if data["kind"] in ("outpaint", "upscale"):
        from clipgan.cli_edit import resume_edit

        resume_edit(data, quiet, trust_checkpoint)
        output = Path(data["job"]["output"])
    elif data["kind"] != "generate":
        from clipgan.cli_animate import resume_animation

        resume_animation(data, quiet, trust_checkpoint)
        output = Path(data["job"]["output"])
    else:
        output = _resume_generate(data, state, quiet, trust_checkpoint)
    if state.resolve() == state_path(output).resolve():
        state.unlink(missing_ok=True)


def _resume_generate(data: dict, state: Path, quiet: bool, trust: bool = False) -> Path:
    job = Job.from_dict(data["job"])
    settings = Settings.from_dict(data["settings"]).replace(trust_checkpoint=trust)  # trust: from the command line only
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

    with VideoWriter(job.video, fps=job.fps, interpolate_fps=job.interpolate_fps) as writer:
        yield writer
