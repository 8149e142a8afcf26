"""Interrupted jobs: SIGTERM taken like Ctrl-C, and the state file that `clipgan resume` reads.

A state file is a dict saved with torch.save and read back with weights_only=True (tensors,
numbers, strings, lists and dicts only; never full unpickling): its "kind" says which command
wrote it. Its fields are checked before any work (`state_problem`), since a state file may be
edited or come from elsewhere; the settings in it never grant trust (Settings.from_dict).
"""

from __future__ import annotations

import contextlib
import signal
from pathlib import Path

from clipgan.errors import ClipganError, brief

INTERRUPTED = 130  # the shell's code for Ctrl-C
KINDS = ("generate", "morph", "zoom", "restyle", "outpaint", "upscale")


def state_path(output: Path) -> Path:
    """`<output stem>.state.pt` beside the output."""
    return output.with_name(f"{output.stem}.state.pt")


class Interrupts:
    """Ctrl-C and SIGTERM raise KeyboardInterrupt, except inside `held()`, where the signal waits
    until the block ends: a step's bookkeeping (frame written, state noted) is all or nothing."""

    def __init__(self):
        self._depth = 0
        self._pending = False

    def _signal(self, signum, frame):
        if self._depth:
            self._pending = True
            return
        raise KeyboardInterrupt

    @contextlib.contextmanager
    def held(self):
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if not self._depth and self._pending:  # only when the block ended normally: never masks its error
            self._pending = False
            raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_interrupts():
    """SIGTERM (a scheduler stopping the job) interrupts like Ctrl-C, only while a run is going;
    yields the `Interrupts` whose `held()` defers both."""
    guard = Interrupts()
    try:
        previous = {sig: signal.signal(sig, guard._signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: leave signals alone (held() then defers nothing)
        yield guard
        return
    try:
        yield guard
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)  # None: set outside Python


@contextlib.contextmanager
def deferred_sigint():
    """Ctrl-C waits until the block ends, then raises KeyboardInterrupt as usual. For imports and model
    loading: a KeyboardInterrupt raised inside a callback from torch's C++ aborts the process."""
    hit = []

    def note(signum, frame):
        hit.append(signum)

    try:
        previous = signal.signal(signal.SIGINT, note)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if hit:
        raise KeyboardInterrupt


def save_state(state: dict, path: Path) -> None:
    import torch

    from clipgan.io import atomic_path

    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_state(path: Path) -> dict:
    import torch

    if not path.is_file():
        raise ClipganError(f"state file not found: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        raise ClipganError(f"{path} is not a readable clipgan state file") from None
    if not isinstance(data, dict) or not _is(data.get("kind"), KINDS) or "job" not in data:
        raise ClipganError(f"{path} is not a clipgan state file")
    problem = state_problem(data)
    if problem:
        raise ClipganError(f"{path} is not a usable clipgan state file: {problem}")
    return data


def state_problem(data: dict) -> str | None:
    """What is wrong with a state file's fields (an edited or foreign file), or None. Checks
    types and ranges only; what must fit the loaded models (latent shapes) is checked by the run."""
    import torch

    def tensor(value, dtype=None, dims=None) -> bool:
        return (isinstance(value, torch.Tensor) and (dtype is None or value.dtype == dtype)
                and (dims is None or value.dim() == dims))

    if not _is(data.get("version"), (1,)):
        return f"version {brief(data.get('version'))} (this clipgan reads version 1)"
    if not isinstance(data.get("settings"), dict):
        return "no settings"
    if not isinstance(data["job"], dict):
        return "no job"
    frames = data.get("frames")
    if frames is not None and not (tensor(frames, torch.uint8, 4) and frames.shape[-1] == 3 and frames.shape[0] > 0):
        return "its saved frames are not video frames"
    if data["kind"] in ("outpaint", "upscale"):
        problem = _edit_job_problem(data["job"], data["kind"])
        if problem:
            return problem
    if data["kind"] in ("generate", "outpaint", "upscale"):
        if "z" not in data:  # interrupted before the first step: a state that starts the run over
            return None
        rng, z = data.get("rng"), data.get("z")
        if not (tensor(z, dims=4) and z.is_floating_point() and z.shape[0] == 1 and bool(torch.isfinite(z).all())):
            return "its latent z is not a finite (1, C, H, W) tensor"
        if not _whole(data.get("next_step")):
            return f"next_step must be a whole number of at least 0, got {brief(data.get('next_step'))}"
        if not (isinstance(data.get("optimizer"), dict) and {"state", "param_groups"} <= set(data["optimizer"])):
            return "no optimizer state"
        if not tensor(rng, torch.uint8, 1):
            return "no random number generator state"
        losses = data.get("losses", [])
        if not isinstance(losses, list) or not all(_number(v) for v in losses):
            return "its losses are not a list of numbers"
        if "phase" in data and not (data["phase"] == "refine" and data["kind"] == "generate"
                                    and data["settings"].get("upscale") is not None):
            return f"its phase {brief(data['phase'])} is not the refinement of an upscaled generate"
        return None
    carry, job = data.get("carry"), data["job"]
    if not _is(job.get("kind"), (data["kind"],)):
        return f"a {data['kind']} state holding a {brief(job.get('kind'))} job"
    if carry is None and frames is None:  # interrupted before the first frame: the animation starts over
        carry = {"next": 0}
    elif not isinstance(carry, dict) or not _whole(carry.get("next")) or not tensor(carry.get("rng"), torch.uint8, 1):
        return "no usable carry (next frame and random state)"
    if not (_whole(job.get("total"), 1) and carry["next"] <= job["total"]):
        return f"next frame {carry['next']} beyond the job's {brief(job.get('total'))} frames"
    if (0 if frames is None else len(frames)) != carry["next"]:
        return f"{0 if frames is None else len(frames)} saved frames, but the next frame is {carry['next']}"
    if not (isinstance(job.get("prompts"), list) and all(isinstance(p, str) for p in job["prompts"])):
        return "its prompts are not a list of strings"
    if not isinstance(job.get("options"), dict) or not isinstance(job.get("output"), str):
        return "no options or output in its job"
    if data["kind"] == "restyle" and not isinstance(job.get("video"), str):
        return "a restyle without its source video"
    fps = job.get("fps")
    if not (_number(fps) and 0 < fps <= 240):
        return f"fps must be a number from 0 to 240, got {brief(fps)}"
    return None


def _whole(value, low: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is(value, allowed: tuple) -> bool:
    """value is one of `allowed` (strings or ints), compared only as such: a tensor or a list in an
    edited state file must not reach `==` (an empty tensor's truth value raises)."""
    return (isinstance(value, (str, int)) and not isinstance(value, bool)
            and any(type(value) is type(a) and value == a for a in allowed))


def _edit_job_problem(job: dict, kind: str) -> str | None:
    """An outpaint or upscale job's own fields (what `clipgan resume` passes to the edit)."""
    if not _is(job.get("kind"), (kind,)):
        return f"a {kind} state holding a {brief(job.get('kind'))} job"
    if not (isinstance(job.get("output"), str) and isinstance(job.get("image"), str)):
        return "no image or output in its job"
    if not _whole(job.get("total"), 1):
        return f"its job's total steps must be a whole number of at least 1, got {brief(job.get('total'))}"
    if kind == "outpaint":
        extend = job.get("extend")
        if not (isinstance(extend, dict) and all(isinstance(k, str) and _number(v) for k, v in extend.items())):
            return f"its margins are not numbers by side: {brief(extend)}"
        if job.get("feather") is not None and not _number(job.get("feather")):
            return f"its feather is not a number: {brief(job.get('feather'))}"
    else:
        if not (_number(job.get("factor")) and _number(job.get("steps"))):
            return "its factor and steps are not numbers"
        if not (isinstance(job.get("prompts"), list) and all(isinstance(p, str) for p in job["prompts"])):
            return "its prompts are not a list of strings"
    return None


def move(value, device):
    """Tensors anywhere inside dicts, lists and tuples, detached and moved to `device` (a state is
    saved from the CPU so that it loads on any machine, and moved back to the run's device)."""
    if hasattr(value, "detach"):
        return value.detach().to(device)
    if isinstance(value, dict):
        return {k: move(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(move(v, device) for v in value)
    return value
