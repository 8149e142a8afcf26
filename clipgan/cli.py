"""The `clipgan` command: argv -> Settings -> pipeline. Torch loads only when a command runs."""

from __future__ import annotations

import signal
import sys
from typing import Annotated

import typer

from clipgan.cli_app import (COMMANDS, CUT, FEATHER_HELP, INIT, MODELS, OPT, OUTPUT, PROMPTS, RUN,  # noqa: F401
                             SIZE_HELP, D, _interrupted_early, app, given, notices, user_errors)

# commands defined in their own modules register themselves on `app` when imported
from clipgan import cli_animate, cli_batch, cli_edit, cli_generate, cli_ui  # noqa: E402,F401


@app.command()
def models():
    """List the known VQGAN models and which are present."""
    from clipgan.models.registry import checkpoints_dir, list_models

    typer.echo(f"checkpoints: {checkpoints_dir()}")
    for status in list_models():
        mark = "bundled" if status.entry.bundled else ("present" if status.present else "-")
        typer.echo(f"{status.name:28} {mark:8} {status.entry.description}")
    from clipgan.models.diffusion_registry import DIFFUSION_MODELS, is_present

    typer.echo("diffusion models (--image-model diffusion --diffusion NAME):")
    for e in DIFFUSION_MODELS.values():
        mark = "bundled" if e.bundled else ("present" if is_present(e) else "-")
        typer.echo(f"{e.name:28} {mark:8} {e.description}; {e.size} px")


@app.command()
@user_errors
def download(name: Annotated[str, typer.Argument(help="A name from `clipgan models`.")]):
    """Download a VQGAN's config and checkpoint into the checkpoints folder."""
    from clipgan.download import download_model
    from clipgan.models.registry import get_entry

    from clipgan.models.diffusion_registry import DIFFUSION_MODELS

    entry = DIFFUSION_MODELS.get(name) or get_entry(name)
    if entry.bundled:
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
    try:
        previous = signal.signal(signal.SIGINT, _interrupted_early)
    except ValueError:  # not the main thread
        previous = None
    try:
        _main(argv)
    finally:
        if previous is not None and signal.getsignal(signal.SIGINT) is _interrupted_early:
            signal.signal(signal.SIGINT, previous)


def _main(argv: list[str] | None) -> None:
    try:
        command = typer.main.get_command(app)
        code = command.main(args=argv, prog_name="clipgan", standalone_mode=False)
    except typer.Abort:  # Ctrl-C outside a run's own handling (loading, checking): nothing was saved
        typer.echo("interrupted; nothing saved", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        typer.echo("interrupted; nothing saved", err=True)
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


