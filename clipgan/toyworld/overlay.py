"""`python -m clipgan.toyworld.overlay FULL BASE OUT`: writes OUT, the overlay (clipgan.models.overlay)
that turns the CLIP weights BASE into FULL (both safetensors of one architecture). `make
toy-models` uses it to bundle the toy CLIP's first training stage as toy-clip-contrast beside the
fine-tuned toy CLIP, for a fraction of its size."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from clipgan.errors import ClipganError


def main(argv: list[str] | None = None) -> int:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from clipgan.models.overlay import make_overlay, save_overlay

    p = argparse.ArgumentParser(prog="python -m clipgan.toyworld.overlay", description=__doc__.split("\n\n")[0])
    p.add_argument("full", type=Path, help="the CLIP weights the overlay rebuilds")
    p.add_argument("base", type=Path, help="the CLIP weights it applies to")
    p.add_argument("out", type=Path)
    a = p.parse_args(argv)
    try:
        if a.out.exists():
            raise ClipganError(f"{a.out} exists; remove it first")
        try:
            full, base = load_file(str(a.full)), load_file(str(a.base))
        except (SafetensorError, OSError) as e:
            raise ClipganError(f"could not read the weights ({str(e).splitlines()[0][:120]})") from None
        tensors = make_overlay(full, base)
        save_overlay(tensors, a.base, a.out)
    except ClipganError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{a.out}: {a.out.stat().st_size / 1e6:.2f} MB, {len(tensors)} tensors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
