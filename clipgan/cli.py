"""The `clipgan` command: argv -> Settings -> pipeline. Torch loads only when a command runs."""

from __future__ import annotations

import contextlib
import functools
import signal
import sys
import warnings
from typing import Annotated

import typer
import typer.core

from clipgan.config import Settings
from clipgan.errors import ClipganError, ClipganNotice

# Help lists commands in this order, whichever command module happened to be imported first.
COMMANDS = ("generate", "resume", "morph", "zoom", "restyle", "outpaint", "upscale", "score", "batch", "ui", "models", "download")


class _Commands(typer.core.TyperGroup):
    def list_commands(self, ctx):
        rank = {name: i for i, name in enumerate(COMMANDS)}
        return sorted(super().list_commands(ctx), key=lambda n: (rank.get(n, len(rank)), n))


app = typer.Typer(
    cls=_Commands,
    help="CLIP-guided VQGAN: turn text into images by optimization.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
D = Settings()  # the defaults shown in --help are the library's own
from clipgan.cli_options import CUT, FEATHER_HELP, INIT, MODELS, OPT, OUTPUT, PROMPTS, RUN, SIZE_HELP  # noqa: E402,F401


def user_errors(fn):
    """Bad input ends in one line on stderr and exit code 2, never a traceback; Ctrl-C in one line, 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        _sigint_as_usual()  # from here on, Ctrl-C is a KeyboardInterrupt that the command handles
        try:
            from clipgan.interrupt import deferred_sigint

            with deferred_sigint():  # torch's import is not safe to interrupt (C++ aborts)
                import torch  # noqa: F401
            return fn(*args, **kwargs)
        except ClipganError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:  # before a run handles it (imports, checks, loading models): one line
            typer.echo("interrupted; nothing saved", err=True)
            raise typer.Exit(130) from None
        except (RuntimeError, MemoryError) as e:  # out of memory mid-run: advice, not a traceback
            from clipgan.memory import out_of_memory_message

            message = out_of_memory_message(e)
            if message is None:
                raise
            typer.echo(f"error: {message}", err=True)
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


# commands defined in their own modules register themselves on `app` when imported
from clipgan import cli_generate  # noqa: E402,F401  (generate, resume)


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


def _interrupted_early(signum, frame):
    """Ctrl-C while typer parses the command line (it would exit 130 without a word)."""
    typer.echo("interrupted; nothing saved", err=True)
    sys.exit(130)


def _sigint_as_usual() -> None:
    if signal.getsignal(signal.SIGINT) is _interrupted_early:
        signal.signal(signal.SIGINT, signal.default_int_handler)


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


from clipgan import cli_animate  # noqa: E402,F401  (morph, zoom, restyle)
from clipgan import cli_edit  # noqa: E402,F401  (outpaint, upscale, score)
from clipgan import cli_ui  # noqa: E402,F401  (ui)
from clipgan import cli_batch  # noqa: E402,F401  (batch)
