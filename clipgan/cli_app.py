"""The typer app and what every command module shares (error and notice handling, which options the
user typed). Command modules import this, never `clipgan.cli`, which imports them: arrows one way."""

from __future__ import annotations

import contextlib
import functools
import signal
import sys
import warnings

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


def _interrupted_early(signum, frame):
    """Ctrl-C while typer parses the command line (it would exit 130 without a word)."""
    typer.echo("interrupted; nothing saved", err=True)
    sys.exit(130)


def _sigint_as_usual() -> None:
    if signal.getsignal(signal.SIGINT) is _interrupted_early:
        signal.signal(signal.SIGINT, signal.default_int_handler)



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


