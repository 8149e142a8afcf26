"""Outputs get the mode any new file gets (0666 less the umask), not the temporary file's 0600."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from clipgan.cli import app
from clipgan.io import save_image
from clipgan.video import VideoWriter

from conftest import tiny_cli_args


@pytest.fixture(params=[0o022, 0o077, 0o002], ids=lambda m: f"umask{m:03o}")
def umask(request):
    before = os.umask(request.param)
    yield request.param
    os.umask(before)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_feature_images_get_the_umask_mode(umask, tmp_path):
    picture = Image.new("RGB", (8, 8), "red")
    for name in ("a.png", "a.jpg", "a.webp"):
        assert mode(save_image(picture, tmp_path / name, {"seed": 1})) == 0o666 & ~umask
    (tmp_path / "old.png").write_bytes(b"")
    os.chmod(tmp_path / "old.png", 0o600)
    assert mode(save_image(picture, tmp_path / "old.png")) == 0o666 & ~umask  # replaced like a new file


@pytest.mark.parametrize("ext", [".gif", ".mp4"])
def test_feature_videos_get_the_umask_mode(umask, tmp_path, ext):
    with VideoWriter(tmp_path / f"v{ext}", fps=4) as video:
        for colour in ("red", "blue"):
            video.append(Image.new("RGB", (16, 16), colour))
    assert mode(tmp_path / f"v{ext}") == 0o666 & ~umask


def test_feature_cli_outputs_frames_and_video_are_0644_under_the_usual_umask(tiny_settings, tmp_path):
    before = os.umask(0o022)
    try:
        args = ["generate", "a red circle", *tiny_cli_args(tiny_settings), "-i", "2", "--save-every", "1",
                "--frames-dir", str(tmp_path / "frames"), "--video", str(tmp_path / "p.gif"),
                "-o", str(tmp_path / "out.png"), "-q"]
        result = CliRunner().invoke(app, args)
    finally:
        os.umask(before)
    assert result.exit_code == 0, result.output
    files = [tmp_path / "out.png", tmp_path / "p.gif", *sorted((tmp_path / "frames").iterdir())]
    assert len(files) == 4
    assert {f.name: oct(mode(f)) for f in files} == {f.name: oct(0o644) for f in files}
