"""`clipgan batch` on a real local Ray (2 CPUs, started once for the module) with the bundled models at
tiny settings: a worker killed mid-job is restarted by Ray and its job retried, every job ends done;
a bad job fails alone; the CLI's --ray joins the running Ray."""

from __future__ import annotations

import os
import signal
import time

import pytest
import ray

from clipgan.batch.jobs import make_jobs
from clipgan.batch.manifest import read_manifest
from clipgan.batch.run import run_batch
from clipgan.cli import main
from clipgan.io import read_settings

TINY = {"iterations": 6, "cutn": 4}


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, num_gpus=0, include_dashboard=False)  # two CPU actors, GPU or not
    yield
    ray.shutdown()


def test_a_killed_worker_is_restarted_and_every_job_ends_done(local_ray, tmp_path):
    jobs_file = tmp_path / "jobs.txt"
    jobs_file.write_text("a red circle on a blue background\na yellow square on a purple background\n"
                         "a green star:abc\n")
    jobs = make_jobs(jobs_file, TINY, seeds=[1, 2])
    killed = []

    def kill_one(record):
        if not killed and record["status"] == "done":
            time.sleep(0.5)  # that worker has its next job by now (handed out before results are written)
            pid = int(record["worker"].rsplit(":", 1)[1])
            os.kill(pid, signal.SIGKILL)  # a crash, not a polite exit
            killed.append(pid)

    summary = run_batch(jobs, tmp_path / "out", ray=True, on_record=kill_one)
    records = read_manifest(tmp_path / "out" / "manifest.jsonl")
    assert killed and summary.done == 4 and summary.failed == 2
    by_status = {}
    for r in records:
        by_status.setdefault(r["status"], []).append(r)
    assert len(records) == 6 and len(by_status["done"]) == 4
    assert all("weight 'abc'" in r["error"] for r in by_status["failed"])  # the bad job alone fails
    pids = {int(r["worker"].rsplit(":", 1)[1]) for r in records}
    assert killed[0] in pids and len(pids) == 3  # two actors, and the killed one's restart ran its job again
    assert all(r["model_loads"] == 1 for r in records)  # once per actor, the restarted one included
    for r in by_status["done"]:
        assert read_settings(tmp_path / "out" / r["output"])["seed"] == r["seed"]


def test_cli_ray_runs_the_batch_on_the_running_ray(local_ray, tmp_path, capsys):
    jobs = tmp_path / "jobs.txt"
    jobs.write_text("a red circle on a blue background\n")
    with pytest.raises(SystemExit) as exit_:
        main(["batch", str(jobs), "-o", str(tmp_path / "out"), "--ray", "--workers", "1", "--seeds", "3-4",
              "-i", "2", "--cutn", "2", "-q"])
    out = capsys.readouterr()
    assert exit_.value.code == 0, out.err
    assert "2 done, 0 failed" in out.out
    records = read_manifest(tmp_path / "out" / "manifest.jsonl")
    assert sorted(r["seed"] for r in records) == [3, 4]
    assert all(not r["worker"].endswith(f":{os.getpid()}") for r in records)  # ran in Ray's workers
    assert ray.is_initialized()  # joined, not stopped: the batch did not start it


@pytest.mark.parametrize("resources,device,workers,jobs,plan", [
    ({"CPU": 8.0}, "auto", None, 20, (8, {"num_cpus": 1}, "cpu", 1)),  # one actor per CPU slot, one thread each
    ({"CPU": 8.0}, "auto", 3, 20, (3, {"num_cpus": 1}, "cpu", 1)),  # --workers caps them
    ({"CPU": 8.0}, "auto", None, 2, (2, {"num_cpus": 1}, "cpu", 1)),  # never more actors than jobs
    ({"CPU": 16.0, "GPU": 2.0}, "auto", None, 20, (2, {"num_gpus": 1}, "cuda", None)),  # one per GPU
    ({"CPU": 16.0, "GPU": 2.0}, "cpu", None, 20, (16, {"num_cpus": 1}, "cpu", 1)),  # GPUs left alone
])
def test_actor_plan(resources, device, workers, jobs, plan):
    from clipgan.batch.ray_backend import actor_plan

    assert actor_plan(resources, device, workers, jobs) == plan
