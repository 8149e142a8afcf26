"""The `clipgan` command: argv -> Settings -> pipeline. Torch loads only when a command runs."""

from __future__ import annotations

import contextlib
import functools
import re
import sys
import warnings
from pathlib import Path
from typing import Annotated, Optional

import typer

from clipgan.config import Augment, InitNoise, Optimizer, Precision, Settings
from clipgan.errors import ClipganError, ClipganNotice

app = typer.Typer(
    help="CLIP-guided VQGAN: turn text into images by optimization.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
D = Settings()  # the defaults shown in --help are the library's own

PROMPTS, OUTPUT, INIT, CUT, OPT, MODELS, RUN = (
    "Prompts", "Output", "Start image", "Cutouts", "Optimizer", "Models", "Run",
)


def user_errors(fn):
    """Bad input ends in one line on stderr and exit code 2, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ClipganError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None

    return wrapper


@contextlib.contextmanager
def notices(quiet: bool):
    """Library notices (ClipganNotice warnings) become 'note:' lines on stderr."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", ClipganNotice)
        original = warnings.showwarning

        def show(message, category, *args, **kwargs):
            if not issubclass(category, ClipganNotice):
                return original(message, category, *args, **kwargs)
            if not quiet:  # through tqdm, so a note never lands inside the progress bar's line
                from tqdm import tqdm

                tqdm.write(f"note: {message}", file=sys.stderr)

        warnings.showwarning = show
        yield


def given(ctx: typer.Context, names: list[str]) -> list[str]:
    """The parameters the user typed (so --from-png settings yield only to those)."""
    # Compared by name: typer >= 0.29 vendors click, so its ParameterSource is not click's.
    sources = {n: ctx.get_parameter_source(n) for n in names}
    return [n for n, s in sources.items() if s is not None and s.name not in ("DEFAULT", "DEFAULT_MAP")]


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
    size: Annotated[tuple[int, int], typer.Option("-s", "--size", help="Width and height in pixels.", rich_help_panel=OUTPUT)] = D.size,
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="png, jpg or webp; default: named after the prompt.", rich_help_panel=OUTPUT)] = None,
    save_every: Annotated[int, typer.Option(help="Rewrite the output every N steps (0: only at the end).", rich_help_panel=OUTPUT)] = 0,
    frames_dir: Annotated[Optional[Path], typer.Option(help="With --save-every, also write numbered frames here.", rich_help_panel=OUTPUT)] = None,
    image_prompt: Annotated[Optional[list[str]], typer.Option(help="Image prompt path[:weight[:stop]]; repeatable.", rich_help_panel=PROMPTS)] = None,
    init_image: Annotated[Optional[str], typer.Option(help="Start from this image.", rich_help_panel=INIT)] = D.init_image,
    init_weight: Annotated[float, typer.Option(help="Pull towards the starting latent.", rich_help_panel=INIT)] = D.init_weight,
    init_noise: Annotated[InitNoise, typer.Option(help="Start without an image from random codes, pixel noise or a gradient.", rich_help_panel=INIT)] = InitNoise(D.init_noise),
    tv_weight: Annotated[float, typer.Option(help="Total-variation smoothing weight.", rich_help_panel=OPT)] = D.tv_weight,
    cutn: Annotated[int, typer.Option(help="Cutouts scored by CLIP per step.", rich_help_panel=CUT)] = D.cutn,
    cut_pow: Annotated[float, typer.Option(help="Cutout size exponent (>1: smaller crops).", rich_help_panel=CUT)] = D.cut_pow,
    augments: Annotated[str, typer.Option(help=f"Comma-separated: {', '.join(a.value for a in Augment)}.", rich_help_panel=CUT)] = ",".join(D.augments),
    optimizer: Annotated[Optimizer, typer.Option(help="torch optimizer.", rich_help_panel=OPT)] = Optimizer(D.optimizer),
    lr: Annotated[float, typer.Option(help="Learning rate.", rich_help_panel=OPT)] = D.lr,
    seed: Annotated[Optional[int], typer.Option(help="Random seed (default: drawn and printed).", rich_help_panel=RUN)] = D.seed,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.", rich_help_panel=RUN)] = D.device,
    precision: Annotated[Precision, typer.Option(help="Autocast precision.", rich_help_panel=RUN)] = Precision(D.precision),
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

    values = dict(prompts=prompts or [], iterations=iterations, size=size, image_prompts=image_prompt or [],
                  init_image=init_image, init_weight=init_weight, init_noise=init_noise, tv_weight=tv_weight,
                  cutn=cutn, cut_pow=cut_pow, augments=augments, optimizer=optimizer, lr=lr, seed=seed,
                  device=device, precision=precision, vqgan=vqgan, vqgan_config=vqgan_config,
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
    check_inputs(settings)
    with notices(quiet):
        result = _run(settings, output, save_every, frames_dir, quiet)
    if not quiet:
        typer.echo(f"saved {output} (seed {result.seed})")


def check_inputs(settings: Settings) -> None:
    """Cheap checks before any model loads: prompts parse, local image files are images."""
    from clipgan.io import open_image
    from clipgan.prompts import parse_prompts

    texts, images = parse_prompts(settings.prompts), parse_prompts(settings.image_prompts)
    if not texts and not images:
        raise ClipganError("give at least one text prompt or --image-prompt")
    for src in [p.text for p in images] + ([settings.init_image] if settings.init_image else []):
        if not src.startswith(("http://", "https://")):  # URLs are fetched once, by the run
            open_image(src)


def _run(settings: Settings, output: Path, save_every: int, frames_dir: Path | None, quiet: bool):
    from tqdm import tqdm

    from clipgan.io import save_image, to_pil
    from clipgan.pipeline import draw_seed
    from clipgan.pipeline import generate as run_generate

    drawn = settings.seed is None
    if drawn:  # drawn here so that intermediate saves carry it too
        settings = settings.replace(seed=draw_seed())
    bar = None

    def on_step(step):
        nonlocal bar
        if bar is None:  # made at the first step, so a run that fails while loading prints only its error
            if drawn and not quiet:
                tqdm.write(f"seed: {settings.seed}", file=sys.stderr)
            bar = tqdm(total=settings.iterations, initial=step.index, disable=quiet, unit="step", dynamic_ncols=True)
        bar.update(1)
        bar.set_postfix(loss=f"{step.loss:.4f}")
        if save_every and (step.index + 1) % save_every == 0:
            image = to_pil(step.image)
            save_image(image, output, settings.to_dict())
            if frames_dir is not None:
                frames_dir.mkdir(exist_ok=True)
                save_image(image, frames_dir / f"{step.index + 1:05d}.png")

    try:
        result = run_generate(settings=settings, callback=on_step)
    finally:
        if bar is not None:
            bar.close()
    save_image(result.image, output, result.settings.to_dict())
    return result


@app.command()
def models():
    """List the known VQGAN models and which are present."""
    from clipgan.models.registry import checkpoints_dir, list_models

    typer.echo(f"checkpoints: {checkpoints_dir()}")
    for status in list_models():
        mark = "bundled" if status.entry.bundled else ("present" if status.present else "-")
        typer.echo(f"{status.name:28} {mark:8} {status.entry.description}")


@app.command()
@user_errors
def download(name: Annotated[str, typer.Argument(help="A name from `clipgan models`.")]):
    """Download a VQGAN's config and checkpoint into the checkpoints folder."""
    from clipgan.download import download_model
    from clipgan.models.registry import get_entry

    if get_entry(name).bundled:
        typer.echo(f"{name} is bundled with clipgan; nothing to download")
        return
    for path in download_model(name):
        typer.echo(f"ok {path}")


def _usage_errors() -> tuple[type, ...]:
    """The exception types typer/click raise for bad argv (typer >= 0.29 vendors its own click)."""
    types: list[type] = []
    if hasattr(typer, "TyperException"):
        types.append(typer.TyperException)
    try:
        import click
    except ImportError:
        pass
    else:
        types.append(click.ClickException)
    return tuple(types)


def main(argv: list[str] | None = None) -> None:
    """Console entry: usage errors become one line and exit code 2, like ClipganError."""
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="clipgan", standalone_mode=False)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except _usage_errors() as e:
        if type(e).__name__ == "NoArgsIsHelpError":  # bare `clipgan`: the help, as typer shows it
            message = e.format_message()
            if message.strip():
                typer.echo(message, err=True)
            sys.exit(2)
        lines = [line.strip() for line in e.format_message().strip().splitlines() if line.strip()]
        typer.echo(f"error: {' '.join(lines) or type(e).__name__}", err=True)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)
