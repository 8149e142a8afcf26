"""Kill -9 mid-write: the final name holds the old complete file or nothing, never a torn one."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from clipgan.io import save_image
from clipgan.video import VideoWriter, read_video_info

SAVE_BIG_PNG = """
import sys
import numpy as np
from PIL import Image
from clipgan.io import save_image
noise = np.random.default_rng(0).integers(0, 256, (4000, 4000, 3), dtype=np.uint8)  # incompressible: slow to encode
print("ready", flush=True)
save_image(Image.fromarray(noise), sys.argv[1], {"prompts": ["noise"]})
print("done", flush=True)
"""

WRITE_VIDEO_FOREVER = """
import sys
import numpy as np
from PIL import Image
from clipgan.video import VideoWriter
rng = np.random.default_rng(0)
with VideoWriter(sys.argv[1], fps=10) as video:
    i = 0
    while True:
        video.append(Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)))
        i += 1
        print(i, flush=True)
"""


def start(code: str, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, str(out)], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[1])


def wait_for(predicate, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """Polls until `predicate()` holds while `proc` still runs."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, f"the writer ended before it could be killed (exit {proc.returncode})"
        assert time.monotonic() < deadline, "timed out waiting for the write to start"
        time.sleep(0.01)


def temp_files(folder: Path, out: Path) -> list[Path]:
    return sorted(folder.glob(f".{out.stem}.*.tmp{out.suffix}"))


def kill(proc: subprocess.Popen) -> None:
    assert proc.poll() is None, "the write finished before the kill: the test proves nothing"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("had_old", [False, True])
def test_png_killed_mid_write_leaves_no_torn_file(tmp_path, had_old):
    out = tmp_path / "big.png"
    if had_old:
        save_image(Image.new("RGB", (8, 8), "red"), out, {"prompts": ["old"]})
    old = out.read_bytes() if had_old else None
    proc = start(SAVE_BIG_PNG, out)
    assert proc.stdout.readline().strip() == "ready"
    # killed once the encoder has written part of the temporary file
    wait_for(lambda: any(p.stat().st_size > 0 for p in temp_files(tmp_path, out)), proc)
    kill(proc)
    if had_old:
        assert out.read_bytes() == old
        with Image.open(out) as image:
            image.load()
            assert image.size == (8, 8)
    else:
        assert not out.exists()
    assert all(p.name.startswith(".") for p in temp_files(tmp_path, out))  # leftovers stay hidden


@pytest.mark.parametrize("had_old", [False, True])
def test_video_killed_mid_write_leaves_no_torn_file(tmp_path, had_old):
    out = tmp_path / "progress.mp4"
    if had_old:
        with VideoWriter(out, fps=10) as video:
            for colour in ("red", "green", "blue"):
                video.append(Image.new("RGB", (32, 32), colour))
    old = out.read_bytes() if had_old else None
    proc = start(WRITE_VIDEO_FOREVER, out)
    frames = 0
    while frames < 5:  # a few frames streamed into ffmpeg
        line = proc.stdout.readline()
        assert line, f"the writer ended early (exit {proc.wait()})"
        frames = int(line)
    wait_for(lambda: bool(temp_files(tmp_path, out)), proc)
    kill(proc)
    if had_old:
        assert out.read_bytes() == old
        assert read_video_info(out)[0] == 3
    else:
        assert not out.exists()
    # ffmpeg runs in its own session and may finish its temporary file after the kill: never the final name
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == (["progress.mp4"] if had_old else [])
