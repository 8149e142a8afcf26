"""Ctrl-C at any moment keeps what was made and a state to resume from, and the resumed run
ends exactly as an uninterrupted one: a real signal is raised at chosen lines of the loop and of
the CLI's bookkeeping (sys.settrace picks the moment, so no test races the clock)."""

import signal
import sys

import numpy as np
import pytest
import torch
from conftest import tiny_cli_args
from PIL import Image
from typer.testing import CliRunner

from clipgan.cli import app
from clipgan.interrupt import Interrupts
from clipgan.video import iter_frames

A, B = "a red circle on a blue background", "a green square on a yellow background"
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def grad_mode_back():
    """A signal inside torch.no_grad's __exit__ leaves gradients off in this process (a real CLI
    exits): the resume in the same process must cope, and later tests get them back."""
    yield
    torch.set_grad_enabled(True)

# the functions whose lines a signal may land between: the loop and the CLI's per-step/per-frame work
WATCHED = {("optimize.py", "_iterate"), ("cli_generate.py", "on_step"), ("cli_generate.py", "_record"),
           ("animate.py", "_morph"), ("animate.py", "keyframe"), ("animate.py", "_zoom"), ("animate.py", "run"),
           ("cli_animate.py", "_write")}


class SignalAt:
    """A tracer counting the line events of WATCHED functions (or only those named `only`); raises
    `sig` at event number `at` (None: only counts, noting where each `mark` function is entered).
    Only while clipgan's handler is in place: a stray SIGTERM would end pytest itself."""

    def __init__(self, at=None, sig=signal.SIGINT, mark="on_step", only=None):
        self.at, self.sig, self.mark, self.only = at, sig, mark, only
        self.count, self.marks = 0, []

    def __call__(self, frame, event, arg):
        code = frame.f_code
        if (code.co_filename.rsplit("/", 1)[-1], code.co_name) not in WATCHED or self.only not in (None, code.co_name):
            return None
        if code.co_name == self.mark:
            self.marks.append(self.count)
        return self._line

    def _line(self, frame, event, arg):
        if event == "line":
            self.count += 1
            if self.count == self.at and isinstance(getattr(signal.getsignal(self.sig), "__self__", None), Interrupts):
                signal.raise_signal(self.sig)
        return self._line


def invoke(args, tracer=None):
    sys.settrace(tracer)
    try:
        return CliRunner().invoke(app, [str(a) for a in args])
    finally:
        sys.settrace(None)


def frames_in(path) -> int:
    return sum(1 for _ in iter_frames(path))


def pixels(path):
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def test_generate_interrupted_at_any_line_of_a_step_resumes_to_the_same_picture_and_video(tiny_loaded, tmp_path):
    _, kw = tiny_loaded
    common = ["generate", A, *tiny_cli_args(kw), "-i", "4", "--save-every", "2", "--fps", "5", "-q"]
    whole = tmp_path / "whole.png"
    counter = SignalAt()
    assert invoke([*common, "-o", whole, "--video", tmp_path / "whole.gif"], counter).exit_code == 0
    assert frames_in(tmp_path / "whole.gif") == 2 and len(counter.marks) == 4
    # from step 1's update through its bookkeeping (which writes frame 1), every fifth line
    for n, at in enumerate(range(counter.marks[1] - 8, counter.marks[2], 5)):
        out, video = tmp_path / f"cut{n}.png", tmp_path / f"cut{n}.gif"
        sig = signal.SIGTERM if n % 2 else signal.SIGINT
        result = invoke([*common, "-o", out, "--video", video], SignalAt(at, sig))
        assert result.exit_code == 130, (at, result.output)
        state = tmp_path / f"cut{n}.state.pt"
        assert f"resume with: clipgan resume {state}" in result.output and not video.exists()
        resumed = invoke(["resume", state, "-q"])
        assert resumed.exit_code == 0, (at, resumed.output)
        assert frames_in(video) == 2, at
        assert np.array_equal(pixels(out), pixels(whole)), at


def test_generate_interrupted_before_the_first_step_keeps_a_state_that_starts_it_over(tiny_loaded, tmp_path):
    _, kw = tiny_loaded
    common = ["generate", A, *tiny_cli_args(kw), "-i", "3", "-q"]
    assert invoke([*common, "-o", tmp_path / "whole.png"]).exit_code == 0
    out = tmp_path / "cut.png"
    result = invoke([*common, "-o", out], SignalAt(1))  # the loop's first line: nothing made yet
    assert result.exit_code == 130, result.output
    state = tmp_path / "cut.state.pt"
    assert result.output.strip().splitlines()[-1] == f"interrupted before the first step; resume with: clipgan resume {state}"
    assert not out.exists()
    assert invoke(["resume", state, "-q"]).exit_code == 0 and not state.exists()
    assert np.array_equal(pixels(out), pixels(tmp_path / "whole.png"))


def video_pixels(path):
    return np.stack([np.asarray(f) for f in iter_frames(path)])


def test_morph_interrupted_during_its_keyframes_keeps_them_and_resumes_to_the_same_video(tiny_loaded, tmp_path):
    _, kw = tiny_loaded
    common = ["morph", A, B, "-n", "2", "--keyframe-steps", "3", "--steps-per-frame", "2", "--fps", "5",
              *tiny_cli_args(kw), "-q"]
    counter = SignalAt(mark="keyframe")
    assert invoke([*common, "-o", tmp_path / "whole.gif"], counter).exit_code == 0
    out = tmp_path / "cut.gif"
    # inside keyframe 1's run (its second call): keyframe 0 is done, no frame yet
    result = invoke([*common, "-o", out], SignalAt(counter.marks[1] + 4, mark="keyframe"))
    assert result.exit_code == 130, result.output
    state = tmp_path / "cut.state.pt"
    assert result.output.strip().splitlines()[-1] == (
        f"interrupted after frame 0 of 3 (keyframes done: 1); resume with: clipgan resume {state}")
    assert sorted(torch.load(state, weights_only=True)["carry"]["keys"]) == [0]
    assert invoke(["resume", state, "-q"]).exit_code == 0 and not state.exists()
    assert np.array_equal(video_pixels(out), video_pixels(tmp_path / "whole.gif"))


def test_zoom_interrupted_during_its_first_frame_keeps_a_state(tiny_loaded, tmp_path):
    _, kw = tiny_loaded
    common = ["zoom", A, "--frames", "2", "--first-steps", "3", "--steps-per-frame", "2", *tiny_cli_args(kw), "-q"]
    assert invoke([*common, "-o", tmp_path / "whole.gif"]).exit_code == 0
    out = tmp_path / "cut.gif"
    result = invoke([*common, "-o", out], SignalAt(5, signal.SIGTERM, only="run"))  # inside the first frame's steps
    assert result.exit_code == 130, result.output
    state = tmp_path / "cut.state.pt"
    assert result.output.strip().splitlines()[-1] == f"interrupted after frame 0 of 2; resume with: clipgan resume {state}"
    assert not out.exists()
    assert invoke(["resume", state, "-q"]).exit_code == 0
    assert np.array_equal(video_pixels(out), video_pixels(tmp_path / "whole.gif"))


@pytest.mark.parametrize("command", [["outpaint", "--extend", "right=16", "-i", "4"], ["upscale", "--steps", "4"]])
def test_edit_commands_interrupted_mid_run_keep_the_picture_and_resume_to_the_same_one(tiny_loaded, tmp_path, command):
    _, kw = tiny_loaded
    picture = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(picture)
    models = ["--vqgan-config", kw["vqgan_config"], "--vqgan-checkpoint", kw["vqgan_checkpoint"], "--clip", kw["clip"][0],
              "--cutn", "4", "--device", "cpu", "--seed", "5", "-q"]
    name, *options = command
    if name == "outpaint":
        models.insert(0, A)
    whole, out = tmp_path / "whole.png", tmp_path / "cut.png"
    assert invoke([name, picture, *options, *models, "-o", whole]).exit_code == 0
    result = invoke([name, picture, *options, *models, "-o", out], SignalAt(50, only="_iterate"))  # in the 3rd step
    assert result.exit_code == 130, result.output
    state = tmp_path / "cut.state.pt"
    line = result.output.strip().splitlines()[-1]
    assert line.startswith("interrupted at step ") and line.endswith(f"resume with: clipgan resume {state}"), line
    assert pixels(out).shape == pixels(whole).shape  # the picture so far
    assert invoke(["resume", state, "-q"]).exit_code == 0 and not state.exists()
    assert np.array_equal(pixels(out), pixels(whole))


def test_upscaled_generate_interrupted_in_either_run_resumes_to_the_same_picture_and_video(tiny_loaded, tmp_path):
    """Coarse to fine (--upscale) is two runs in one: a state taken in the first run or in the
    refinement finishes both, and the progress video keeps every frame at the first run's size."""
    _, kw = tiny_loaded
    common = ["generate", A, *tiny_cli_args(kw), "-s", "16", "16", "-i", "3", "--upscale", "2", "--upscale-steps", "2",
              "--fps", "5", "-q"]
    whole = tmp_path / "whole.png"
    counter = SignalAt()
    assert invoke([*common, "-o", whole, "--video", tmp_path / "whole.gif"], counter).exit_code == 0
    assert len(counter.marks) == 5 and pixels(whole).shape == (32, 32, 3)
    for k in range(5):  # after each step: the first run's 3 (the last one's state has no step left), the refinement's 2
        out, video = tmp_path / f"cut{k}.png", tmp_path / f"cut{k}.gif"
        result = invoke([*common, "-o", out, "--video", video], SignalAt(counter.marks[k] + 2))
        assert result.exit_code == 130, (k, result.output)
        state = tmp_path / f"cut{k}.state.pt"
        assert result.output.strip().splitlines()[-1].startswith(f"interrupted at step {k + 1}; image saved"), result.output
        assert ("phase" in torch.load(state, weights_only=True)) == (k >= 3)
        resumed = invoke(["resume", state, "-q"])
        assert resumed.exit_code == 0, (k, resumed.output)
        assert np.array_equal(pixels(out), pixels(whole)), k
        assert np.array_equal(video_pixels(video), video_pixels(tmp_path / "whole.gif")), k
