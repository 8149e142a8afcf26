"""The driver's side of a batch folder: outputs written atomically, `manifest.jsonl` (one record a
finished or failed job, appended as it ends; the last record of a job wins), and the contact sheet
rewritten after each job. Workers never write here, so a batch on Ray writes on the driver's disk.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from clipgan.batch.contact import ContactSheet
from clipgan.batch.jobs import Job
from clipgan.errors import ClipganError
from clipgan.io import atomic_path

MANIFEST = "manifest.jsonl"


def poster_name(output: str) -> str:
    """A video's poster picture (its last frame, with the settings) beside it."""
    return str(Path(output).with_suffix(".png"))


class Manifest:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.path = self.folder / MANIFEST
        self.records: dict[str, dict] = {}
        for record in read_manifest(self.path):
            self.records[record["job"]] = record
        self.sheet = ContactSheet(self.folder)
        self.sheet.load(self.records)

    def finished(self, job: Job) -> bool:
        """Done before, and its output still there (a deleted output is made again)."""
        record = self.records.get(job.id)
        return record is not None and record.get("status") == "done" and (self.folder / job.output).is_file()

    def write(self, result: dict, job: Job) -> dict:
        """A worker's result -> files, then the manifest line, then the contact sheet."""
        record = result["record"]
        try:
            if result.get("data") is not None:
                if result.get("poster") is not None:
                    _write_bytes(self.folder / poster_name(job.output), result["poster"])
                _write_bytes(self.folder / job.output, result["data"])
            with open(self.path, "a", encoding="utf-8") as f:  # one short line a job: appended whole
                f.write(json.dumps(record, sort_keys=True) + "\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise ClipganError(f"could not write to {self.folder} ({e.strerror or e})") from None
        self.records[record["job"]] = record
        self.sheet.add(record, result.get("poster") or result.get("data"))
        return record


def read_manifest(path: Path) -> list[dict]:
    """The records in order; a torn last line (a crash mid-write) is skipped."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("job"), str):
            records.append(record)
    return records


def _write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
