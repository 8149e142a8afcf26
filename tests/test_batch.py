"""`clipgan batch` on local workers with the tiny random models: outputs equal clipgan.generate's and
carry their settings; manifest and contact sheet; failures recorded and the rest go on; a rerun
skips finished jobs; Ctrl-C keeps every finished output; two worker processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

import clipgan
from clipgan.animate import morph_frame_count
from clipgan.batch.manifest import read_manifest
from clipgan.cli import main
from clipgan.io import read_settings
from clipgan.video import iter_frames

from conftest import tiny_cli_args

GOOD = ["a red circle", "a blue square:2"]
BAD = "a green star:abc"  # the weight does not parse: that job fails, the others go on


def batch(args, capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main(["batch", *args])
    out = capsys.readouterr()
    return exit_.value.code, out.out, out.err


def tiny_args(kw: dict) -> list[str]:
    """The tiny models at 32 px, 3 steps, 4 cutouts; no --seed, so each job's own seed is used."""
    args = tiny_cli_args(kw)
    return [a for a in args[:args.index("--seed")]] + ["-i", str(kw["iterations"]), "-q"]


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, tiny_settings, one_thread):
    folder = tmp_path_factory.mktemp("batch")
    jobs = folder / "jobs.txt"
    jobs.write_text("\n".join([GOOD[0], BAD, GOOD[1]]) + "\n")
    out = folder / "out"
    return jobs, out, tiny_args(tiny_settings)


def test_outputs_equal_generate_and_carry_their_settings(first_run, tiny_settings, capsys):
    jobs, out, args = first_run
    code, stdout, err = batch([str(jobs), "-o", str(out), *args], capsys)
    assert code == 1, err  # a job failed
    assert "2 done, 1 failed" in stdout
    records = read_manifest(out / "manifest.jsonl")
    assert [r["status"] for r in records] == ["done", "failed", "done"]
    assert [r["model_loads"] for r in records] == [1, 1, 1]  # one worker, models loaded once
    bad = records[1]
    assert "weight 'abc'" in bad["error"] and "\n" not in bad["error"] and bad["prompts"] == [BAD]
    kw = {k: v for k, v in tiny_settings.items() if k != "seed"}
    for record, prompt in zip([records[0], records[2]], GOOD):
        assert set(record) >= {"job", "output", "seed", "seconds", "status", "error"}
        assert record["output"] == f"{record['job']}.png" and record["job"].endswith(f"-s{record['seed']}")
        expected = clipgan.generate(prompt, seed=record["seed"], **kw).image
        assert np.array_equal(pixels(out / record["output"]), np.asarray(expected, dtype=np.int16))
        stored = read_settings(out / record["output"])
        assert stored["seed"] == record["seed"] and stored["prompts"] == [prompt] and stored["iterations"] == 3
    page = (out / "contact.html").read_text()
    assert all(f'src="{r["output"]}"' for r in records if r["status"] == "done") and "failed: weight" in page
    sheet = Image.open(out / "contact.png")
    assert sheet.width == 3 * 128  # three cells in a row, the failed one included


def test_rerun_skips_finished_jobs_and_remakes_a_deleted_output(first_run, capsys):
    jobs, out, args = first_run
    if not (out / "manifest.jsonl").exists():
        pytest.skip("needs the first run")
    done = [r for r in read_manifest(out / "manifest.jsonl") if r["status"] == "done"]
    stamps = {r["output"]: (out / r["output"]).stat().st_mtime_ns for r in done}
    code, stdout, _ = batch([str(jobs), "-o", str(out), *args], capsys)
    assert code == 1 and "0 done, 1 failed, 2 finished before" in stdout
    assert {o: (out / o).stat().st_mtime_ns for o in stamps} == stamps  # untouched
    (out / done[0]["output"]).unlink()
    code, stdout, _ = batch([str(jobs), "-o", str(out), *args], capsys)
    assert "1 done, 1 failed, 1 finished before" in stdout
    assert (out / done[0]["output"]).is_file()
    assert [r["status"] for r in read_manifest(out / "manifest.jsonl")] == ["done", "failed", "done", "failed", "done", "failed"]


def test_jsonl_morph_and_zoom_make_videos_with_posters(tmp_path, tiny_settings, one_thread, capsys):
    rows = [{"kind": "morph", "prompts": ["a red circle", "a blue square"], "frames_per_transition": 3,
             "keyframe_steps": 2, "steps_per_frame": 1, "fps": 8},
            {"kind": "zoom", "prompts": "a green star", "frames": 3, "first_steps": 2, "steps_per_frame": 1,
             "zoom": "1 + 0.01*t"},
            {"prompts": "a red circle", "lr": 1e38}]  # adam's step overflows: a failing job, not a crash
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("\n".join(json.dumps(r) for r in rows))
    code, _, err = batch([str(jobs), "-o", str(tmp_path / "out"), *tiny_args(tiny_settings)], capsys)
    assert code == 1, err
    morph, zoom, broken = read_manifest(tmp_path / "out" / "manifest.jsonl")
    assert (morph["status"], zoom["status"], broken["status"]) == ("done", "done", "failed")
    assert broken["error"] and "\n" not in broken["error"]
    assert len(list(iter_frames(tmp_path / "out" / morph["output"]))) == morph_frame_count(2, 3)
    assert len(list(iter_frames(tmp_path / "out" / zoom["output"]))) == 3
    poster = read_settings(tmp_path / "out" / morph["output"].replace(".mp4", ".png"))
    assert poster["seed"] == morph["seed"] and poster["prompts"] == ["a blue square"]  # the last frame's


def test_diffusion_jobs_draw_with_the_unet(tmp_path, tiny_settings, unet_dir, one_thread, capsys):
    """image_model diffusion in a batch: a picture equal to clipgan.generate's, a morph of
    morph_frame_count frames, each denoised with the named UNet; a zoom, which diffusion has not, is
    a failed job with a one-line reason while the others finish."""
    common = {"image_model": "diffusion", "diffusion": str(unet_dir), "clip": list(tiny_settings["clip"]),
              "device": "cpu", "cutn": 2, "iterations": 2, "candidates": 1}
    rows = [{"prompts": "a red circle", "seed": 4, **common},
            {"kind": "morph", "prompts": ["a red circle", "a blue square"], "frames_per_transition": 2, "fps": 8,
             "seed": 4, **common},
            {"kind": "zoom", "prompts": "a green star", "frames": 2, "seed": 4, **common}]
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("\n".join(json.dumps(r) for r in rows))
    code, _, err = batch([str(jobs), "-o", str(tmp_path / "out"), "-q"], capsys)
    assert code == 1, err
    picture, morph, zoom = read_manifest(tmp_path / "out" / "manifest.jsonl")
    assert (picture["status"], morph["status"], zoom["status"]) == ("done", "done", "failed"), (picture, morph)
    assert "zoom is not made with --image-model diffusion" in zoom["error"]
    expected = clipgan.generate("a red circle", settings=clipgan.Settings(**{**common, "clip": tuple(common["clip"])}),
                                seed=4)
    got = Image.open(tmp_path / "out" / picture["output"]).convert("RGB")
    assert got.tobytes() == expected.image.convert("RGB").tobytes()
    assert read_settings(tmp_path / "out" / picture["output"])["image_model"] == "diffusion"
    assert len(list(iter_frames(tmp_path / "out" / morph["output"]))) == morph_frame_count(2, 2)


def test_ctrl_c_keeps_finished_outputs_and_the_rerun_finishes(tmp_path, tiny_settings, one_thread, capsys):
    jobs = tmp_path / "jobs.txt"
    jobs.write_text("a red circle\n")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "clipgan", "batch", str(jobs), "-o", str(out), "--seeds", "1-8",
           *tiny_args({**tiny_settings, "iterations": 6})]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    manifest = out / "manifest.jsonl"
    while proc.poll() is None and not (manifest.is_file() and manifest.read_text().count("\n") >= 2):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    records = read_manifest(manifest)
    if proc.returncode == 0:
        pytest.skip("the batch finished before the interrupt landed")
    assert proc.returncode == 130 and "interrupted" in err.decode(), err.decode()
    assert 2 <= len(records) < 8 and all(r["status"] == "done" for r in records)
    for r in records:
        Image.open(out / r["output"]).load()  # complete files
    assert not [p.name for p in out.iterdir() if ".tmp" in p.name]  # no partial file left
    code, stdout, stderr = batch(cmd[cmd.index("batch") + 1:], capsys)  # the rerun, in this process
    assert code == 0, stderr
    assert f"{8 - len(records)} done, 0 failed, {len(records)} finished before" in stdout
    assert len({r["job"] for r in read_manifest(manifest)}) == 8


def test_two_worker_processes_share_the_jobs(tmp_path, tiny_settings, capsys):
    jobs = tmp_path / "jobs.txt"
    jobs.write_text("a red circle\na blue square\n")
    out = tmp_path / "out"
    code, stdout, err = batch([str(jobs), "-o", str(out), "--seeds", "1-2", "--workers", "2", "--device", "cpu",
                               *tiny_args(tiny_settings)], capsys)
    assert code == 0, err
    records = read_manifest(out / "manifest.jsonl")
    assert len(records) == 4 and all(r["status"] == "done" for r in records)
    assert all(r["model_loads"] == 1 for r in records)  # each worker loaded its models once for its jobs
    workers = {r["worker"] for r in records}
    assert len(workers) == 2 and f":{os.getpid()}" not in " ".join(workers)  # two processes, neither this one
    kw = {k: v for k, v in tiny_settings.items() if k != "seed"}
    r = records[0]
    expected = np.asarray(clipgan.generate(r["prompts"], seed=r["seed"], **kw).image, dtype=np.int16)
    assert np.abs(pixels(out / r["output"]) - expected).mean() < 1  # the same picture (thread counts may differ)


@pytest.mark.slow
def test_a_dead_worker_process_fails_its_job_and_a_new_pool_runs_the_rest(tmp_path, tiny_settings):
    from clipgan.batch.jobs import make_jobs
    from clipgan.batch.run import run_batch

    jobs_file = tmp_path / "jobs.txt"
    jobs_file.write_text("a red circle\n")
    kw = {k: v for k, v in tiny_settings.items() if k not in ("seed", "device")}
    killed = []

    def kill_one(record):
        if not killed:
            time.sleep(0.3)
            killed.append(int(record["worker"].rsplit(":", 1)[1]))
            os.kill(killed[0], signal.SIGKILL)

    summary = run_batch(make_jobs(jobs_file, {**kw, "iterations": 30}, seeds=list(range(1, 7))), tmp_path / "out",
                        workers=2, device="cpu", on_record=kill_one)
    records = read_manifest(tmp_path / "out" / "manifest.jsonl")
    assert len(records) == 6 and summary.done + summary.failed == 6 and 1 <= summary.failed <= 2
    assert all("worker process died" in r["error"] for r in records if r["status"] == "failed")
