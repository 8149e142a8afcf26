"""Soak: a long run that saves frames must not grow in memory (`pytest -m slow tests/test_soak.py`).

CLIPGAN_SOAK_STEPS shortens it for a quick check (default 2000 steps).
"""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest

from clipgan.io import save_image, to_pil
from clipgan.pipeline import generate

STEPS = int(os.environ.get("CLIPGAN_SOAK_STEPS", "2000"))
WARMUP = min(200, STEPS // 4)  # allocator caches and lazy inits settle by then
SAVE_EVERY = 100


def rss_bytes() -> int:
    gc.collect()
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads resident memory from /proc")
def test_long_run_with_frames_does_not_grow_in_memory(tmp_path):
    run = dict(vqgan="toy", clip=("toy",), size=(64, 64), cutn=16, device="cpu", seed=1)
    rss = {}

    def on_step(step):
        done = step.index + 1
        if done % SAVE_EVERY == 0:
            save_image(to_pil(step.image), tmp_path / f"{done:05d}.png", {"step": done})
        if done in (WARMUP, STEPS):
            rss[done] = rss_bytes()

    result = generate("a red circle", callback=on_step, **{**run, "iterations": STEPS})
    assert len(result.losses) == STEPS and len(list(tmp_path.glob("*.png"))) == STEPS // SAVE_EVERY
    growth = rss[STEPS] / rss[WARMUP] - 1
    print(f"RSS after step {WARMUP}: {rss[WARMUP] / 2**20:.1f} MiB, after {STEPS}: {rss[STEPS] / 2**20:.1f} MiB "
          f"({growth:+.2%})")
    assert growth <= 0.05, f"resident memory grew {growth:.1%} between step {WARMUP} and {STEPS}"
