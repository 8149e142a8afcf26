"""Reading checkpoint files safely: tensors only unless the user opts in."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from clipgan.errors import ClipganError

TRUST_HINT = "rerun with --trust-checkpoint if you trust where it came from"


def load_state(path: str | Path, *, trust: bool = False) -> dict:
    """A checkpoint's contents (a dict) from .safetensors, or a torch pickle read with weights_only.

    Published taming checkpoints are lightning dicts; a file that needs arbitrary unpickling
    is refused unless `trust` is set, since unpickling can run code.
    """
    path = Path(path)
    if not path.is_file():
        raise ClipganError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as e:
            raise ClipganError(f"checkpoint {path} is truncated or corrupted ({_short(e)})") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=not trust)
    except Exception as e:  # torch's unpickler fails in many ways on a damaged file
        if not trust and needs_trust(e):
            raise ClipganError(f"checkpoint {path} holds more than tensors (needs full unpickling); {TRUST_HINT}") from None
        raise ClipganError(f"checkpoint {path} is truncated or corrupted ({_short(e)})") from None
    if not isinstance(state, dict):
        raise ClipganError(f"checkpoint {path} does not hold a state dict")
    return state


def needs_trust(e: Exception) -> bool:
    """A sound pickle that names a class weights_only refuses (not a damaged file)."""
    return isinstance(e, pickle.UnpicklingError) and "Unsupported global" in str(e)


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:160] if text else type(e).__name__
