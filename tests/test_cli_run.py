"""`clipgan generate` as a job: progress video, stories, interrupt (SIGTERM) and `clipgan resume`."""

import signal
import subprocess
import sys
import time

from PIL import Image
from typer.testing import CliRunner

from clipgan.cli import app


def model_args(tiny_models):
    yaml_path, ckpt_path = tiny_models["vq"]
    config, weights = tiny_models["clip"]
    return ["--vqgan-config", str(yaml_path), "--vqgan-checkpoint", str(ckpt_path), "--clip", f"{config}:{weights}",
            "-s", "32", "32", "--cutn", "2", "--device", "cpu"]


def test_progress_video_has_a_frame_every_save_every_steps(tiny_models, tmp_path):
    from clipgan.video import read_video_info

    out, video = tmp_path / "a.png", tmp_path / "a.mp4"
    args = ["generate", "a red circle", *model_args(tiny_models), "-i", "6", "--save-every", "2",
            "--video", str(video), "--fps", "5", "--seed", "1", "-o", str(out), "-q"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    frames, fps, duration = read_video_info(video)
    assert (frames, fps) == (3, 5) and abs(duration - 0.6) < 0.05


def test_story_prompts_from_the_cli(tiny_models, tmp_path):
    out = tmp_path / "s.png"
    args = ["generate", "a forest ^ a city", *model_args(tiny_models), "-i", "4", "--change-prompt-every", "2",
            "--seed", "1", "-o", str(out), "-q"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert Image.open(out).size == (32, 32)


def test_bad_video_extension_fails_before_work(tiny_models, tmp_path):
    result = CliRunner().invoke(app, ["generate", "a", *model_args(tiny_models), "--video", str(tmp_path / "v.avi"),
                                      "-o", str(tmp_path / "x.png")])
    assert result.exit_code == 2 and "error:" in result.output and not (tmp_path / "x.png").exists()


def test_sigterm_saves_state_and_resume_matches_an_uninterrupted_run(tiny_models, tmp_path):
    common = ["a red circle", *model_args(tiny_models), "-i", "40", "--seed", "3", "--init-weight", "0.2"]
    whole = tmp_path / "whole.png"
    assert CliRunner().invoke(app, ["generate", *common, "-o", str(whole), "-q"]).exit_code == 0

    out = tmp_path / "cut.png"
    proc = subprocess.Popen([sys.executable, "-m", "clipgan", "generate", *common, "-o", str(out), "--save-every", "1", "-q"],
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not out.exists() and time.time() < deadline and proc.poll() is None:  # a step has been saved
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    state = tmp_path / "cut.state.pt"
    assert state.exists() and "clipgan resume" in err
    assert Image.open(out).size == (32, 32)  # the image so far is kept

    result = CliRunner().invoke(app, ["resume", str(state), "-q"])
    assert result.exit_code == 0, result.output
    assert Image.open(out).tobytes() == Image.open(whole).tobytes()
    assert not state.exists()  # finished: the state is no longer needed


def test_resume_rejects_other_files(tmp_path):
    (tmp_path / "x.pt").write_bytes(b"nonsense")
    result = CliRunner().invoke(app, ["resume", str(tmp_path / "x.pt")])
    assert result.exit_code == 2 and "not a readable clipgan state file" in result.output
