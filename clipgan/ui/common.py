"""What every tab shares: the app's context, errors as page messages, and a run streamed into
the page (previews, progress, Stop)."""

from __future__ import annotations

import functools
import inspect
import logging
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path

import gradio as gr

from clipgan.config import Settings
from clipgan.errors import ClipganError, NumericError
from clipgan.ui.forms import whole
from clipgan.ui.runs import Cache, Stops

DEVICE = "device"  # the one concurrency group of every event that runs models: one run at a time
log = logging.getLogger("clipgan.ui")


@dataclass
class Context:
    outdir: Path  # results, videos and kept uploads
    models: Cache = field(default_factory=Cache)
    perceptors: Cache = field(default_factory=Cache)
    stops: Stops = field(default_factory=Stops)


def page_error(e: BaseException) -> gr.Error:
    """The one line a user sees in the page; unexpected errors are logged in the server's console."""
    if isinstance(e, gr.Error):
        return e
    if isinstance(e, ClipganError):
        return gr.Error(str(e), print_exception=False)
    from clipgan.memory import out_of_memory_message

    message = out_of_memory_message(e) if isinstance(e, (RuntimeError, MemoryError)) else None
    if message is None:
        log.error("%s", "".join(traceback.format_exception(e)))
        first = (str(e).strip().splitlines() or [""])[0]
        message = f"{type(e).__name__}: {first}" if first else type(e).__name__
    return gr.Error(message, print_exception=False)


def page_errors(fn):
    """Any exception from a handler (plain or generator) becomes a one-line message in the page."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as e:
                raise page_error(e) from None
        return gen

    @functools.wraps(fn)
    def plain(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            raise page_error(e) from None
    return plain


def session(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or "local"


def stopper(ctx: Context):
    """The Stop buttons' handler: sets the flag of the clicking session's run."""
    def stop(request: gr.Request):
        ctx.stops.stop(session(request))
    return stop


def status_line(step: int, total: int, loss: float | None) -> str:
    return f"step {step} / {total}" + (f" · loss {loss:.4f}" if loss is not None else "")


def follow(events, total: int, progress, picture, status):
    """Drives `runs.stream` events into the page: the progress bar and status every step, the
    picture at each preview, notes as page warnings; returns the final event (done or stopped)."""
    for event in events:
        if event.kind == "step":
            progress((event.step, total), desc="steps", unit="steps")
            text = status_line(event.step, total, event.loss)
            yield {status: text} if event.image is None else {picture: event.image, status: text}
        elif event.kind == "note":
            gr.Warning(event.value)
        elif event.kind == "error" and isinstance(event.value, NumericError) and event.image is not None:
            gr.Warning(str(event.value))  # NaN: the run ends, and its last good picture is kept like a Stop
            return replace(event, kind="stopped")
        elif event.kind == "error":
            raise event.value
        else:
            return event
    raise RuntimeError("the run ended without a result")  # stream always ends with done/stopped/error


def model_choices() -> tuple[list[str], list[str]]:
    """VQGANs on disk (bundled default first) and the bundled CLIP aliases; other CLIPs can be typed."""
    from clipgan.models.registry import CLIP_ALIASES, list_models

    vqgans = [m.name for m in list_models() if m.present]
    return vqgans or [Settings().vqgan], list(CLIP_ALIASES)


def diffusion_choices() -> list[str]:
    """Diffusion models on disk (the bundled one first); a diffusers folder can be typed."""
    from clipgan.models.diffusion_registry import DIFFUSION_MODELS, is_present

    return [e.name for e in DIFFUSION_MODELS.values() if is_present(e)] or [Settings().diffusion]


# The image models the Morph and Edit tabs draw with (the optimized others have no morph or edit of their own)
ROW_IMAGE_MODELS = ("vqgan", "diffusion")


def settings_row(d: Settings, prefix: str) -> dict:
    """Steps, seed, cutouts and the model choice: the few settings the Morph and Edit tabs ask for."""
    vqgans, clips = model_choices()
    with gr.Row():
        c = {"iterations": gr.Number(d.iterations, label="Steps", precision=0, minimum=1, elem_id=f"{prefix}-steps"),
             "seed": gr.Textbox("" if d.seed is None else str(d.seed), label="Seed (empty: random)"),
             "cutn": gr.Number(d.cutn, label="Cutouts", precision=0, minimum=1, elem_id=f"{prefix}-cutn"),
             "clip": gr.Dropdown(clips, value=list(d.clip), label="CLIP", multiselect=True, allow_custom_value=True)}
    with gr.Row():
        c["image_model"] = gr.Dropdown(list(ROW_IMAGE_MODELS), value=d.image_model, label="Image model",
                                       elem_id=f"{prefix}-image-model")
        c["vqgan"] = gr.Dropdown(vqgans, value=d.vqgan, label="VQGAN", allow_custom_value=True)
        c["diffusion"] = gr.Dropdown(diffusion_choices(), value=d.diffusion, allow_custom_value=True,
                                     label="Diffusion model (or a diffusers UNet folder)", elem_id=f"{prefix}-diffusion")
    return c


def run_settings(values: dict, **more) -> Settings:
    """Settings from a settings_row's values (numbers arrive as floats or None)."""
    d = Settings()
    return d.replace(iterations=whole(values["iterations"], "steps"), seed=whole(values["seed"], "seed"),
                     cutn=whole(values["cutn"], "cutouts"), vqgan=values["vqgan"], clip=values["clip"] or list(d.clip),
                     image_model=values.get("image_model") or d.image_model,
                     diffusion=values.get("diffusion") or d.diffusion, **more)
