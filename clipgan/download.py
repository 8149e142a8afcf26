"""Resumable, checksummed downloads of model files (stdlib urllib + a tqdm bar).

A registry model is checked against its published sha256 where there is one; otherwise the
first download's sha256 and size are recorded beside it (clipgan.models.checksums) and checked
at every later use.

A download streams into `<dest>.part` and only an os.replace puts it under its final
name, so a file under the final name is always complete. An interrupted download keeps
its .part, and the next call resumes it with an HTTP Range request.
"""

from __future__ import annotations

import http.client
import os
import re
import socket
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from tqdm import tqdm

from clipgan.errors import ClipganError
from clipgan.models import checksums, registry

DEFAULT_TIMEOUT = 30.0  # seconds per socket operation, not for the whole file
CHUNK = 1 << 20
USER_AGENT = "clipgan-downloader"


class _RangeNotSatisfiable(Exception):
    """HTTP 416 to a resume request; `total` is the file size when the server says it."""

    def __init__(self, total: int | None):
        super().__init__(total)
        self.total = total


def part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


sha256_of = checksums.sha256_of


def fetch(
    url: str,
    dest: Path | str,
    sha256: str | None = None,
    progress: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
) -> Path:
    """Download `url` to `dest`, resuming a previous partial download; returns `dest`.

    An existing `dest` is never overwritten: it is returned as is when it matches
    `sha256` (or no hash is known), and is an error when it does not.
    """
    dest = Path(dest)
    if dest.is_dir():
        raise ClipganError(f"cannot download to {dest}: it is a directory")
    if dest.exists():
        return _check_existing(dest, sha256)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    _download_to_part(url, part, progress, timeout, label=dest.name)
    if sha256:
        _verify(part, sha256, label=dest.name)
    os.replace(part, dest)
    return dest


def download_model(name: str, root: Path | str | None = None, progress: bool = True) -> list[Path]:
    """Fetch the yaml and ckpt of a registered VQGAN into the checkpoints dir.

    Bundled models have nothing to download: their existing paths are returned as they
    are (callers can check `VQGAN_MODELS[name].bundled` to tell the user so).
    """
    from clipgan.models import diffusion_registry

    if diffusion_registry.is_diffusion_name(name):  # a diffusers folder
        return download_diffusion(name, root, progress)
    entry = registry.get_entry(name)
    config_path, ckpt_path = registry.entry_paths(entry, root)
    if entry.bundled:
        return list(registry.resolve_vqgan(name, root))
    if not (entry.config_url and entry.checkpoint_url):
        raise ClipganError(f"model {name!r} has no download URL registered")
    # The small yaml first: a bad link shows up before a gigabyte is spent.
    return [
        _fetch_checked(entry, entry.config_url, config_path, entry.config_sha256, progress),
        _fetch_checked(entry, entry.checkpoint_url, ckpt_path, entry.checkpoint_sha256, progress),
    ]


def download_diffusion(name: str, root: Path | str | None = None, progress: bool = True) -> list[Path]:
    """Fetch a registered diffusion model's folder (config, schedule, safetensors weights)."""
    from clipgan.models import diffusion_registry as dr

    entry = dr.get_diffusion_entry(name)
    if entry.bundled:
        return [dr.resolve_diffusion(name)]
    folder = dr.entry_folder(entry, root)
    published = dict(entry.sha256)
    # the small JSON files first: a bad link shows up before the weights are spent
    return [_fetch_checked(entry, entry.url(f), folder / f, published.get(f), progress) for f in dr.FILES]


def _fetch_checked(entry, url: str, dest: Path, published: str | None, progress: bool) -> Path:
    """fetch(), then: a file that was already there is checked like any use; a new download
    without a published hash gets its sha256 and size recorded (trust on first use)."""
    existed = Path(dest).exists()
    path = fetch(url, dest, published, progress)
    if existed:
        checksums.verify(path, published, entry.name, url)
    elif not published:
        checksums.remember(path, sha256_of(path), url)
    return path


def _check_existing(dest: Path, sha256: str | None) -> Path:
    if sha256 and sha256_of(dest) != sha256.lower():
        raise ClipganError(
            f"{dest} exists but does not match the expected sha256 {sha256}; "
            "delete it to download again"
        )
    return dest


def _verify(part: Path, expected: str, label: str) -> None:
    actual = sha256_of(part)
    if actual != expected.lower():
        part.unlink()  # a complete but wrong file cannot be resumed into a right one
        raise ClipganError(
            f"checksum mismatch for {label}: expected sha256 {expected}, got {actual}; "
            "the download was deleted"
        )


def _download_to_part(url: str, part: Path, progress: bool, timeout: float, label: str) -> None:
    """Stream `url` into `part`, appending when the server resumes, else from byte zero."""
    response, start = _open_resuming(url, part, timeout)
    if response is None:  # the .part already holds the whole file
        return
    with response:
        total = _expected_total(response, start)
        with part.open("ab" if start else "wb") as out, tqdm(
            total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
            desc=label, disable=not progress,
        ) as bar:
            received = _stream(response, out, bar, url, part)
    if total is not None and start + received < total:
        _interrupted(part, start + received, total)


def _open_resuming(url: str, part: Path, timeout: float):
    """Open `url`, asking for the bytes after an existing .part; returns (response, start).

    `start` is where the body begins in the file: the .part size when the server answered
    206 for it, 0 when it sent the whole file (it ignored Range). (None, size) means the
    .part is already complete.
    """
    offset = part.stat().st_size if part.exists() else 0
    try:
        response = _urlopen(url, offset, timeout)
    except _RangeNotSatisfiable as err:
        if err.total == offset:
            return None, offset
        part.unlink()  # larger than the file, or unknown: start over
        return _urlopen(url, 0, timeout), 0
    if not offset or response.status != 206:
        return response, 0
    if _content_range(response.headers.get("Content-Range"))[0] == offset:
        return response, offset
    response.close()  # a range we did not ask for: start over
    part.unlink()
    return _urlopen(url, 0, timeout), 0


def _urlopen(url: str, offset: int, timeout: float):
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:
            total = _content_range(err.headers.get("Content-Range"))[1]
            err.close()
            raise _RangeNotSatisfiable(total) from None
        raise ClipganError(f"download failed: HTTP {err.code} {err.reason} for {url}") from None
    except urllib.error.URLError as err:
        raise ClipganError(f"download failed: cannot reach {_host(url)} ({err.reason})") from None
    except (socket.timeout, TimeoutError):
        raise ClipganError(f"download failed: {_host(url)} timed out after {timeout:g} s") from None
    except (OSError, http.client.HTTPException, ValueError) as err:
        raise ClipganError(f"download failed for {url}: {err}") from None


def _stream(response, out, bar, url: str, part: Path) -> int:
    """Copy the body into `out`; returns the byte count. Read errors keep the .part."""
    received = 0
    while True:
        try:
            block = response.read(CHUNK)
        except (OSError, http.client.HTTPException):
            out.flush()
            _interrupted(part, None, None)
        if not block:
            return received
        out.write(block)
        received += len(block)
        bar.update(len(block))


def _interrupted(part: Path, have: int | None, total: int | None):
    done = f" at {have} of {total} bytes" if total else ""
    raise ClipganError(
        f"download interrupted{done}; rerun the same command to resume it from {part}"
    )


def _expected_total(response, start: int) -> int | None:
    """Full file size, from Content-Range on a 206 or Content-Length otherwise."""
    if response.status == 206:
        total = _content_range(response.headers.get("Content-Range"))[1]
        if total is not None:
            return total
    length = response.headers.get("Content-Length")
    return start + int(length) if length and length.isdigit() else None


_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)")


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """(first byte, total size) from a Content-Range header; None where absent or '*'."""
    match = _CONTENT_RANGE.match(value or "")
    if not match:
        return None, None
    first, total = match.groups()
    return (int(first) if first else None), (int(total) if total and total.isdigit() else None)


def _host(url: str) -> str:
    return urlsplit(url).netloc or url
