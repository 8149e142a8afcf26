"""Images in and out: loading (path or URL), saving with the settings inside, atomic writes."""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import urllib.request
from pathlib import Path
from typing import Iterator

from PIL import Image, UnidentifiedImageError

from clipgan.errors import ClipganError

SETTINGS_KEY = "clipgan"  # PNG text chunk holding the settings JSON
EXIF_DESCRIPTION = 0x010E  # jpg/webp carry the same JSON as their EXIF ImageDescription
FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


def check_output(path: str | Path, formats: dict[str, str] = FORMATS) -> Path:
    """Fail early, before any work: a supported extension and an existing folder."""
    path = Path(path)
    if path.suffix.lower() not in formats:
        raise ClipganError(f"unsupported output extension {path.suffix or '(none)'!r} for {path}; use {', '.join(formats)}")
    if not path.parent.is_dir():
        raise ClipganError(f"output folder does not exist: {path.parent}")
    if path.is_dir():
        raise ClipganError(f"output {path} is a folder")
    return path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary name beside `path`, renamed onto it only if the block succeeds."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
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
        text = json.dumps(settings, sort_keys=True)
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


def open_image(src: str | Path) -> Image.Image:
    """A PIL image from a path or an http(s) URL, fully read; errors name the source."""
    src = str(src)
    try:
        if src.startswith(("http://", "https://")):
            with urllib.request.urlopen(src, timeout=30) as r:
                data = io.BytesIO(r.read())
            image = Image.open(data)
        else:
            if not Path(src).is_file():
                raise ClipganError(f"image not found: {src}")
            image = Image.open(src)
        image.load()
        return image
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        if isinstance(e, OSError) and src.startswith(("http://", "https://")):
            raise ClipganError(f"could not fetch image {src} ({e})") from None
        raise ClipganError(f"{src} is not a readable image") from None


def load_rgb(src: str | Path) -> Image.Image:
    return open_image(src).convert("RGB")


def to_tensor(image: Image.Image, size: tuple[int, int] | None = None, device="cpu"):
    """PIL -> (1, 3, H, W) float in [0, 1], resized to size=(W, H) with Lanczos if given."""
    import numpy as np
    import torch

    image = image.convert("RGB")
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
