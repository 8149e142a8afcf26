"""`clipgan outpaint`, `clipgan upscale` and `clipgan score`: editing commands on the main app.

Registered by importing this module (cli.py does so at its end). Torch loads only when a
command runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from clipgan import cli_options as O
from clipgan.cli_app import FEATHER_HELP, app, notices, user_errors
from clipgan.config import UPSCALE_STEPS, Precision, Settings
from clipgan.errors import ClipganError

D = Settings()
RUN, MODELS = "Run", "Models"

# Options shared by the commands that run the optimization, as typer annotations.
Iterations = O.Iterations
Output = Annotated[Optional[Path], typer.Option("-o", "--output", help="png, jpg or webp; default: beside the input.")]
Seed = O.Seed
Cutn = O.Cutn
Lr = O.Lr
Device = O.Device
Prec = O.PrecisionOpt
Quiet = O.Quiet
Vqgan = O.VqganName
VqganConfig = O.VqganConfig
VqganCkpt = O.VqganCheckpoint
Clip = O.Clip
Trust = O.Trust


def _output_for(image: Path, suffix: str) -> Path:
    """IMAGE-suffix.png beside the input, never a file that exists."""
    path, n = image.with_name(f"{image.stem}-{suffix}.png"), 1
    while path.exists():
        path, n = image.with_name(f"{image.stem}-{suffix}-{n}.png"), n + 1
    return path


def _progress(total: int, quiet: bool, seed_drawn: int | None, initial: int = 0):
    """A step callback drawing a progress bar (created at the first step) and its closer."""
    from tqdm import tqdm

    state = {}

    def on_step(step):
        if "bar" not in state:
            if seed_drawn is not None and not quiet:
                tqdm.write(f"seed: {seed_drawn}", file=sys.stderr)
            state["bar"] = tqdm(total=total, initial=initial, disable=quiet, unit="step", dynamic_ncols=True)
        state["bar"].update(1)
        state["bar"].set_postfix(loss=f"{step.loss:.4f}")

    def close():
        if "bar" in state:
            state["bar"].close()

    return on_step, close


def _edit(job: dict):
    """The edit function a job names, with its own arguments bound."""
    from clipgan import edit

    if job["kind"] == "outpaint":
        return lambda **kw: edit.outpaint(job["image"], [], extend=job["extend"], feather_px=job["feather"],
                                          fill=job["fill"], **kw)
    return lambda **kw: edit.upscale(job["image"], job["prompts"], factor=job["factor"], steps=job["steps"], **kw)


def _run_edit(job: dict, settings: Settings, quiet: bool, resume: dict | None = None):
    """Runs an edit job (outpaint or upscale) with a progress bar and saves its picture with its settings.
    Ctrl-C or SIGTERM keeps the picture so far and a state file for `clipgan resume` (exit 130)."""
    from clipgan.interrupt import INTERRUPTED, save_state, sigterm_interrupts, state_path
    from clipgan.io import save_image, to_pil
    from clipgan.pipeline import draw_seed, resume_state, rng_state

    output, path = Path(job["output"]), state_path(Path(job["output"]))
    drawn = None
    if settings.seed is None:  # drawn here so it can be printed before the run and kept in a state
        drawn = draw_seed()
        settings = settings.replace(seed=drawn)
    going_on = resume if resume is not None and "z" in resume else None
    on_step, close = _progress(job["total"], quiet, drawn, going_on["next_step"] if going_on else 0)
    last, guard = {}, None

    def step(s):
        with guard.held():  # a signal waits until the step is noted
            on_step(s)
            last.update(step=s, state=resume_state(s, settings, [], rng_state()))

    from clipgan.io import output_lock

    try:
        with output_lock(output), notices(quiet), sigterm_interrupts() as guard:  # locked before the models load
            result = _edit(job)(callback=step, settings=settings, seed=settings.seed, resume=going_on)
    except KeyboardInterrupt:
        close()
        if last:
            save_image(to_pil(last["step"].image), output, settings.to_dict())
            save_state({**last["state"], "kind": job["kind"], "job": job}, path)
            done = f"interrupted at step {last['step'].index + 1}; image so far saved to {output}"
        else:
            if resume is None:  # nothing made yet: a state that starts the same edit over
                save_state({"kind": job["kind"], "version": 1, "job": job, "settings": settings.to_dict()}, path)
            done = "interrupted before the first step"
        typer.echo(f"{done}; resume with: clipgan resume {path}", err=True)
        raise typer.Exit(INTERRUPTED) from None
    finally:
        close()
    save_image(result.image, output, result.settings.to_dict())
    if not quiet:
        typer.echo(f"saved {output} ({result.image.width}x{result.image.height}, seed {result.seed})")
    return result


def resume_edit(data: dict, quiet: bool, trust: bool = False) -> None:
    """`clipgan resume` for an outpaint or upscale state."""
    _run_edit(data["job"], Settings.from_dict(data["settings"]).replace(trust_checkpoint=trust), quiet, resume=data)


def _check_image(path: Path) -> None:
    from clipgan.io import open_image

    open_image(path)


@app.command()
@user_errors
def outpaint(
    image: Annotated[Path, typer.Argument(help="The picture to extend.", show_default=False)],
    prompts: Annotated[list[str], typer.Argument(help='What the new area shows: "text:weight:stop".', show_default=False)],
    extend: Annotated[str, typer.Option(help="Pixels to add per side: left=128,right=128,top=0,bottom=0 (sides left out: 0).")],
    output: Output = None,
    feather: Annotated[Optional[int], typer.Option(help=FEATHER_HELP, show_default=False)] = D.feather,
    fill: Annotated[str, typer.Option(help="How the new area starts: replicate (the border) or noise.")] = "replicate",
    contrast: O.Contrast = None,
    contrast_weight: O.ContrastWeight = D.contrast_weight,
    contrast_clip: O.ContrastClip = None,
    iterations: Iterations = D.iterations,
    seed: Seed = D.seed,
    cutn: Cutn = D.cutn,
    lr: Lr = D.lr,
    device: Device = D.device,
    precision: Prec = Precision(D.precision),
    image_model: O.ImageModelOpt = D.image_model,
    vqgan: Vqgan = D.vqgan,
    vqgan_config: VqganConfig = D.vqgan_config,
    vqgan_checkpoint: VqganCkpt = D.vqgan_checkpoint,
    clip: Clip = None,
    trust_checkpoint: Trust = D.trust_checkpoint,
    quiet: Quiet = False,
):
    """Grow a picture's canvas; the new area follows the prompts and the original stays as it was."""
    from clipgan.io import check_output

    sides = _parse_extend(extend)
    if fill not in ("replicate", "noise"):
        raise ClipganError(f"unknown --fill {fill!r}; use replicate or noise")
    _check_image(image)
    output = check_output(output or _output_for(image, "outpaint"))
    settings = Settings().replace(prompts=prompts, iterations=iterations, seed=seed, cutn=cutn, lr=lr, device=device,
                                  contrast=contrast, contrast_weight=contrast_weight, contrast_clip=O.contrast_clip(contrast_clip),
                                  precision=precision, feather=feather, vqgan=vqgan, image_model=image_model, vqgan_config=vqgan_config,
                                  vqgan_checkpoint=vqgan_checkpoint, clip=[O.clip_name(c) for c in clip] if clip else list(D.clip),
                                  trust_checkpoint=trust_checkpoint)
    job = {"kind": "outpaint", "image": str(image.resolve()), "extend": sides, "feather": feather, "fill": fill,
           "output": str(output.resolve()), "total": settings.iterations}
    _run_edit(job, settings, quiet)


def _parse_extend(text: str) -> dict[str, int]:
    from clipgan.edit import parse_extend

    return parse_extend(text)


@app.command()
@user_errors
def upscale(
    image: Annotated[Path, typer.Argument(help="The picture to enlarge.", show_default=False)],
    prompt: Annotated[Optional[list[str]], typer.Option("-p", "--prompt", help="Text prompt for the refinement; repeatable. Default: the picture itself.")] = None,
    factor: Annotated[float, typer.Option(help="Size multiplier (rounded to the VQGAN factor).")] = 2.0,
    steps: Annotated[int, typer.Option(help="Refinement steps at the larger size.", rich_help_panel=RUN)] = UPSCALE_STEPS,
    output: Output = None,
    low_memory: Annotated[bool, typer.Option(help="Recompute decoder activations in the backward pass (less memory).", rich_help_panel=RUN)] = D.low_memory,
    seed: Seed = D.seed,
    cutn: Cutn = D.cutn,
    lr: Lr = D.lr,
    device: Device = D.device,
    precision: Prec = Precision(D.precision),
    image_model: O.ImageModelOpt = D.image_model,
    vqgan: Vqgan = D.vqgan,
    vqgan_config: VqganConfig = D.vqgan_config,
    vqgan_checkpoint: VqganCkpt = D.vqgan_checkpoint,
    clip: Clip = None,
    trust_checkpoint: Trust = D.trust_checkpoint,
    quiet: Quiet = False,
):
    """Enlarge a picture (Lanczos), then refine it a few steps at the larger size."""
    from clipgan.io import check_output

    if not factor > 1:
        raise ClipganError(f"factor must be more than 1, got {factor}")
    _check_image(image)
    output = check_output(output or _output_for(image, f"x{factor:g}"))
    settings = Settings().replace(iterations=steps, seed=seed, cutn=cutn, lr=lr, device=device, precision=precision,
                                  low_memory=low_memory, vqgan=vqgan, image_model=image_model, vqgan_config=vqgan_config,
                                  vqgan_checkpoint=vqgan_checkpoint, clip=[O.clip_name(c) for c in clip] if clip else list(D.clip),
                                  trust_checkpoint=trust_checkpoint)
    job = {"kind": "upscale", "image": str(image.resolve()), "prompts": list(prompt or []), "factor": factor,
           "steps": steps, "output": str(output.resolve()), "total": steps}
    _run_edit(job, settings, quiet)


@app.command()
@user_errors
def score(
    images: Annotated[list[Path], typer.Argument(help="Pictures to score.", show_default=False)],
    prompt: Annotated[Optional[list[str]], typer.Option("-p", "--prompt", help="Text to score against; repeatable.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list of {image, prompt, score}.")] = False,
    crops: Annotated[bool, typer.Option(help="Average the whole picture with its centre and four corner crops.")] = False,
    clip: Clip = None,
    device: Device = D.device,
    trust_checkpoint: Trust = D.trust_checkpoint,
):
    """CLIP similarity (cosine) of every picture to every prompt, best first."""
    from clipgan.io import open_image

    if not prompt:
        raise ClipganError("give at least one --prompt")
    for path in images:  # before loading any model
        open_image(path)
    from clipgan.score import score as run_score
    from clipgan.score import table

    with notices(quiet=as_json):
        rows = run_score([str(p) for p in images], prompt, clip=[O.clip_name(c) for c in clip] if clip else list(D.clip), device=device, crops=crops,
                         trust=trust_checkpoint)
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in rows], indent=2))
    else:
        typer.echo(table(rows))
