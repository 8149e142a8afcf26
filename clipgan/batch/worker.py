"""One worker: a device, models loaded once, and jobs run through clipgan.generate or
clipgan.animate (no loop of its own). The same class serves a local process and a Ray actor.

A job's result is plain data the driver writes to disk: the encoded output file and, for videos, a
PNG poster (the last frame) carrying the settings. A failing job (bad prompt, out of memory, NaN)
becomes a record with a one-line error; only KeyboardInterrupt leaves.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
import warnings
from pathlib import Path

from clipgan.batch.jobs import Job
from clipgan.config import DEFAULT_FPS, Settings
from clipgan.errors import ClipganError, ClipganNotice

class Worker:
    def __init__(self, device: str = "auto", threads: int | None = None):
        import torch

        if threads:
            torch.set_num_threads(threads)  # several CPU workers on one machine share its cores
        self.device = device
        self.where = f"{socket.gethostname()}:{os.getpid()}"
        self._models = None  # (key, Models): one set, reloaded only when a job names other models
        self.loads = 0  # times this worker loaded models

    def models(self, settings: Settings):
        from clipgan.run import load_models_for, model_key

        key = model_key(settings)
        if self._models is None or self._models[0] != key:
            self._models = None  # free the old ones first
            self._models = (key, load_models_for(settings))
            self.loads += 1
        return self._models[1]

    def run(self, job: dict) -> dict:
        """The job's record and files: {"record": {...}, "data": bytes | None, "poster": bytes | None}."""
        job = Job.from_dict(job)
        record = {**base_record(job), "status": "done", "worker": self.where}
        data = poster = None
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ClipganNotice)
            try:
                settings = Settings().replace(**{**job.settings, "seed": job.seed, "device": self.device})
                data, poster = (self._picture if job.kind == "generate" else self._video)(job, settings)
            except KeyboardInterrupt:
                raise
            except Exception as e:  # noqa: BLE001  the job fails, the batch goes on
                record.update(status="failed", error=one_line(e))
                _free_memory()
        record["seconds"] = round(time.perf_counter() - start, 3)
        record["model_loads"] = self.loads  # by this worker so far: 1 while the jobs share models
        notes = sorted({str(w.message) for w in caught if issubclass(w.category, ClipganNotice)})
        if notes:
            record["notes"] = notes
        return {"record": record, "data": data, "poster": poster}

    def _picture(self, job: Job, settings: Settings) -> tuple[bytes, None]:
        from clipgan.run import generate

        result = generate(job.prompts, settings=settings, models=self.models(settings))
        return png_bytes(result.image, result.settings.to_dict()), None

    def _video(self, job: Job, settings: Settings) -> tuple[bytes, bytes]:
        from clipgan import animate, run
        from clipgan.video import VideoWriter

        if job.kind == "morph":  # with the settings' image model, diffusion included
            frames = run.morph(job.prompts, animate.MorphOptions(**job.options), settings=settings,
                               models=self.models(settings))
        else:
            frames = animate.zoom(job.prompts, settings=settings, models=self.models(settings), **job.options)
        with tempfile.TemporaryDirectory(prefix="clipgan-batch-") as tmp:
            path = Path(tmp) / job.output
            last = None
            with VideoWriter(path, fps=job.fps or DEFAULT_FPS) as video:
                for last in frames:
                    video.append(last.image)
            data = path.read_bytes()
        return data, png_bytes(last.pil(), settings.replace(prompts=list(last.prompts)).to_dict())


def base_record(job: Job) -> dict:
    return {"job": job.id, "kind": job.kind, "output": job.output, "seed": job.seed, "prompts": job.prompts,
            "status": "failed", "error": None, "seconds": 0.0, "worker": None}


def failed(job: Job, error: str) -> dict:
    """The result of a job whose worker died under it."""
    return {"record": {**base_record(job), "error": error}, "data": None, "poster": None}


def png_bytes(image, settings: dict) -> bytes:
    """The PNG `clipgan.io.save_image` would write, as bytes for the driver to write."""
    from clipgan.io import save_image

    with tempfile.TemporaryDirectory(prefix="clipgan-batch-") as tmp:
        return save_image(image, Path(tmp) / "image.png", settings).read_bytes()


def one_line(e: BaseException) -> str:
    """An error as one line: clipgan's own message, out-of-memory advice, or type and first line."""
    if isinstance(e, ClipganError):
        text = str(e)
    else:
        from clipgan.memory import out_of_memory_message

        text = out_of_memory_message(e) or f"{type(e).__name__}: {str(e).strip()}"
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return (lines[0] if lines else type(e).__name__)[:300]


def _free_memory() -> None:
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()  # after an out-of-memory error, so the next job starts clean
