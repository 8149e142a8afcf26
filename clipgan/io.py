"""Images in and out: loading (path or URL), saving with the settings inside, atomic writes."""

from __future__ import annotations

import contextlib
import glob
import io
import json
import os
import re
import tempfile
import urllib.request
import warnings
from pathlib import Path
from typing import Iterator

from PIL import Image

from clipgan.errors import ClipganError

SETTINGS_KEY = "clipgan"  # PNG text chunk holding the settings JSON
EXIF_DESCRIPTION = 0x010E  # jpg/webp carry the same JSON as their EXIF ImageDescription
FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


def check_output(path: str | Path, formats: dict[str, str] = FORMATS) -> Path:
    """Fail early, before any work: a supported extension, an existing folder we may write in, and a
    name short enough for the temporary and state files made beside it."""
    path = Path(path)
    if path.suffix.lower() not in formats:
        raise ClipganError(f"unsupported output extension {path.suffix or '(none)'!r} for {path}; use {', '.join(formats)}")
    if not path.parent.is_dir():
        raise ClipganError(f"output folder does not exist: {path.parent}")
    if path.is_dir():
        raise ClipganError(f"output {path} is a folder")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise ClipganError(f"cannot write in the output folder {path.parent}")
    longest = max(len(os.fsencode(name)) for name in companion_names(path))
    limit = _name_max(path.parent)
    if longest > limit:
        raise ClipganError(f"output name {path.name[:40]}... is too long: clipgan's files beside it need "
                           f"{longest - limit} more bytes than the {limit} a name may have here")
    return path


def companion_names(path: Path) -> list[str]:
    """Every name a run writes beside `path` (longest cases: a 7-digit pid, mkstemp's 8 characters)."""
    state = path.with_name(f"{path.stem}.state.pt")  # interrupt.state_path
    pid = "9" * 7
    return [path.name, state.name, f"{lock_path(path).name}.{pid}",
            *(f"{_tmp_prefix(p, pid)}{'x' * 8}.tmp{p.suffix}" for p in (path, state))]


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):  # not POSIX: the common limit
        return 255


# ---------------------------------------------------------------- temporary files and locks
#
# A temporary file is named .<stem>.clipgan-<pid>-<random>.tmp<suffix> beside its final name, so
# that one left by a killed run is recognisable; the next run writing that output deletes those
# whose process is gone. The lock .<name>.clipgan-lock holds the pid of the run writing <name>.

def _tmp_prefix(path: Path, pid: int | str | None = None) -> str:
    return f".{path.stem}.clipgan-{os.getpid() if pid is None else pid}-"


def lock_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.clipgan-lock")


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    except OSError:
        return False
    return True


def clean_stray_temporaries(path: Path) -> list[Path]:
    """Deletes temporary files of `path` (and of its state file) left by clipgan runs that are no
    longer alive; returns what was deleted."""
    path = Path(path)
    pattern = re.compile(rf"^\.{re.escape(path.stem)}(?:\.state)?\.clipgan-(\d+)-\w+\.tmp(?:\.\w+)?$")
    removed = []
    with contextlib.suppress(OSError):
        for candidate in path.parent.glob(f".{glob.escape(path.stem)}.*clipgan-*.tmp*"):
            m = pattern.match(candidate.name)
            if m and int(m.group(1)) != os.getpid() and not pid_alive(int(m.group(1))):
                with contextlib.suppress(FileNotFoundError):
                    candidate.unlink()
                    removed.append(candidate)
    return removed


def _read_pid(lock: Path) -> int | None:
    try:
        text = lock.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() and len(text) < 12 else None


@contextlib.contextmanager
def output_lock(path: str | Path) -> Iterator[Path]:
    """Holds `path` for this run: a second run writing the same output is refused with its pid,
    while a lock left by a dead process is taken over. Stray temporary files of dead runs go too."""
    path = Path(path)
    lock = lock_path(path)
    me = os.getpid()
    for _ in range(3):
        pid = _create_lock(lock, me)
        if pid is None:
            break
        if pid_alive(pid):
            who = "another run in this process" if pid == me else f"another clipgan run (pid {pid})"
            raise ClipganError(f"{path} is being written by {who}; wait for it or choose another --output")
        with contextlib.suppress(FileNotFoundError):  # a dead run's lock: take it over
            lock.unlink()
    else:
        raise ClipganError(f"could not take the lock {lock}")
    try:
        clean_stray_temporaries(path)
        yield lock
    finally:
        if _read_pid(lock) == me:
            with contextlib.suppress(OSError):
                lock.unlink()


def _create_lock(lock: Path, me: int) -> int | None:
    """Creates the lock holding `me`, atomically with its content; None if made, else the holder's pid
    (0 when unreadable)."""
    tmp = lock.with_name(f"{lock.name}.{me}")
    try:
        tmp.write_text(f"{me}\n")
        try:
            os.link(tmp, lock)  # fails if the lock exists; never a lock without its pid
        except FileExistsError:
            return _read_pid(lock) or 0
        except OSError:  # no hard links on this file system: exclusive create, then the pid
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return _read_pid(lock) or 0
            with os.fdopen(fd, "w") as f:
                f.write(f"{me}\n")
        return None
    except PermissionError as e:
        raise ClipganError(f"cannot write in the output folder {lock.parent} ({e.strerror})") from None
    except OSError as e:
        raise ClipganError(f"cannot write in the output folder {lock.parent} ({e.strerror or e})") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary name beside `path` (clipgan's pattern, with this pid), renamed onto it only if
    the block succeeds."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=_tmp_prefix(path), suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _new_file_mode())  # mkstemp's 0600 would survive the rename
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _new_file_mode() -> int:
    """The mode open() gives a new file: 0666 less the umask (0644 under the usual 022)."""
    try:  # Linux shows the umask without changing it (os.umask would, for every thread)
        with open("/proc/self/status") as f:
            umask = next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


def save_image(image: Image.Image, path: str | Path, settings: dict | None = None) -> Path:
    """Writes png/jpg/webp atomically; `settings` go in as JSON so the picture can be rerun."""
    path = Path(path)
    fmt = FORMATS[path.suffix.lower()]
    kwargs: dict = {}
    if settings is not None:
        try:  # never NaN or Infinity in the JSON: no other reader takes them
            text = json.dumps(settings, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise ClipganError(f"settings for {path} cannot be written as JSON ({e})") from None
        if fmt == "PNG":
            from PIL.PngImagePlugin import PngInfo

            info = PngInfo()
            info.add_text(SETTINGS_KEY, text)
            kwargs["pnginfo"] = info
        else:
            exif = Image.Exif()
            exif[EXIF_DESCRIPTION] = text
            kwargs["exif"] = exif
    if fmt != "PNG":
        kwargs["quality"] = 95
    try:
        with atomic_path(path) as tmp:
            image.save(tmp, format=fmt, **kwargs)
    except OSError as e:  # a full disk, a read-only folder: name the file, no traceback
        raise ClipganError(f"could not write {path} ({e.strerror or e})") from None
    return path


def save_svg(text: str, path: str | Path, settings: dict | None = None) -> Path:
    """Writes an SVG document atomically; `settings` go in a <metadata> element as JSON."""
    from xml.sax.saxutils import escape

    path = Path(path)
    if settings is not None:
        try:
            meta = json.dumps(settings, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise ClipganError(f"settings for {path} cannot be written as JSON ({e})") from None
        head, sep, rest = text.partition(">")
        text = f"{head}{sep}\n<metadata id=\"{SETTINGS_KEY}\">{escape(meta)}</metadata>{rest}"
    try:
        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
    except OSError as e:
        raise ClipganError(f"could not write {path} ({e.strerror or e})") from None
    return path


def read_settings(path: str | Path) -> dict:
    """The settings JSON a clipgan image carries."""
    image = open_image(path)
    text = image.info.get(SETTINGS_KEY) or image.getexif().get(EXIF_DESCRIPTION)
    if not text:
        raise ClipganError(f"{path} carries no clipgan settings")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # also too deeply nested, or an int too long to convert
        raise ClipganError(f"the settings in {path} are not valid JSON") from None
    if not isinstance(data, dict):
        raise ClipganError(f"the settings in {path} are not a JSON object")
    return data


MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485  # PIL's own guard against decompression bombs
MAX_FETCH = 256 * 2**20  # bytes read from a URL


def open_image(src: str | Path, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """A PIL image from a path or an http(s) URL, fully read; errors name the source.

    The one door every image input goes through (init image, mask, image prompts, --from-png,
    score): a header claiming more than `max_pixels` is refused before anything is decoded,
    and whatever a damaged or hostile file makes a decoder raise becomes one ClipganError."""
    src = str(src)
    too_big = f"{src} is larger than clipgan reads (at most {max_pixels // 10**6} Mpx)"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # an error here, not a stray line
            if src.startswith(("http://", "https://")):
                with urllib.request.urlopen(src, timeout=30) as r:
                    data = r.read(MAX_FETCH + 1)
                if len(data) > MAX_FETCH:
                    raise ClipganError(f"image {src} is larger than {MAX_FETCH >> 20} MiB")
                image = Image.open(io.BytesIO(data))
            else:
                if not Path(src).is_file():
                    raise ClipganError(f"image not found: {src}")
                image = Image.open(src)
            w, h = image.size
            if w < 1 or h < 1 or w * h > max_pixels:  # checked on the header, before decoding
                raise ClipganError(f"{too_big}: its header says {w}x{h}")
            image.load()
        return image
    except ClipganError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ClipganError(too_big) from None
    except Exception as e:  # decoders fail in many ways on damaged files (OSError, SyntaxError, struct.error, ...)
        if isinstance(e, OSError) and src.startswith(("http://", "https://")):
            raise ClipganError(f"could not fetch image {src} ({e})") from None
        raise ClipganError(f"{src} is not a readable image") from None


def load_rgb(src: str | Path) -> Image.Image:
    return rgb(open_image(src))


_HIGH_DEPTH = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def grey(image: Image.Image) -> Image.Image:
    """Any greyscale or colour image as 8-bit "L". 16-bit and 32-bit greyscale are scaled to
    0-255 (PIL's own conversion clips them: a 16-bit picture would come out almost all white)."""
    if image.mode == "L":
        return image
    if image.mode not in _HIGH_DEPTH:
        return rgb(image).convert("L")
    import numpy as np

    array = np.asarray(image).astype(np.float64)
    if image.mode == "F":  # float pictures: 0-1 if they fit, else 0-255
        scale = 255.0 if array.size and np.nanmax(array) <= 1.0 else 1.0
    else:  # integer greyscale as PNG and TIFF store it: 16 bits (an "I" image may hold 16-bit values)
        scale = 255.0 / 65535.0 if image.mode.startswith("I;16") or (array.size and array.max() > 255) else 1.0
    array = np.nan_to_num(array * scale, nan=0.0).clip(0, 255).round().astype(np.uint8)
    return Image.fromarray(array, "L")


def rgb(image: Image.Image) -> Image.Image:
    """Any PIL image as 8-bit RGB (high-bit-depth greyscale scaled, see `grey`)."""
    if image.mode == "RGB":
        return image
    if image.mode in _HIGH_DEPTH:
        return grey(image).convert("RGB")
    try:
        return image.convert("RGB")
    except (ValueError, OSError):  # modes PIL cannot turn into RGB (LAB, HSV, ...)
        raise ClipganError(f"images in PIL mode {image.mode} are not supported; save it as RGB") from None


def to_tensor(image: Image.Image, size: tuple[int, int] | None = None, device="cpu"):
    """PIL -> (1, 3, H, W) float in [0, 1], resized to size=(W, H) with Lanczos if given."""
    import numpy as np
    import torch

    image = rgb(image)
    if size is not None and image.size != tuple(size):
        image = image.resize(tuple(size), Image.LANCZOS)
    array = np.asarray(image, dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).to(device)


def to_pil(image) -> Image.Image:
    """(1, 3, H, W) or (3, H, W) tensor in [0, 1] -> PIL RGB."""
    t = image.detach().float()
    if t.dim() == 4:
        t = t[0]
    array = t.clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array, "RGB")
