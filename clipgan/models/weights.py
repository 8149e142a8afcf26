"""Reading checkpoint files safely: tensors only unless the user opts in."""

from __future__ import annotations

import pickle
import pickletools
import re
import warnings
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
        with warnings.catch_warnings():  # torch warns about pickle protocols before refusing: the error says it all
            warnings.filterwarnings("ignore", "Detected pickle protocol", UserWarning)
            state = torch.load(path, map_location="cpu", weights_only=not trust)
    except Exception as e:  # torch's unpickler fails in many ways on a damaged file
        if not trust and needs_trust(e):
            raise ClipganError(f"checkpoint {path} holds more than tensors (needs full unpickling); {TRUST_HINT}") from None
        raise ClipganError(f"checkpoint {path} is truncated or corrupted ({_short(e)})") from None
    if not isinstance(state, dict):
        raise ClipganError(f"checkpoint {path} does not hold a state dict")
    return state


_OPCODES = {op.code for op in pickletools.opcodes}


def needs_trust(e: Exception) -> bool:
    """A sound pickle that weights_only refuses (not a damaged file): one that names a class or a
    function (how a malicious pickle runs code), or uses a real pickle opcode weights_only lacks.
    Random bytes fail on opcodes that do not exist, and truncated files end early (EOFError)."""
    if not isinstance(e, pickle.UnpicklingError):
        return False
    text = str(e)
    if re.search(r"unsupported global|unrecognized function|blocked|not an allowed global", text, re.I):
        return True
    m = re.search(r"Unsupported operand (\d+)", text)
    return bool(m) and int(m.group(1)) < 256 and chr(int(m.group(1))) in _OPCODES


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:160] if text else type(e).__name__
