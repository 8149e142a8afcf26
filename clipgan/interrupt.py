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
KINDS = ("generate", "morph", "zoom", "restyle")


def state_path(output: Path) -> Path:
    """`<output stem>.state.pt` beside the output."""
    return output.with_name(f"{output.stem}.state.pt")


@contextlib.contextmanager
def sigterm_interrupts():
    """SIGTERM (a scheduler stopping the job) saves state like Ctrl-C; only while a run is going."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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
    if not isinstance(data, dict) or data.get("kind") not in KINDS or "job" not in data:
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

    def whole(value, low=0) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= low

    if data.get("version") != 1:
        return f"version {brief(data.get('version'))} (this clipgan reads version 1)"
    if not isinstance(data.get("settings"), dict):
        return "no settings"
    if not isinstance(data["job"], dict):
        return "no job"
    frames = data.get("frames")
    if frames is not None and not (tensor(frames, torch.uint8, 4) and frames.shape[-1] == 3 and frames.shape[0] > 0):
        return "its saved frames are not video frames"
    if data["kind"] == "generate":
        rng, z = data.get("rng"), data.get("z")
        if not (tensor(z, dims=4) and z.is_floating_point() and z.shape[0] == 1 and bool(torch.isfinite(z).all())):
            return "its latent z is not a finite (1, C, H, W) tensor"
        if not whole(data.get("next_step")):
            return f"next_step must be a whole number of at least 0, got {brief(data.get('next_step'))}"
        if not (isinstance(data.get("optimizer"), dict) and {"state", "param_groups"} <= set(data["optimizer"])):
            return "no optimizer state"
        if not tensor(rng, torch.uint8, 1):
            return "no random number generator state"
        losses = data.get("losses", [])
        if not isinstance(losses, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in losses):
            return "its losses are not a list of numbers"
        return None
    carry, job = data.get("carry"), data["job"]
    if job.get("kind") != data["kind"]:
        return f"a {data['kind']} state holding a {brief(job.get('kind'))} job"
    if not isinstance(carry, dict) or not whole(carry.get("next")) or not tensor(carry.get("rng"), torch.uint8, 1):
        return "no usable carry (next frame and random state)"
    if not (whole(job.get("total"), 1) and carry["next"] <= job["total"]):
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
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 0 < fps <= 240:
        return f"fps must be a number from 0 to 240, got {brief(fps)}"
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
