"""Local workers: one `Worker` in this process, or N spawned processes (concurrent.futures), each
with its own device and models loaded once for all its jobs. The executor does the scheduling; at
most one job per worker is in flight, so a worker that dies takes only its own job with it.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import signal
from typing import Iterator

from clipgan.batch.jobs import Job

_worker = None  # the Worker of a spawned process, set by its initializer (never in the driver)


def devices(workers: int, device: str) -> list[str]:
    """One device per worker: GPUs in turn for "auto" when there are any, else the one given."""
    import torch

    if device == "auto" and torch.cuda.is_available():
        count = torch.cuda.device_count()
        return [f"cuda:{i % count}" for i in range(workers)]
    return [device] * workers


def default_workers(device: str) -> int:
    import torch

    return torch.cuda.device_count() if device in ("auto", "cuda") and torch.cuda.is_available() else 1


def cpu_threads(workers: int, device: str) -> int | None:
    """CPU workers share the cores: each gets its part (None: leave torch's default)."""
    return max(1, (os.cpu_count() or 1) // workers) if workers > 1 and not device.startswith("cuda") else None


def run_local(jobs: list[Job], workers: int, device: str) -> Iterator[tuple[Job, dict]]:
    """(job, result) as each job ends, in the order they end."""
    from clipgan.batch.worker import Worker, failed

    if not jobs:
        return
    workers = min(workers, len(jobs))
    if workers == 1:
        worker = Worker(devices(1, device)[0])
        for job in jobs:
            yield job, worker.run(job.to_dict())
        return
    context = multiprocessing.get_context("spawn")  # fork and CUDA do not mix
    pool = _pool(context, workers, device)
    todo, running = list(reversed(jobs)), {}
    try:
        while todo or running:
            while todo and len(running) < workers:
                job = todo.pop()
                running[pool.submit(_run, job.to_dict())] = job
            done, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
            for future in done:
                job = running.pop(future, None)
                if job is None:  # re-queued when the pool broke
                    continue
                try:
                    result = future.result()
                except cf.process.BrokenProcessPool:
                    result = failed(job, "the worker process died (out of memory?)")
                    pool.shutdown(wait=False, cancel_futures=True)
                    pool = _pool(context, workers, device)
                    for other in list(running):  # the broken pool's other jobs go again
                        todo.append(running.pop(other))
                yield job, result
    except BaseException:  # Ctrl-C, SIGTERM, or the caller stopped early
        _stop(pool)
        raise
    pool.shutdown(wait=True)


def _pool(context, workers: int, device: str) -> cf.ProcessPoolExecutor:
    """Each process takes its device from the queue as it starts."""
    queue = context.Queue()
    for d in devices(workers, device):
        queue.put(d)
    return cf.ProcessPoolExecutor(workers, mp_context=context, initializer=_start,
                                  initargs=(queue, cpu_threads(workers, device)))


def _stop(pool: cf.ProcessPoolExecutor) -> None:
    """Ends the workers now: a job cut short leaves no file (outputs are written by the driver)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())  # no public way before 3.14
    for process in processes:
        process.terminate()
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.join(timeout=10)


def _start(queue, threads: int | None) -> None:
    global _worker
    from clipgan.batch.worker import Worker

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    _worker = Worker(queue.get(), threads)


def _run(job: dict) -> dict:
    return _worker.run(job)
