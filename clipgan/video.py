"""Frames in and out of video files (mp4, webm, gif) through the ffmpeg that imageio-ffmpeg ships.

Writing streams every frame straight into ffmpeg's stdin, so a long run never holds its
frames in memory, and goes to a temporary name that replaces the output only on success.
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Iterator

from PIL import Image

from clipgan.config import DEFAULT_FPS
from clipgan.errors import ClipganError, brief
from clipgan.io import atomic_path, check_output, rgb

# extension -> ffmpeg output arguments. yuv420p is what browsers and QuickTime play.
VIDEO_FORMATS: dict[str, list[str]] = {
    ".mp4": ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18", "-preset", "medium", "-movflags", "+faststart"],
    ".webm": ["-c:v", "libvpx-vp9", "-pix_fmt", "yuv420p", "-crf", "32", "-b:v", "0", "-row-mt", "1", "-cpu-used", "4"],
    # a palette per frame keeps colours right and lets ffmpeg write each frame as it comes
    ".gif": ["-filter_complex", "split[a][b];[a]palettegen=stats_mode=single[p];[b][p]paletteuse=new=1", "-loop", "0"],
}
_EVEN_SIDES = (".mp4", ".webm")  # yuv420p halves the chroma planes: both sides must be even


def check_video_output(path: str | Path) -> Path:
    """Fail before any work: a video extension we write and an existing folder."""
    return check_output(path, {ext: ext for ext in VIDEO_FORMATS})


def check_fps(fps: float) -> float:
    if isinstance(fps, bool) or not isinstance(fps, (int, float, Fraction)) or not 0 < fps <= 240:
        raise ClipganError(f"fps must be a number between 0 and 240, got {brief(fps)}")
    return fps


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _to_array(image):
    """PIL image or (1, 3, H, W) / (3, H, W) tensor in [0, 1] -> (H, W, 3) uint8 array."""
    import numpy as np

    if isinstance(image, Image.Image):
        return np.asarray(rgb(image))
    from clipgan.io import to_pil

    if getattr(image, "dim", None) is None or image.dim() not in (3, 4) or image.shape[-3] != 3:
        raise ClipganError(f"a video frame must be a PIL image or a (1, 3, H, W) tensor, got {getattr(image, 'shape', type(image))}")
    return np.asarray(to_pil(image))


class VideoWriter:
    """Streams frames into an mp4/webm/gif; the file appears under `path` only when closed cleanly.

        with VideoWriter("out.mp4", fps=24) as video:
            for frame in frames:
                video.append(frame)

    On an exception (KeyboardInterrupt included) the partial file is deleted and an existing
    file under `path` is left as it was. For mp4/webm an odd side is padded by one pixel,
    repeating the edge, because yuv420p needs even sizes.
    """

    def __init__(self, path: str | Path, fps: float = DEFAULT_FPS, interpolate_fps: float | None = None):
        self.path = check_video_output(path)
        self.fps = check_fps(fps)
        # motion-interpolated to this rate when closed (the frames as given stay salvageable until then)
        self.interpolate_fps = None if interpolate_fps is None else check_fps(interpolate_fps)
        self.frames = 0
        self.size: tuple[int, int] | None = None  # (width, height) as given, set by the first frame
        self._stack: contextlib.ExitStack | None = None
        self._tmp: Path | None = None
        self._proc: subprocess.Popen | None = None
        self._log = None

    def __enter__(self) -> "VideoWriter":
        self._stack = contextlib.ExitStack()
        self._tmp = self._stack.enter_context(atomic_path(self.path))
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        stack, self._stack = self._stack, None
        try:
            if exc_type is None:
                self._finish()
            else:
                self._abort()
        except BaseException as e:
            stack.__exit__(type(e), e, e.__traceback__)  # deletes the temporary file
            raise
        return stack.__exit__(exc_type, exc, tb)  # renames onto the output, or deletes

    def append(self, image) -> None:
        """Adds one frame: a PIL image or a tensor in [0, 1]. Every frame must have the first one's size."""
        if self._stack is None:
            raise RuntimeError("use VideoWriter as a context manager: with VideoWriter(path) as video: ...")
        array = _to_array(image)
        h, w = array.shape[:2]
        if self._proc is None:
            self.size = (w, h)
            self._start(w, h)
        elif (w, h) != self.size:
            raise ClipganError(f"frame {self.frames} is {w}x{h}, but the video is {self.size[0]}x{self.size[1]}")
        array = self._even(array)
        try:
            self._proc.stdin.write(array.tobytes())
        except (BrokenPipeError, OSError):
            raise ClipganError(f"ffmpeg stopped while writing {self.path}: {self._stderr()}") from None
        self.frames += 1

    def salvage(self):
        """For an interrupted job: ends the partial file cleanly and returns its frames as a
        (N, H, W, 3) uint8 tensor at the size they were given (None if none could be read).
        The file itself is still deleted when the `with` block ends with the interruption."""
        import numpy as np
        import torch

        if self._proc is None or self._proc.poll() is not None:
            return None
        with contextlib.suppress(OSError):
            self._proc.stdin.close()
        if self._proc.wait() != 0:
            return None
        w, h = self.size
        reader, meta = _open_reader(self._tmp)
        full = tuple(meta["size"])
        try:
            frames = [np.frombuffer(data, np.uint8).reshape(full[1], full[0], 3)[:h, :w] for data in reader]
        finally:
            reader.close()
        return torch.from_numpy(np.stack(frames)) if frames else None

    def restore(self, frames) -> None:
        """Appends the frames a `salvage()` returned (None: none), as the job's video began."""
        for array in frames if frames is not None else ():
            self.append(Image.fromarray(array.numpy()))

    def _even(self, array):
        if self.path.suffix.lower() not in _EVEN_SIDES:
            return array
        import numpy as np

        h, w = array.shape[:2]
        if h % 2 or w % 2:
            array = np.pad(array, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        return np.ascontiguousarray(array)

    def _start(self, w: int, h: int) -> None:
        if self.path.suffix.lower() in _EVEN_SIDES:
            w, h = w + w % 2, h + h % 2
        fps = Fraction(self.fps).limit_denominator(1001)
        cmd = [_ffmpeg(), "-y", "-hide_banner", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
               "-s", f"{w}x{h}", "-framerate", str(fps), "-i", "-", "-an",
               *VIDEO_FORMATS[self.path.suffix.lower()], "-r", str(fps), str(self._tmp)]
        self._log = tempfile.TemporaryFile()  # ffmpeg's errors; a file, so a chatty ffmpeg never blocks on a pipe
        # its own session: Ctrl-C reaches only us, and we decide whether the file is kept
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._log,
                                      start_new_session=True)

    def _finish(self) -> None:
        if self._proc is None:
            raise ClipganError(f"no frames were written to {self.path}")
        try:
            self._proc.stdin.close()
        except OSError:
            pass
        code = self._proc.wait()
        if code != 0:
            raise ClipganError(f"ffmpeg could not write {self.path}: {self._stderr()}")
        self._close_log()
        if self.interpolate_fps is not None and self.interpolate_fps > self.fps:
            self._interpolate()

    def _interpolate(self) -> None:
        """Re-encodes the finished file at interpolate_fps, motion-compensated (ffmpeg's minterpolate)."""
        ext = self.path.suffix.lower()
        fps = Fraction(self.interpolate_fps).limit_denominator(1001)
        # scd=none: progress frames change a lot, and scene-cut detection would then repeat frames instead;
        # tpad repeats the last frame once so that the interpolation reaches it
        motion = f"tpad=stop_mode=clone:stop=1,minterpolate=fps={fps}:mi_mode=mci:mc_mode=aobmc:vsbmc=1:scd=none"
        args = list(VIDEO_FORMATS[ext])
        if ext == ".gif":
            args[1] = f"{motion},{args[1]}"
        else:
            args = ["-vf", motion, *args]
        out = self._tmp.with_name(f"{self._tmp.stem}.interp{ext}")
        cmd = [_ffmpeg(), "-y", "-hide_banner", "-loglevel", "error", "-i", str(self._tmp), "-an", *args, str(out)]
        try:
            done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        except BaseException:
            out.unlink(missing_ok=True)
            raise
        if done.returncode != 0:
            out.unlink(missing_ok=True)
            lines = done.stderr.decode(errors="replace").strip().splitlines()
            raise ClipganError(f"ffmpeg could not interpolate {self.path}: {lines[-1][:300] if lines else done.returncode}")
        out.replace(self._tmp)

    def _abort(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            with contextlib.suppress(OSError):
                self._proc.stdin.close()
        self._close_log()

    def _stderr(self) -> str:
        if self._log is None:
            return "(no output)"
        with contextlib.suppress(Exception):
            self._proc.wait(timeout=5)
        self._log.seek(0)
        lines = self._log.read().decode(errors="replace").strip().splitlines()
        return lines[-1][:300] if lines else f"exit code {self._proc.returncode}"

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def _check_input(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise ClipganError(f"video not found: {path}")
    return path


def _open_reader(path: Path):
    """imageio-ffmpeg's frame generator and its metadata (size, fps, duration)."""
    import imageio_ffmpeg

    # passthrough: each decoded frame once (a short gif would otherwise be resampled to 100 fps)
    reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24", output_params=["-fps_mode", "passthrough"])
    try:
        meta = next(reader)
    except (OSError, RuntimeError, StopIteration) as e:
        reader.close()
        raise ClipganError(f"{path} is not a readable video ({_first_line(e)})") from None
    return reader, meta


def read_video_info(path: str | Path) -> tuple[int, float, float]:
    """(frame count, fps, duration in seconds) of a video file, the count by decoding it all."""
    import imageio_ffmpeg

    path = _check_input(path)
    reader, meta = _open_reader(path)
    reader.close()
    try:
        frames, secs = imageio_ffmpeg.count_frames_and_secs(str(path))
    except (OSError, RuntimeError) as e:
        raise ClipganError(f"{path} is not a readable video ({_first_line(e)})") from None
    fps = float(meta.get("fps") or 0)
    if path.suffix.lower() == ".gif" and frames and secs:
        fps = frames / secs  # gif frames carry delays, not a rate: ffmpeg's guess is the timebase
    return frames, fps, float(secs)


def video_fps(path: str | Path) -> float:
    """The frame rate a video declares (cheap: no decoding)."""
    path = _check_input(path)
    if path.suffix.lower() == ".gif":
        return read_video_info(path)[1]
    reader, meta = _open_reader(path)
    reader.close()
    return float(meta.get("fps") or 0)


def iter_frames(path: str | Path) -> Iterator[Image.Image]:
    """The frames of a video as RGB PIL images, decoded one at a time."""
    path = _check_input(path)
    reader, meta = _open_reader(path)
    size = tuple(meta["size"])
    try:
        for data in reader:
            yield Image.frombytes("RGB", size, data)
    finally:
        reader.close()


def _first_line(e: BaseException) -> str:
    lines = [line for line in str(e).strip().splitlines() if line.strip()]
    return lines[0][:200] if lines else type(e).__name__
