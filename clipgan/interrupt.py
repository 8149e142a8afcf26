"""Interrupted jobs: SIGTERM taken like Ctrl-C, and the state file that `clipgan resume` reads.

A state file is a dict saved with torch.save and read back with weights_only=True (tensors,
numbers, strings, lists and dicts only): its "kind" says which command wrote it.
"""

from __future__ import annotations

import contextlib
import signal
from pathlib import Path

from clipgan.errors import ClipganError

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
    return data


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
