"""The GPU bench run whole on a CPU at a tiny size: every phase answers, CUDA-only ones say why they
were skipped, and one failing measurement leaves the others and a readable report."""

import json
import subprocess
import sys

import pytest

from clipgan.bench import gpu
from clipgan.bench.gpu_report import markdown


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu-bench")
    cmd = [sys.executable, "-m", "clipgan.bench.gpu", "--tiny", "--tiny-models", "--device", "cpu", "--out", str(out),
           "--levers", "classic,default,low_memory,compile,cuda_graphs", "--memory-sizes", "default:64,default:64:low"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, json.loads((out / "gpu.json").read_text()), (out / "gpu.md").read_text(), proc


def test_every_phase_reports(tiny_run):
    out, data, md, _ = tiny_run
    assert sorted(p.name for p in out.iterdir()) == ["gpu.json", "gpu.md"]  # no temporary files left
    assert data["finished"] is True and data["machine"]["device"] == "cpu"
    assert data["settings"]["size"] == 32 and data["settings"]["cutn"] == 2
    assert data["matmul"]["n"] == 256 and data["matmul"]["tflops"] > 0
    rows = data["speed"]["rows"]
    assert set(rows) == {"classic", "default", "low_memory"}
    for name, row in rows.items():
        assert row["s_per_step"] > 0 and len(row["per_step_s"]) == 1 and row["flops_per_step"] > 0, name
    assert rows["classic"]["x_classic"] == 1.0 and rows["default"]["x_default"] == 1.0
    # round 0 runs default and low memory on the same z and cutouts: checkpointing changes no value
    assert rows["low_memory"]["loss0_rel_diff_vs_default"] < 1e-5
    # and it recomputes the decoder in the backward pass: more FLOPs per step than the default
    assert rows["low_memory"]["flops_per_step"] > rows["default"]["flops_per_step"]
    assert "util_of_peak" not in rows["default"]  # no peak for a CPU in the table
    cut = data["speed"]["cutouts_alone"]
    assert cut["default_s"] > 0 and cut["default_x_classic"] == pytest.approx(cut["default_s"] / cut["classic_s"])


def test_cuda_only_measurements_are_skipped_with_a_reason(tiny_run):
    _, data, md, _ = tiny_run
    for name in ("compile", "cuda_graphs"):
        assert "CUDA only" in data["compiled"]["rows"][name]["skipped"]
    for name in ("default", "low_memory"):
        assert "needs CUDA" in data["largest"][name]["skipped"]
    assert data["peak"]["tflops"] is None


def test_memory_rows_count_what_autograd_keeps(tiny_run):
    _, data, _, _ = tiny_run
    plain, low = data["memory"]["rows"]["default 64"], data["memory"]["rows"]["default 64 low_memory"]
    assert plain["peak_allocated_mib"] is None and "CUDA only" in plain["peak_note"]
    assert 0 < low["saved_mib"] < plain["saved_mib"]  # checkpointing keeps less for the backward pass
    assert 0 < low["estimate_step_mib"] < plain["estimate_step_mib"]


def test_markdown_has_every_table(tiny_run):
    _, data, md, proc = tiny_run
    assert md == markdown(data) and md in proc.stdout
    for heading in ("### Speed, lever by lever", "### Peak memory", "### Largest size", "### Targets"):
        assert heading in md
    assert "| classic |" in md and "skipped: CUDA only" in md


def test_a_failing_measurement_is_recorded_and_the_report_still_written(tmp_path):
    data = {"machine": {}, "settings": {}, "speed": {"rows": {}}, "compiled": {"rows": {}},
            "memory": {"rows": {}}, "largest": {}, "targets": {}}
    report = gpu.Report(tmp_path, data)
    report.guard(data["memory"]["rows"], "broken", lambda: [][1])
    report.guard(data["memory"]["rows"], "fine", lambda: {"size": 64, "saved_mib": 1.0})
    saved = json.loads((tmp_path / "gpu.json").read_text())
    assert saved["memory"]["rows"]["broken"]["error"].startswith("IndexError: list index out of range")
    assert saved["memory"]["rows"]["fine"]["saved_mib"] == 1.0
    assert "error: IndexError" in (tmp_path / "gpu.md").read_text()


def test_bad_arguments_are_refused():
    with pytest.raises(SystemExit):
        gpu.parse_args(["--levers", "classic,warp-drive"])
    with pytest.raises(SystemExit):
        gpu.parse_args(["--size", "100"])


def test_a_compile_over_its_cap_is_stopped_and_recorded(tmp_path):
    """The compiled levers run in a child process: past --compile-cap it is killed, the run goes on."""
    cmd = [sys.executable, "-m", "clipgan.bench.gpu", "--tiny", "--tiny-models", "--device", "cpu", "--out", str(tmp_path),
           "--phases", "compiled", "--levers", "compile", "--compile-on-cpu", "--compile-cap", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((tmp_path / "gpu.json").read_text())
    assert data["finished"] and data["compiled"]["rows"]["compile"]["error"] == "stopped at the cap of 1 s"
    assert data["speed"]["rows"] == {} and "compiled.rows.compile: stopped at the cap" in (tmp_path / "gpu.md").read_text()
