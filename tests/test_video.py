"""VideoWriter and the readers: what is written reads back, and nothing broken is ever left under the output name."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch
from PIL import Image

from clipgan.errors import ClipganError
from clipgan.video import VIDEO_FORMATS, VideoWriter, check_video_output, iter_frames, read_video_info, video_fps


def colour_frames(n, size=(32, 24)):
    """Frames with a distinct red level each, alternating PIL images and tensors."""
    for i in range(n):
        level = 40 + 15 * i
        if i % 2:
            yield Image.new("RGB", size, (level, 20, 200))
        else:
            t = torch.zeros(1, 3, size[1], size[0])
            t[:, 0], t[:, 1], t[:, 2] = level / 255, 20 / 255, 200 / 255
            yield t


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("ext", [".mp4", ".webm", ".gif"])
def test_frames_fps_and_duration_read_back(tmp_path, ext):
    path = tmp_path / f"out{ext}"
    with VideoWriter(path, fps=10) as video:  # 10 fps: a whole number of 1/100 s, so gif timing is exact
        for frame in colour_frames(12):
            video.append(frame)
    assert video.frames == 12
    count, fps, duration = read_video_info(path)
    assert count == 12
    assert fps == pytest.approx(10, rel=0.01)
    assert duration == pytest.approx(1.2, abs=0.02)
    assert video_fps(path) == pytest.approx(10, rel=0.01)
    assert leftovers(tmp_path) == [path.name]  # no temporary file left beside it


@pytest.mark.parametrize("ext", [".mp4", ".gif"])
def test_frames_read_back_in_order_with_their_colours(tmp_path, ext):
    path = tmp_path / f"out{ext}"
    with VideoWriter(path, fps=10) as video:
        for frame in colour_frames(6):
            video.append(frame)
    frames = list(iter_frames(path))
    assert len(frames) == 6 and all(f.size == (32, 24) for f in frames)
    reds = [np.asarray(f)[..., 0].mean() for f in frames]
    assert reds == sorted(reds)  # frame order kept
    assert abs(reds[0] - 40) < 8 and abs(np.asarray(frames[0])[..., 2].mean() - 200) < 8


def test_gif_frame_durations_follow_fps(tmp_path):
    path = tmp_path / "a.gif"
    with VideoWriter(path, fps=20) as video:
        for frame in colour_frames(5):
            video.append(frame)
    gif = Image.open(path)
    durations = []
    for i in range(gif.n_frames):
        gif.seek(i)
        durations.append(gif.info["duration"])
    assert durations == [50] * 5


def test_odd_sizes_are_padded_to_even_for_mp4_but_kept_for_gif(tmp_path):
    for ext, expected in ((".mp4", (34, 22)), (".gif", (33, 21))):
        path = tmp_path / f"odd{ext}"
        with VideoWriter(path, fps=5) as video:
            video.append(torch.rand(1, 3, 21, 33))
            video.append(torch.rand(3, 21, 33))  # (3, H, W) works too
        assert next(iter_frames(path)).size == expected


def test_fractional_fps(tmp_path):
    path = tmp_path / "ntsc.mp4"
    with VideoWriter(path, fps=30000 / 1001) as video:
        for frame in colour_frames(3):
            video.append(frame)
    assert read_video_info(path)[1] == pytest.approx(29.97, abs=0.01)


def test_an_exception_removes_the_partial_file_and_keeps_the_old_one(tmp_path):
    path = tmp_path / "out.mp4"
    path.write_bytes(b"the previous video")
    with pytest.raises(RuntimeError):
        with VideoWriter(path, fps=10) as video:
            for frame in colour_frames(4):
                video.append(frame)
            raise RuntimeError("boom")
    assert path.read_bytes() == b"the previous video"
    assert leftovers(tmp_path) == ["out.mp4"]


def test_keyboard_interrupt_leaves_no_file(tmp_path):
    path = tmp_path / "out.gif"
    with pytest.raises(KeyboardInterrupt):
        with VideoWriter(path, fps=10) as video:
            video.append(torch.rand(1, 3, 16, 16))
            raise KeyboardInterrupt
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("ext, exact", [(".gif", True), (".mp4", False)])
def test_salvage_returns_the_frames_so_far_and_still_leaves_no_file(tmp_path, ext, exact):
    path = tmp_path / f"out{ext}"
    frames = [torch.full((1, 3, 15, 17), v) for v in (0.0, 1.0)]  # odd sides: the mp4 padding is cut off again
    with pytest.raises(KeyboardInterrupt):
        with VideoWriter(path, fps=5) as video:
            for f in frames:
                video.append(f)
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt:
                kept = video.salvage()
                raise
    assert kept.shape == (2, 15, 17, 3) and kept.dtype == torch.uint8  # two frames: no resampling to 100 fps
    expected = torch.stack([f[0].permute(1, 2, 0).mul(255).byte() for f in frames])
    difference = (kept.int() - expected.int()).abs().max().item()
    assert difference == 0 if exact else difference <= 3
    assert leftovers(tmp_path) == []


def test_no_frames_is_an_error_and_no_file(tmp_path):
    path = tmp_path / "empty.mp4"
    with pytest.raises(ClipganError, match="no frames"):
        with VideoWriter(path):
            pass
    assert leftovers(tmp_path) == []


def test_bad_frames_are_refused(tmp_path):
    with pytest.raises(ClipganError, match="is 16x8, but the video is 16x16"):
        with VideoWriter(tmp_path / "a.mp4") as video:
            video.append(torch.rand(1, 3, 16, 16))
            video.append(torch.rand(1, 3, 8, 16))
    with pytest.raises(ClipganError, match="video frame"):
        with VideoWriter(tmp_path / "a.mp4") as video:
            video.append(torch.rand(1, 1, 16, 16))
    assert leftovers(tmp_path) == []


def test_append_outside_the_with_block_is_a_clear_error(tmp_path):
    with pytest.raises(RuntimeError, match="context manager"):
        VideoWriter(tmp_path / "a.mp4").append(torch.rand(3, 8, 8))


@pytest.mark.parametrize("name, message", [
    ("out.avi", "unsupported output extension"),
    ("out", "unsupported output extension"),
    ("missing/out.mp4", "folder does not exist"),
])
def test_bad_outputs_fail_before_any_work(tmp_path, name, message):
    with pytest.raises(ClipganError, match=message):
        check_video_output(tmp_path / name)
    with pytest.raises(ClipganError, match=message):
        VideoWriter(tmp_path / name)


@pytest.mark.parametrize("fps", [0, -1, 1000, "fast", True])
def test_bad_fps(tmp_path, fps):
    with pytest.raises(ClipganError, match="fps"):
        VideoWriter(tmp_path / "a.mp4", fps=fps)


def test_formats_are_the_three_we_write():
    assert set(VIDEO_FORMATS) == {".mp4", ".webm", ".gif"}


def test_reading_a_missing_or_broken_video_is_a_clipgan_error(tmp_path):
    with pytest.raises(ClipganError, match="not found"):
        read_video_info(tmp_path / "nope.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 10)
    with pytest.raises(ClipganError, match="not a readable video"):
        read_video_info(junk)
    with pytest.raises(ClipganError, match="not a readable video"):
        list(iter_frames(junk))


WRITE_SLOWLY = textwrap.dedent("""
    import sys, time
    import numpy as np
    from PIL import Image
    from clipgan.video import VideoWriter
    with VideoWriter(sys.argv[1], fps=10) as video:
        for i in range(1000):
            video.append(Image.fromarray(np.full((32, 32, 3), i % 255, np.uint8)))
            print(i, flush=True)
            time.sleep(0.02)
""")


@pytest.mark.parametrize("existing", [False, True])
def test_a_killed_writer_leaves_nothing_under_the_output_name(tmp_path, existing):
    path = tmp_path / "out.mp4"
    if existing:
        path.write_bytes(b"the previous video")
    proc = subprocess.Popen([sys.executable, "-c", WRITE_SLOWLY, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        for _ in range(5):  # some frames are in ffmpeg's hands when the kill lands
            assert proc.stdout.readline(), "the writer died before writing frames"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
    time.sleep(0.3)  # the orphaned ffmpeg finishes its (temporary) file
    if existing:
        assert path.read_bytes() == b"the previous video"
    else:
        assert not path.exists()
    # what is left is only the hidden temporary file, never a name a user would take for the video
    assert all(name.startswith(".") or name == "out.mp4" for name in os.listdir(tmp_path))
