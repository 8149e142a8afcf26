"""`clipgan morph`, `clipgan zoom` and `clipgan restyle`: animate.py's frames streamed into a video.

Registers its commands on cli.app when imported. The option defaults come from Settings and
the option dataclasses in animate.py; torch loads only when a command runs.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from clipgan.animate import EASINGS, MODES, MorphOptions, RestyleOptions, ZoomOptions
from clipgan.cli_app import SIZE_HELP, app, notices, user_errors
from clipgan.cli_options import (Augments, Clip, Cutn, CutPow, Device, Lr, OptimizerOpt, Seed, VqganCheckpoint,
                                 VqganConfig, clip_name)
from clipgan.cli_options import augments as peer_augments
from clipgan import cli_options as O
from clipgan.config import DEFAULT_FPS, InitNoise, Optimizer, Precision, Settings
from clipgan.errors import ClipganError

D, M, Z, R = Settings(), MorphOptions(), ZoomOptions(), RestyleOptions()

MorphMode = Enum("MorphMode", {m: m for m in MODES}, type=str)
Easing = Enum("Easing", {e: e for e in EASINGS}, type=str)

VIDEO, ANIM, CUT, OPT, MODELS, RUN = "Video", "Animation", "Cutouts", "Optimizer", "Models", "Run"

# Options every animation command shares, declared once (the rest are generate's, in cli_options).
Output = Annotated[Path, typer.Option("-o", "--output", help="mp4, webm or gif.", show_default=False, rich_help_panel=VIDEO)]
Fps = Annotated[float, typer.Option(help="Frames per second.", rich_help_panel=VIDEO)]
Size = Annotated[Optional[tuple[int, int]], typer.Option("-s", "--size", help=SIZE_HELP, rich_help_panel=VIDEO, show_default=False)]
StepsPerFrame = Annotated[int, typer.Option(help="Optimization steps for each frame.", rich_help_panel=ANIM)]
InitImage = Annotated[Optional[str], typer.Option(help="Start the first frame from this image.", rich_help_panel=ANIM)]
InitWeight = Annotated[float, typer.Option(help="Pull each frame towards its starting latent (steadier frames).", rich_help_panel=OPT)]
InitNoiseOpt = O.InitNoiseOpt
TvWeight = O.TvWeight
PrecisionOpt = O.PrecisionOpt
Vqgan = O.VqganName
Trust = O.Trust
Quiet = O.Quiet


def _settings(clip, augments, **values) -> Settings:
    return Settings().replace(clip=[clip_name(c) for c in clip or D.clip], augments=peer_augments(augments), **values)


def _job(kind: str, prompts: list[str], options, output: Path, fps: float, total: int, video: Path | None = None) -> dict:
    """What the animation is: everything `clipgan resume` needs besides the settings and the carry."""
    job = {"kind": kind, "prompts": list(prompts), "options": _fields(options), "output": str(output.resolve()),
           "fps": float(fps), "total": total}
    return {**job, "video": str(video.resolve())} if video is not None else job


def _frames(job: dict, settings: Settings, carry: dict | None, checkpoint=None):
    """The animation's frames (checks the prompts and loads the models first); morph also hands
    `checkpoint` a carry after each keyframe."""
    from clipgan import animate

    if job["kind"] == "morph":
        return animate.morph(job["prompts"], settings=settings, resume=carry, checkpoint=checkpoint, **job["options"])
    if job["kind"] == "zoom":
        return animate.zoom(job["prompts"], settings=settings, resume=carry, **job["options"])
    return animate.restyle(job["video"], job["prompts"], settings=settings, resume=carry, **job["options"])


def _write(job: dict, settings: Settings, quiet: bool, resume: dict | None = None) -> None:
    """Draws the seed (so it can be printed), then streams the frames into the video with a progress
    bar. Ctrl-C or SIGTERM at any moment keeps the finished frames (and keyframes) and the carry in
    `<stem>.state.pt`, or one that starts the animation over when nothing was made yet (exit 130)."""
    from clipgan.io import output_lock

    with output_lock(Path(job["output"])):  # before the models load: a second run writing it is refused
        _write_locked(job, settings, quiet, resume)


def _write_locked(job: dict, settings: Settings, quiet: bool, resume: dict | None) -> None:

    from tqdm import tqdm

    from clipgan.interrupt import INTERRUPTED, move, save_state, sigterm_interrupts, state_path
    from clipgan.pipeline import draw_seed
    from clipgan.video import VideoWriter

    output, fps, path = Path(job["output"]), job["fps"], state_path(Path(job["output"]))
    drawn = settings.seed is None
    if drawn:
        settings = settings.replace(seed=draw_seed())
    done = resume["frames"] if resume is not None else None  # frames finished before the interruption
    # the newest carry and whether it is news (a frame or a keyframe since this run began)
    latest = {"carry": resume["carry"] if resume is not None else None, "new": False}
    kept, bar, guard = None, None, None

    def note(carry):  # morph's keyframes, between frames
        latest.update(carry=carry, new=True)

    with notices(quiet):
        try:
            with sigterm_interrupts() as guard:
                frames = _frames(job, settings, latest["carry"], note)  # fails here, before the output is touched
                if drawn and not quiet:
                    typer.echo(f"seed: {settings.seed}", err=True)
                bar = tqdm(total=job["total"], initial=len(done) if done is not None else 0, disable=quiet,
                           unit="frame", dynamic_ncols=True)
                with VideoWriter(output, fps=fps) as video:
                    try:
                        video.restore(done)
                        for frame in frames:
                            with guard.held():  # a signal waits until the frame is in the video and noted
                                video.append(frame.image)
                                latest.update(carry=frame.carry, new=True)
                                bar.update(1)
                                if frame.loss is not None:
                                    bar.set_postfix(loss=f"{frame.loss:.4f}")
                    except KeyboardInterrupt:
                        kept = video.salvage() if latest["new"] else None
                        raise
        except KeyboardInterrupt:
            if bar is not None:
                bar.close()
            if latest["new"] or resume is None:  # else the state being resumed still holds
                carry = move(latest["carry"], "cpu") if latest["carry"] is not None else None
                save_state({"kind": job["kind"], "version": 1, "job": job, "settings": settings.to_dict(),
                            "carry": carry, "frames": kept}, path)
            made = len(kept) if kept is not None else len(done) if done is not None else 0
            keys = len((latest["carry"] or {}).get("keys", {}))
            typer.echo(f"interrupted after frame {made} of {job['total']}" + (f" (keyframes done: {keys})" if keys else "")
                       + f"; resume with: clipgan resume {path}", err=True)
            raise typer.Exit(INTERRUPTED) from None
        finally:
            if bar is not None:
                bar.close()
    if not quiet:
        typer.echo(f"saved {output} ({video.frames} frames at {fps:g} fps, seed {settings.seed})")


def resume_animation(data: dict, quiet: bool, trust: bool = False) -> None:
    """`clipgan resume` for a morph, zoom or restyle state; trust comes from the command line only."""
    import dataclasses

    job = data["job"]
    options = {"morph": MorphOptions, "zoom": ZoomOptions, "restyle": RestyleOptions}[data["kind"]]
    unknown = sorted(map(str, set(job["options"]) - {f.name for f in dataclasses.fields(options)}))
    if unknown:
        raise ClipganError(f"the state's {data['kind']} options hold unknown names: {', '.join(unknown)}")
    _check_video(Path(job["output"]), job["fps"])
    _write(data["job"], Settings.from_dict(data["settings"]).replace(trust_checkpoint=trust), quiet, resume=data)


def _check_video(output: Path, fps: float | None) -> Path:
    from clipgan.video import check_fps, check_video_output

    if fps is not None:
        check_fps(fps)
    return check_video_output(output)


@app.command()
@user_errors
def morph(
    prompts: Annotated[list[str], typer.Argument(help='Two or more prompts to morph through; "a | b" holds two at once.', show_default=False)],
    output: Output,
    frames_per_transition: Annotated[int, typer.Option("-n", "--frames-per-transition", help="Frames from one keyframe up to the next.", rich_help_panel=ANIM)] = M.frames_per_transition,
    mode: Annotated[MorphMode, typer.Option(help="guided: a few steps per frame towards blended prompts; latent: interpolate the latents (fast).", rich_help_panel=ANIM)] = MorphMode(M.mode),
    loop: Annotated[bool, typer.Option(help="Return to the first prompt, for a seamless loop.", rich_help_panel=ANIM)] = M.loop,
    keyframe_steps: Annotated[int, typer.Option(help="Optimization steps for each keyframe.", rich_help_panel=ANIM)] = M.keyframe_steps or D.iterations,
    steps_per_frame: StepsPerFrame = M.steps_per_frame,
    easing: Annotated[Easing, typer.Option(help="How the blend slides between prompts.", rich_help_panel=ANIM)] = Easing(M.easing),
    anchor: Annotated[float, typer.Option(help="guided: pull each frame's start this far towards the latent path (0-1).", rich_help_panel=ANIM)] = M.anchor,
    fps: Fps = DEFAULT_FPS,
    size: Size = D.size,
    init_image: InitImage = D.init_image,
    init_noise: InitNoiseOpt = InitNoise(D.init_noise),
    init_weight: InitWeight = D.init_weight,
    contrast: O.Contrast = None,
    contrast_weight: O.ContrastWeight = D.contrast_weight,
    contrast_clip: O.ContrastClip = None,
    tv_weight: TvWeight = D.tv_weight,
    cutn: Cutn = D.cutn,
    cut_pow: CutPow = D.cut_pow,
    augments: Augments = ",".join(D.augments),
    optimizer: OptimizerOpt = Optimizer(D.optimizer),
    lr: Lr = D.lr,
    seed: Seed = D.seed,
    device: Device = D.device,
    precision: PrecisionOpt = Precision(D.precision),
    image_model: O.ImageModelOpt = D.image_model,
    strokes: O.StrokesOpt = D.strokes,
    vqgan: Vqgan = D.vqgan,
    vqgan_config: VqganConfig = D.vqgan_config,
    vqgan_checkpoint: VqganCheckpoint = D.vqgan_checkpoint,
    clip: Clip = None,
    trust_checkpoint: Trust = D.trust_checkpoint,
    quiet: Quiet = False,
    diffusion: O.Diffusion = D.diffusion,
    scheduler: O.Scheduler = O.SchedulerChoice(D.scheduler),
    guidance_scale: O.GuidanceScale = D.guidance_scale,
):
    """Morph through prompts: a keyframe per prompt, frames sliding from one to the next."""
    from clipgan import animate

    output = _check_video(output, fps)
    options = MorphOptions(frames_per_transition, mode.value, loop, keyframe_steps, steps_per_frame, easing.value, anchor)
    options.validate()
    if len(prompts) < 2:
        raise ClipganError("a morph needs at least two prompts")
    settings = _settings(clip, size=size, init_image=init_image, init_noise=init_noise, init_weight=init_weight,
                         contrast=contrast, contrast_weight=contrast_weight, contrast_clip=O.contrast_clip(contrast_clip), tv_weight=tv_weight, cutn=cutn, cut_pow=cut_pow, augments=augments, optimizer=optimizer,
                         lr=lr, seed=seed, device=device, precision=precision, vqgan=vqgan, image_model=image_model, strokes=strokes, vqgan_config=vqgan_config,
                         vqgan_checkpoint=vqgan_checkpoint, trust_checkpoint=trust_checkpoint)
    if image_model == "diffusion":  # every frame a guided denoising run of keyframe-steps steps
        from clipgan.cli_diffusion import diffusion_morph

        return diffusion_morph(prompts, output, settings.replace(
            diffusion=diffusion, scheduler=scheduler.value, guidance_scale=guidance_scale), options, fps, quiet)
    total = animate.morph_frame_count(len(prompts), frames_per_transition, loop)
    _write(_job("morph", prompts, options, output, fps, total), settings, quiet)


@app.command()
@user_errors
def zoom(
    prompts: Annotated[list[str], typer.Argument(help='Prompts; "a ^ b" changes prompt over the frames, "@30 a city" starts at frame 30.', show_default=False)],
    output: Output,
    frames: Annotated[int, typer.Option("-n", "--frames", help="Frames in the video.", rich_help_panel=ANIM)] = Z.frames,
    zoom: Annotated[str, typer.Option(help="Scale per frame (>1 zooms in): a number or an expression of t, the frame index.", rich_help_panel=ANIM)] = str(Z.zoom),
    angle: Annotated[str, typer.Option(help='Degrees per frame, counter-clockwise; e.g. "0.5*sin(t/10)".', rich_help_panel=ANIM)] = str(Z.angle),
    shift_x: Annotated[str, typer.Option(help="Pixels per frame to the right; number or expression.", rich_help_panel=ANIM)] = str(Z.shift_x),
    shift_y: Annotated[str, typer.Option(help="Pixels per frame downwards; number or expression.", rich_help_panel=ANIM)] = str(Z.shift_y),
    first_steps: Annotated[int, typer.Option(help="Optimization steps for the first frame.", rich_help_panel=ANIM)] = Z.first_steps or D.iterations,
    steps_per_frame: StepsPerFrame = Z.steps_per_frame,
    fps: Fps = DEFAULT_FPS,
    size: Size = D.size,
    init_image: InitImage = D.init_image,
    init_noise: InitNoiseOpt = InitNoise(D.init_noise),
    init_weight: InitWeight = D.init_weight,
    contrast: O.Contrast = None,
    contrast_weight: O.ContrastWeight = D.contrast_weight,
    contrast_clip: O.ContrastClip = None,
    tv_weight: TvWeight = D.tv_weight,
    cutn: Cutn = D.cutn,
    cut_pow: CutPow = D.cut_pow,
    augments: Augments = ",".join(D.augments),
    optimizer: OptimizerOpt = Optimizer(D.optimizer),
    lr: Lr = D.lr,
    seed: Seed = D.seed,
    device: Device = D.device,
    precision: PrecisionOpt = Precision(D.precision),
    image_model: O.ImageModelOpt = D.image_model,
    strokes: O.StrokesOpt = D.strokes,
    vqgan: Vqgan = D.vqgan,
    vqgan_config: VqganConfig = D.vqgan_config,
    vqgan_checkpoint: VqganCheckpoint = D.vqgan_checkpoint,
    clip: Clip = None,
    trust_checkpoint: Trust = D.trust_checkpoint,
    quiet: Quiet = False,
):
    """Zoom, rotate and shift into a picture, re-optimizing every frame."""
    from clipgan import animate

    output = _check_video(output, fps)
    options = ZoomOptions(frames, steps_per_frame, first_steps, zoom, angle, shift_x, shift_y)
    options.validate()
    settings = _settings(clip, size=size, init_image=init_image, init_noise=init_noise, init_weight=init_weight,
                         contrast=contrast, contrast_weight=contrast_weight, contrast_clip=O.contrast_clip(contrast_clip), tv_weight=tv_weight, cutn=cutn, cut_pow=cut_pow, augments=augments, optimizer=optimizer,
                         lr=lr, seed=seed, device=device, precision=precision, vqgan=vqgan, image_model=image_model, strokes=strokes, vqgan_config=vqgan_config,
                         vqgan_checkpoint=vqgan_checkpoint, trust_checkpoint=trust_checkpoint)
    animate.prompt_schedule(prompts, frames)  # bad prompts fail before the models load
    _write(_job("zoom", prompts, options, output, fps, frames), settings, quiet)


@app.command()
@user_errors
def restyle(
    video: Annotated[Path, typer.Argument(help="The video to restyle (mp4, webm, gif, ...).", show_default=False)],
    prompts: Annotated[list[str], typer.Argument(help='Prompts; "a ^ b" changes prompt over the video.', show_default=False)],
    output: Output,
    steps_per_frame: StepsPerFrame = R.steps_per_frame,
    blend: Annotated[float, typer.Option(help="Share of the previous output in each frame's start (0-1): higher is steadier.", rich_help_panel=ANIM)] = R.blend,
    max_frames: Annotated[Optional[int], typer.Option(help="Stop after this many frames.", rich_help_panel=ANIM)] = R.max_frames,
    size: Annotated[Optional[tuple[int, int]], typer.Option("-s", "--size", help=SIZE_HELP.replace("Width and height in pixels", "Box the output fits in, keeping the source's aspect ratio"), rich_help_panel=VIDEO, show_default=False)] = D.size,
    init_weight: InitWeight = D.init_weight,
    contrast: O.Contrast = None,
    contrast_weight: O.ContrastWeight = D.contrast_weight,
    contrast_clip: O.ContrastClip = None,
    tv_weight: TvWeight = D.tv_weight,
    cutn: Cutn = D.cutn,
    cut_pow: CutPow = D.cut_pow,
    augments: Augments = ",".join(D.augments),
    optimizer: OptimizerOpt = Optimizer(D.optimizer),
    lr: Lr = D.lr,
    seed: Seed = D.seed,
    device: Device = D.device,
    precision: PrecisionOpt = Precision(D.precision),
    image_model: O.ImageModelOpt = D.image_model,
    strokes: O.StrokesOpt = D.strokes,
    vqgan: Vqgan = D.vqgan,
    vqgan_config: VqganConfig = D.vqgan_config,
    vqgan_checkpoint: VqganCheckpoint = D.vqgan_checkpoint,
    clip: Clip = None,
    trust_checkpoint: Trust = D.trust_checkpoint,
    quiet: Quiet = False,
):
    """Restyle every frame of a video towards the prompts, keeping its frame rate."""
    from clipgan.video import read_video_info

    output = _check_video(output, None)
    if output.resolve() == video.resolve():
        raise ClipganError("the output would replace the input video; choose another name")
    options = RestyleOptions(steps_per_frame, blend, max_frames)
    options.validate()
    settings = _settings(clip, size=size, init_weight=init_weight, contrast=contrast,
                         contrast_weight=contrast_weight, contrast_clip=O.contrast_clip(contrast_clip), tv_weight=tv_weight, cutn=cutn, cut_pow=cut_pow,
                         augments=augments, optimizer=optimizer, lr=lr, seed=seed, device=device, precision=precision,
                         vqgan=vqgan, image_model=image_model, strokes=strokes, vqgan_config=vqgan_config, vqgan_checkpoint=vqgan_checkpoint,
                         trust_checkpoint=trust_checkpoint)
    count, fps, _ = read_video_info(video)
    if not fps > 0:
        raise ClipganError(f"{video} does not say its frame rate")
    total = min(count, max_frames or count)
    _write(_job("restyle", prompts, options, output, fps, total, video), settings, quiet)


def _fields(options) -> dict:
    import dataclasses

    return {f.name: getattr(options, f.name) for f in dataclasses.fields(options)}
