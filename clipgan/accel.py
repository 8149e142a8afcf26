"""The CUDA path: torch.compile and CUDA graphs for the decoder and the CLIP image towers.

Settings.compile and Settings.cuda_graphs take auto|on|off. `auto` means: on where it is
measured to pay. Measured on one H200 at 512 px, cutn 32 (docs/benchmarks.md): CUDA graphs
(compile mode reduce-overhead) cut a step from 0.081 to 0.035 s but cost about 52 s of
compiling, so they pay from about 1130 steps; plain compile (0.050 s, 58 s to compile) pays
later than CUDA graphs always. AUTO below holds those break-even step counts: the one place to
change after a new `python -m clipgan.bench.gpu`. On CPU auto is always off (not measured to
pay). `on` asks for it on any device (torch.compile works on CPU too, slowly to start).

The compiled forwards replace the modules' own for the duration of a run, like low-memory's
checkpointed forward (clipgan.models.lowmem), and are removed afterwards. Compilation is lazy:
it fails, if it fails, inside a step. The loop then calls `fallback`, which puts the eager
forwards back, says so once (ClipganNotice) and lets the step run again: a compile failure
never stops a run.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from clipgan.errors import ClipganNotice

# from how many steps `auto` turns each on, on CUDA (None: never); elsewhere auto is always off.
# cuda_graphs: 52 s compile / (0.0807 - 0.0346) s saved per step = 1130 steps, rounded up.
AUTO = {"compile": None, "cuda_graphs": 1200}


def resolve(setting: str, name: str, device: torch.device, steps: int = 0) -> bool:
    """auto|on|off -> whether to use `name` ("compile" or "cuda_graphs") on `device` for a run of `steps`."""
    if setting == "on":
        return True
    if setting == "off":
        return False
    from_steps = AUTO[name]
    return torch.device(device).type == "cuda" and from_steps is not None and steps >= from_steps


def compile_mode(compile: bool, cuda_graphs: bool) -> str | None:
    """torch.compile's mode for the options, None for eager. CUDA graphs come through compile."""
    if cuda_graphs:
        return "reduce-overhead"
    return "default" if compile else None


def accelerated_modules(model_modules, perceptors) -> list[nn.Module]:
    """The modules worth compiling: the image model's (a VQGAN's decoder; a VQGAN itself is taken
    as its decoder) and each CLIP image tower."""
    if isinstance(model_modules, nn.Module):
        model_modules = [getattr(model_modules, "decoder", model_modules)]
    modules = list(model_modules)
    for p in perceptors:
        visual = getattr(getattr(p, "model", None), "visual", None)
        if isinstance(visual, nn.Module) and all(visual is not m for m in modules):
            modules.append(visual)
    return modules


def _first_line(e: BaseException) -> str:
    lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):  # dynamo's "backend='x' raised:" then the cause
        lines[0] = f"{lines[0]} {lines[1]}"
    return f"{type(e).__name__}: {lines[0][:200]}" if lines else type(e).__name__


class Accelerated:
    """Compiled forwards put in place on some modules; eager again after `fallback` or `restore`."""

    def __init__(self, modules: list[nn.Module], mode: str, backend="inductor"):
        self.mode = mode
        self.cuda_graphs = mode == "reduce-overhead"
        self._saved: list[tuple[nn.Module, object]] = []  # (module, its instance forward or None)
        self.active = False
        try:
            kwargs = {"mode": mode} if backend == "inductor" else {}
            for m in modules:
                previous = m.__dict__.get("forward")  # low-memory's checkpointed forward, say
                compiled = torch.compile(m.forward, backend=backend, **kwargs)
                self._saved.append((m, previous))
                m.forward = compiled
            self.active = True
        except Exception as e:  # an unknown backend or option fails here, before any step
            self.fallback(e)

    def step_begin(self) -> None:
        """Before each step: with CUDA graphs, the last step's graph outputs may be overwritten."""
        if self.active and self.cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()

    def restore(self) -> None:
        for m, previous in reversed(self._saved):
            if previous is None:
                m.__dict__.pop("forward", None)
            else:
                m.forward = previous
        self._saved.clear()
        self.active = False

    def fallback(self, error: BaseException) -> None:
        """Eager from now on, with one notice."""
        self.restore()
        what = "torch.compile with CUDA graphs" if self.cuda_graphs else "torch.compile"
        warnings.warn(f"{what} failed ({_first_line(error)}); running without it", ClipganNotice, stacklevel=2)


def can_fall_back(accel: Accelerated | None, error: BaseException) -> bool:
    """Whether a step that raised `error` should run again eagerly: compiled code was in use and
    the error is not one eager code would raise too (bad input, out of memory, NaN)."""
    from clipgan.errors import ClipganError

    return accel is not None and accel.active and not isinstance(error, (ClipganError, torch.OutOfMemoryError))
