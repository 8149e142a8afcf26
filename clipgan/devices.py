"""Which device and which autocast dtype a run uses. No models here (memory and run setup share it)."""

from __future__ import annotations

from pathlib import Path

import torch

from clipgan.errors import ClipganError


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ClipganError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ClipganError("CUDA was asked for but is not available here")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ClipganError(f"no such GPU: {name} ({torch.cuda.device_count()} available)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ClipganError("MPS was asked for but is not available here")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ClipganError(f"unsupported device {name!r}")
    return device


def cpu_has_native_bf16() -> bool:
    """Whether this CPU does bf16 arithmetic in hardware (AVX-512 BF16 or AMX); elsewhere torch
    emulates it, 8-24x slower than fp32 (docs/benchmarks.md). Linux only: False elsewhere."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for plain fp32."""
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return None
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
