"""A model stored as its differences from another (a bundled CLIP beside the bundled CLIP it
was trained from): a safetensors file whose tensors replace the base's of the same name, and for
a table where few rows changed, `NAME.rows` (int64 row indices) with `NAME.values` (those rows).
Its metadata holds the base file's sha256: an overlay applies to those exact bytes only.
Tensors only (safetensors): nothing in the file can run code.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from torch import Tensor

from clipgan.errors import ClipganError

KIND = "clipgan-overlay"
ROWS, VALUES = ".rows", ".values"
ROW_SHARE = 0.5  # a table with more changed rows than this share is stored whole


def file_sha256(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def make_overlay(full: dict[str, Tensor], base: dict[str, Tensor]) -> dict[str, Tensor]:
    """The tensors that turn `base` into `full` (same names, shapes and dtypes in both)."""
    if set(full) != set(base):
        raise ClipganError("an overlay needs two models with the same tensor names")
    out = {}
    for name, t in full.items():
        b = base[name]
        if t.shape != b.shape or t.dtype != b.dtype:
            raise ClipganError(f"an overlay needs tensors of one shape and dtype: {name} differs")
        if torch.equal(t, b):
            continue
        if t.dim() == 2:
            changed = (t != b).any(dim=1).nonzero().flatten()
            if len(changed) <= ROW_SHARE * len(t):
                out[name + ROWS], out[name + VALUES] = changed.to(torch.int64), t[changed].contiguous()
                continue
        out[name] = t.contiguous()
    return out


def save_overlay(tensors: dict[str, Tensor], base_file: Path | str, path: Path | str) -> None:
    """Writes `tensors` (a make_overlay) for the base at `base_file`; the final name appears only
    once the file is whole."""
    from safetensors.torch import save_file

    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    save_file(tensors, str(partial), metadata={"format": "pt", "kind": KIND, "base_sha256": file_sha256(base_file)})
    os.replace(partial, path)


def apply_overlay(state: dict[str, Tensor], path: Path | str, base_file: Path | str) -> dict[str, Tensor]:
    """`state` (the model loaded from `base_file`) with the overlay at `path` applied; ClipganError
    in one line when the file is no overlay, or one of another base or another architecture."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise ClipganError(f"{path} is not a readable safetensors file ({str(e).splitlines()[0][:120]})") from None
    if meta.get("kind") != KIND:
        raise ClipganError(f"{path} is not a clipgan overlay (no kind={KIND} in its metadata)")
    if meta.get("base_sha256") != file_sha256(base_file):
        raise ClipganError(f"{path} was made for another {Path(base_file).name} than {base_file}; "
                           "make toy-models rebuilds both")
    out = dict(state)
    for name, t in tensors.items():
        if name.endswith(VALUES) and name[:-len(VALUES)] + ROWS in tensors:
            continue
        if name.endswith(ROWS):
            target = name[:-len(ROWS)]
            values = tensors.get(target + VALUES)
            out[target] = _rows(out, target, t, values, path)
        elif name in out and out[name].shape == t.shape:
            out[name] = t.to(out[name].dtype)
        else:
            raise ClipganError(f"{path} does not fit this model: {name} is not one of its tensors of that shape")
    return out


def _rows(state: dict[str, Tensor], name: str, rows: Tensor, values: Tensor | None, path) -> Tensor:
    table = state.get(name)
    fits = (table is not None and values is not None and table.dim() == 2 and rows.dim() == 1
            and rows.dtype == torch.int64 and values.shape == (len(rows), table.shape[1]))
    if not fits or (len(rows) and not (0 <= int(rows.min()) and int(rows.max()) < len(table))):
        raise ClipganError(f"{path} does not fit this model: the rows it holds for {name} do not fit that table")
    out = table.clone()
    out[rows.to(table.device)] = values.to(table.device, table.dtype)  # the model may sit on a GPU already
    return out
