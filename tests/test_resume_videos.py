"""Interrupt and resume for video jobs: morph, zoom and restyle, and generate's progress video.

A frame's carry, passed back as resume=, must give exactly the frames an uninterrupted run
gives after it; through the CLI, SIGTERM keeps the finished frames in the state file and
`clipgan resume` completes the same video.
"""

import os
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch
from conftest import tiny_cli_args
from typer.testing import CliRunner

import clipgan.cli_animate  # noqa: F401  registers morph, zoom and restyle on the app
from clipgan import animate
from clipgan.cli import app
from clipgan.video import VideoWriter, iter_frames, read_video_info

A, B, C = "a red circle on a blue background", "a green square on a yellow background", "a purple star"


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: the small steps run on one thread


@pytest.fixture(scope="module")
def source_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("src") / "source.mp4"
    with VideoWriter(path, fps=10) as video:
        for i in range(5):
            frame = torch.zeros(1, 3, 32, 32)
            frame[:, 0, :, : 6 * (i + 1)] = 1
            video.append(frame)
    return path


def assert_same_frames(got, expected):
    assert [f.index for f in got] == [f.index for f in expected]
    for g, e in zip(got, expected):
        assert torch.equal(g.image, e.image) and torch.equal(g.z, e.z) and g.loss == e.loss


def check_resume(make, cut_points):
    whole = list(make(None))
    for k in cut_points:
        assert_same_frames(list(make(whole[k].carry)), whole[k + 1:])
    return whole


def test_guided_morph_resumes_at_keyframes_and_between_them(tiny_loaded):
    models, kw = tiny_loaded
    opts = dict(frames_per_transition=3, keyframe_steps=3, steps_per_frame=2)
    whole = check_resume(lambda carry: animate.morph([A, B, C], resume=carry, models=models, **opts, **kw),
                         [0, 1, 3, 5])  # a keyframe, mid-transition, the next keyframe, the last in-between
    assert len(whole) == animate.morph_frame_count(3, 3)


def test_latent_morph_with_loop_resumes(tiny_loaded):
    models, kw = tiny_loaded
    opts = dict(frames_per_transition=2, mode="latent", loop=True, keyframe_steps=2)
    check_resume(lambda carry: animate.morph([A, B], resume=carry, models=models, **opts, **kw), [0, 2])


def test_zoom_resumes(tiny_loaded):
    models, kw = tiny_loaded
    opts = dict(frames=4, zoom="1 + 0.05*t", angle=3, first_steps=2, steps_per_frame=2)
    check_resume(lambda carry: animate.zoom([f"{A} ^ {B}"], resume=carry, models=models, **opts, **kw), [0, 2])


def test_restyle_resumes(tiny_loaded, source_video):
    models, kw = tiny_loaded
    opts = dict(steps_per_frame=2, blend=0.5)
    check_resume(lambda carry: animate.restyle(str(source_video), [A], resume=carry, models=models, **opts, **kw), [1])


# ---------------------------------------------------------------- the CLI


def interrupt_after(args, pattern: str, timeout: float = 120) -> str:
    """Runs `clipgan ARGS` with its progress bar on, sends SIGTERM once stderr matches `pattern`; its stderr."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "clipgan", *args], stderr=subprocess.PIPE, env=env)
    seen = bytearray()
    reader = threading.Thread(target=lambda: [seen.extend(c) for c in iter(lambda: proc.stderr.read(1), b"")])
    reader.start()
    deadline = time.time() + timeout
    while not re.search(pattern, seen.decode(errors="replace")) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    reader.join(timeout=10)
    err = seen.decode(errors="replace")
    assert proc.returncode == 130, err
    return err


def frames_of(path):
    return np.stack([np.asarray(f, dtype=np.int16) for f in iter_frames(path)])


def test_cli_zoom_interrupted_then_resumed_makes_the_same_video(tiny_loaded, tmp_path):
    _, kw = tiny_loaded
    common = ["zoom", A, "--frames", "24", "--steps-per-frame", "3", "--first-steps", "3", "--fps", "8",
              *tiny_cli_args(kw)]
    whole = tmp_path / "whole.gif"
    assert CliRunner().invoke(app, [*common, "-o", str(whole), "-q"]).exit_code == 0

    out = tmp_path / "cut.gif"
    err = interrupt_after([*common, "-o", str(out)], r"\b([3-9]|1\d)/24\b")
    state = tmp_path / "cut.state.pt"
    assert state.exists() and f"clipgan resume {state}" in err
    assert not out.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    done = int(re.search(r"interrupted after frame (\d+) of 24", err).group(1))
    assert 3 <= done < 24

    result = CliRunner().invoke(app, ["resume", str(state), "-q"])
    assert result.exit_code == 0, result.output
    assert not state.exists()
    assert read_video_info(out)[:2] == read_video_info(whole)[:2] == (24, pytest.approx(8))
    got, expected = frames_of(out), frames_of(whole)
    assert np.array_equal(got[done:], expected[done:])  # computed after the resume: identical
    assert np.abs(got[:done] - expected[:done]).mean() < 2  # read back from the partial gif and re-encoded


def test_cli_morph_interrupted_then_resumed_has_every_frame(tiny_loaded, tmp_path):
    _, kw = tiny_loaded
    common = ["morph", A, B, "-n", "8", "--keyframe-steps", "3", "--steps-per-frame", "3", "--fps", "5", *tiny_cli_args(kw)]
    out = tmp_path / "m.gif"
    err = interrupt_after([*common, "-o", str(out)], r"\b[2-7]/9\b")
    result = CliRunner().invoke(app, ["resume", str(tmp_path / "m.state.pt"), "-q"])
    assert result.exit_code == 0, err + result.output
    assert read_video_info(out)[0] == 9


def test_cli_generate_progress_video_survives_an_interrupt(tiny_loaded, tmp_path):
    _, kw = tiny_loaded
    common = ["generate", A, *tiny_cli_args(kw), "-i", "60", "--save-every", "2", "--fps", "10"]
    out, video = tmp_path / "g.png", tmp_path / "g.gif"
    interrupt_after([*common, "-o", str(out), "--video", str(video)], r"\b[1-4]\d/60\b")
    assert not video.exists()
    result = CliRunner().invoke(app, ["resume", str(tmp_path / "g.state.pt"), "-q"])
    assert result.exit_code == 0, result.output
    assert read_video_info(video)[0] == 30
