"""Checking downloaded model files: a published sha256 where the registry has one, else trust on
first use (the sha256 and size of the first download, recorded beside the files and checked at
every later use).

The record is `downloads.json` in the folder the files are in: {file name: {"sha256", "size",
"url"}}. Files placed there by hand are recorded the first time they are used.
No torch here.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

from clipgan.errors import ClipganError, ClipganNotice

RECORD = "downloads.json"
CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def load_record(folder: Path) -> dict:
    path = Path(folder) / RECORD
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise ClipganError(f"cannot read the download record {path} ({e}); delete it to record the files again") from None
    if not isinstance(data, dict):
        raise ClipganError(f"the download record {path} is not a JSON object; delete it to record the files again")
    return data


def remember(path: Path, sha256: str, url: str | None = None) -> dict:
    """Records `path`'s sha256 and size in its folder's record (written atomically); returns the entry."""
    path = Path(path)
    record = load_record(path.parent)
    entry = {"sha256": sha256.lower(), "size": path.stat().st_size, "url": url}
    record[path.name] = entry
    from clipgan.io import atomic_path

    with atomic_path(path.parent / RECORD) as tmp:
        tmp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    return entry


def verify_entry(entry, config: Path, checkpoint: Path) -> None:
    """Checks both files of a downloadable registry entry before they load (bundled ones: nothing)."""
    if entry.bundled:
        return
    verify(config, entry.config_sha256, entry.name, entry.config_url)
    verify(checkpoint, entry.checkpoint_sha256, entry.name, entry.checkpoint_url)


def verify(path: Path, published: str | None, name: str, url: str | None = None) -> str:
    """Checks a model file before use; returns its sha256.

    Against `published` when the registry has a hash, else against the recorded first download;
    a file with neither is recorded now (trust on first use). A mismatch is one ClipganError line.
    """
    path = Path(path)
    redo = f"delete it and run: clipgan download {name}"
    if published:
        actual = sha256_of(path)
        if actual != published.lower():
            raise ClipganError(f"{path} does not match the published sha256 {published} (got {actual}); {redo}")
        return actual
    known = load_record(path.parent).get(path.name)
    if not isinstance(known, dict) or not isinstance(known.get("sha256"), str):
        actual = sha256_of(path)
        remember(path, actual, url)
        warnings.warn(f"{path.name} had no recorded sha256: recorded it now (trust on first use)", ClipganNotice)
        return actual
    size = path.stat().st_size
    if size != known.get("size"):
        raise ClipganError(f"{path} is {size} bytes, but its first download was {known.get('size')}; {redo}")
    actual = sha256_of(path)
    if actual != known["sha256"]:
        raise ClipganError(f"{path} has changed since its first download (sha256 {actual}, "
                           f"recorded {known['sha256']}); {redo}")
    return actual
