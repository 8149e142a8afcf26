"""The driver: jobs not yet finished go to local workers or Ray actors; each result is written
(outputs, manifest line, contact sheet) here as it arrives."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from clipgan.batch.jobs import Job
from clipgan.batch.manifest import Manifest
from clipgan.errors import ClipganError

FAILED = 1  # exit code when any job failed (2 stays bad input, 130 an interruption)


@dataclass
class Summary:
    done: int = 0
    failed: int = 0
    skipped: int = 0  # finished in an earlier run
    records: list[dict] = field(default_factory=list)  # this run's, in the order the jobs ended


def run_batch(jobs: list[Job], folder: str | Path, *, workers: int | None = None, device: str = "auto",
              ray: bool = False, address: str | None = None,
              on_record: Callable[[dict], None] | None = None) -> Summary:
    """Runs the jobs the folder's manifest does not list as done; `on_record(record)` after each.

    With more than one local worker the workers are spawned processes, so a script calling this
    needs the usual `if __name__ == "__main__":` guard.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ClipganError(f"output {folder} is a file, not a folder")
    if not folder.parent.is_dir():
        raise ClipganError(f"folder for the batch does not exist: {folder.parent}")
    if workers is not None and workers < 1:
        raise ClipganError(f"--workers must be at least 1, got {workers}")
    folder.mkdir(exist_ok=True)
    manifest = Manifest(folder)
    todo = [job for job in jobs if not manifest.finished(job)]
    summary = Summary(skipped=len(jobs) - len(todo))
    if ray:
        from clipgan.batch.ray_backend import run_ray

        results = run_ray(todo, address=address, workers=workers, device=device)
    else:
        from clipgan.batch.local import default_workers, run_local

        results = run_local(todo, workers or default_workers(device), device)
    try:
        for job, result in results:
            record = manifest.write(result, job)
            summary.records.append(record)
            if record["status"] == "done":
                summary.done += 1
            else:
                summary.failed += 1
            if on_record is not None:
                on_record(record)
    finally:
        manifest.sheet.flush()
    return summary
