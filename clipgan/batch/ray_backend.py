"""Ray actors: one per GPU (num_gpus=1) or per CPU slot, each a `Worker` with its models loaded once.

Ray places the actors and restarts one whose process dies (max_restarts), re-running the job it
held (max_task_retries); the driver only hands each idle actor its next job and streams results
back with ray.wait. Needs the optional extra: pip install 'clipgan[ray]'.
"""

from __future__ import annotations

from typing import Iterator

from clipgan.batch.jobs import Job
from clipgan.errors import ClipganError

RESTARTS = 3  # times Ray restarts a dead actor (each restart reloads its models)
RETRIES = 3  # times Ray re-runs the job a dying actor held


class RayWorker:
    """The actor: a Worker (clipgan.batch.worker) in Ray's process."""

    def __init__(self, device: str, threads: int | None):
        from clipgan.batch.worker import Worker

        self.worker = Worker(device, threads)

    def run(self, job: dict) -> dict:
        return self.worker.run(job)


def _ray():
    try:
        import ray
    except ImportError:
        raise ClipganError("--ray needs Ray: pip install 'clipgan[ray]'") from None
    return ray


def actor_plan(resources: dict, device: str, workers: int | None, jobs: int) -> tuple[int, dict, str, int | None]:
    """(actors, their resource request, device, torch threads) for a cluster's resources."""
    gpus = int(resources.get("GPU", 0))
    if gpus and device in ("auto", "cuda"):
        count, request, device, threads = gpus, {"num_gpus": 1}, "cuda", None  # Ray sets CUDA_VISIBLE_DEVICES
    else:
        count = int(resources.get("CPU", 1))
        request, device, threads = {"num_cpus": 1}, ("cpu" if device == "auto" else device), 1
    return max(1, min(count, workers or count, jobs)), request, device, threads


def run_ray(jobs: list[Job], address: str | None = None, workers: int | None = None,
            device: str = "auto") -> Iterator[tuple[Job, dict]]:
    """(job, result) as each job ends. Joins the Ray already started in this process, else the
    cluster at `address`, else starts a local one (and stops it at the end)."""
    if not jobs:
        return
    ray = _ray()
    started = not ray.is_initialized()
    if started:
        try:
            ray.init(address=address, include_dashboard=False)
        except (ConnectionError, ValueError, RuntimeError) as e:
            raise ClipganError(f"could not reach Ray at {address or 'a new local instance'} ({e})") from None
    actors = []
    try:
        count, request, device, threads = actor_plan(ray.cluster_resources(), device, workers, len(jobs))
        remote = ray.remote(max_restarts=RESTARTS, max_task_retries=RETRIES, **request)(RayWorker)
        actors = [remote.remote(device, threads) for _ in range(count)]
        yield from _stream(ray, actors, jobs)
    finally:
        for actor in actors:  # also on Ctrl-C: no actor outlives the batch
            ray.kill(actor, no_restart=True)
        if started:
            ray.shutdown()


def _stream(ray, actors: list, jobs: list[Job]) -> Iterator[tuple[Job, dict]]:
    from ray.exceptions import RayActorError, RayError

    from clipgan.batch.worker import failed, one_line

    idle, todo, running = list(actors), list(reversed(jobs)), {}

    def hand_out():
        while todo and idle:
            actor, job = idle.pop(), todo.pop()
            running[actor.run.remote(job.to_dict())] = (actor, job)

    hand_out()
    while running:
        ready, _ = ray.wait(list(running), num_returns=1)
        finished = []
        for ref in ready:
            actor, job = running.pop(ref)
            try:
                finished.append((job, ray.get(ref)))
                idle.append(actor)
            except RayActorError as e:  # died more often than Ray restarts it: the job fails, the rest go on
                finished.append((job, failed(job, f"the Ray worker died: {one_line(e)}")))
            except RayError as e:
                finished.append((job, failed(job, one_line(e))))
                idle.append(actor)
        hand_out()  # the next jobs start before the results are written
        yield from finished
    for job in reversed(todo):  # every actor gone for good
        yield job, failed(job, "no Ray worker left to run it")
