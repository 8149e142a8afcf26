"""Every GPU figure in one prepared run: speed lever by lever, FLOP utilisation, peak memory, the
largest size in 16 GiB.

    python -m clipgan.bench.gpu --out DIR            # CUDA: 512x512, cutn 32, about 5 minutes
    python -m clipgan.bench.gpu --out DIR --tiny     # anywhere: 32x32, cutn 2, a minute on a CPU

Models are the published architectures with random weights, as clipgan.bench.speed builds them
(the imagenet f16-16384 VQGAN, open_clip ViT-B-32 with QuickGELU). Phases, cheapest and safest
first, each guarded (an error is recorded as a string, the next phase runs) and each followed by
an atomic rewrite of DIR/gpu.json and DIR/gpu.md, so that a killed run keeps what it measured:

1. matmul: an 8192^3 bf16 matrix product on random data, the achievable ceiling;
2. speed: the classic step and clipgan's eager levers in one process, one step of each in
   turn per round (CUDA events around each step), warm-up rounds excluded;
3. flops: one step of each lever under torch.utils.flop_counter.FlopCounterMode, giving
   utilisation against the device's dense bf16 peak (a table by name) and the matmul;
4. memory: torch.cuda.max_memory_allocated of one step at 512, 1024 and 1024 with low memory;
5. largest: the largest side that fits under a 16 GiB allocator cap, default and low memory;
6. compile and cuda_graphs: each in a child process under a time cap, with an eager default
   reference timed in the same child (a compile that hangs or crashes loses only itself).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

from clipgan.bench import speed
from clipgan.bench.gpu_report import markdown

# dense bf16 tensor-core peak by device name (vendor datasheets, without sparsity); first match wins
BF16_PEAK_TFLOPS = (("H200", 989.5), ("H100 PCIe", 756.0), ("H100", 989.5), ("GH200", 989.5),
                    ("A100", 312.0), ("L40S", 362.05), ("A10G", 70.0), ("RTX 4090", 165.2))
GIB = 2**30

# name -> (ClipganRunner keyword arguments, None for the classic step; what it measures)
LEVERS = {
    "classic": (None, "nerdyrodent generate.py defaults (fp32 decoder, fp16 CLIP on CUDA), checkin decode amortized"),
    "default": ({}, "clipgan iterate(), Settings defaults (precision auto: bf16 autocast on CUDA)"),
    "fp32": ({"dtype": "fp32"}, "default without autocast: the bf16 lever is fp32 / default"),
    "channels_last": ({"channels_last": True}, "default + channels_last decoder and CLIP"),
    "classic_cutouts": ({"pooled": True}, "default with the classic pooled cutouts: the batched-cutouts lever"),
    "low_memory": ({"low_memory": True}, "default + decoder gradient checkpointing"),
    "compile": ({"compile": True}, "default + torch.compile (mode default) of decoder and CLIP tower"),
    "cuda_graphs": ({"cuda_graphs": True}, "default + torch.compile mode reduce-overhead (CUDA graphs)"),
    "cuda_graphs_fp32": ({"cuda_graphs": True, "dtype": "fp32"}, "cuda_graphs without autocast"),
    "cuda_graphs_pooled": ({"cuda_graphs": True, "pooled": True}, "cuda_graphs with the classic pooled cutouts"),
}
EAGER = ("classic", "default", "fp32", "channels_last", "classic_cutouts", "low_memory")
COMPILED = ("compile", "cuda_graphs", "cuda_graphs_fp32", "cuda_graphs_pooled")


# ---- the report: written after every measurement ----------------------------------------------

class Report:
    def __init__(self, out: Path, data: dict):
        self.out, self.data = out, data
        self.t0 = time.monotonic()

    def save(self) -> None:
        self.data["elapsed_s"] = round(time.monotonic() - self.t0, 1)
        for name, text in (("gpu.json", json.dumps(self.data, indent=1, default=str)), ("gpu.md", markdown(self.data))):
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=self.out)
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.replace(tmp, self.out / name)

    def guard(self, where: list | dict, key, fn, *args):
        """where[key] = fn(*args), or {"error": ...}; saved either way."""
        try:
            value = fn(*args)
        except Exception as e:  # one failure never loses the rest
            value = {"error": error_text(e)}
            log(f"{key}: {value['error']}")
        where[key] = value
        self.save()
        return value

    def remaining(self, budget: float) -> float:
        return budget - (time.monotonic() - self.t0)


def error_text(e: BaseException) -> str:
    tb = traceback.extract_tb(e.__traceback__)
    where = f" at {Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else ""
    lines = [line for line in str(e).strip().splitlines() if line.strip()]
    return f"{type(e).__name__}: {lines[0][:300] if lines else ''}{where}"


def log(message: str) -> None:
    print(f"[gpu-bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---- measuring -------------------------------------------------------------------------------

class Clock:
    """Seconds of device work: CUDA events on CUDA (synchronized), perf_counter elsewhere."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"

    def __call__(self, fn):
        if self.cuda:
            torch.cuda.synchronize()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            value = fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1000, value
        t0 = time.perf_counter()
        value = fn()
        return time.perf_counter() - t0, value


def machine(device: torch.device) -> dict:
    info = speed.machine()
    info["device"] = str(device)
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        info.update(gpu=p.name, capability=f"{p.major}.{p.minor}", sms=p.multi_processor_count,
                    gpu_memory_gib=round(p.total_memory / GIB, 1), cuda=torch.version.cuda,
                    cudnn=torch.backends.cudnn.version(), cudnn_tf32=torch.backends.cudnn.allow_tf32,
                    matmul_precision=torch.get_float32_matmul_precision())
        with contextlib.suppress(ImportError):
            import triton

            info["triton"] = triton.__version__
    return info


def bf16_peak(device: torch.device) -> dict:
    if device.type != "cuda":
        return {"tflops": None, "source": "no table entry: not a CUDA device"}
    name = torch.cuda.get_device_name(device)
    for key, tflops in BF16_PEAK_TFLOPS:
        if key in name:
            return {"tflops": tflops, "source": f"datasheet dense bf16, table entry {key!r} for {name!r}"}
    return {"tflops": None, "source": f"no table entry for {name!r}"}


def matmul(device: torch.device, n: int) -> dict:
    """Median TFLOP/s of an n^3 matrix product on random data (bf16 on CUDA, fp32 elsewhere)."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    clock = Clock(device)
    for _ in range(3):
        a @ b
    times = [clock(lambda: a @ b)[0] for _ in range(10)]
    t = statistics.median(times)
    return {"n": n, "dtype": str(dtype).removeprefix("torch."), "median_ms": t * 1e3, "tflops": 2 * n**3 / t / 1e12,
            "times_ms": [x * 1e3 for x in times]}


TINY_VQGAN = dict(double_z=False, z_channels=8, resolution=32, in_channels=3, out_ch=3, ch=32,
                  ch_mult=[1, 1], num_res_blocks=1, attn_resolutions=[16], dropout=0.0)
TINY_CLIP = {"embed_dim": 32, "quick_gelu": True,
             "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "patch_size": 16},
             "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 1}}


def build_models(device: torch.device, tiny: bool):
    """The real architectures (speed.build_models), or tiny ones of the same kinds for a smoke run."""
    if not tiny:
        return speed.build_models(device)
    from clipgan.models.clip import load_clip
    from clipgan.models.vqgan import VQGAN

    torch.manual_seed(0)
    vqgan = VQGAN(dict(TINY_VQGAN), n_embed=64, embed_dim=8).float().eval().requires_grad_(False).to(device)
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "gpu-bench-tiny-clip.json"
        config.write_text(json.dumps(TINY_CLIP))
        perceptor = load_clip(f"{config}:random", device=device)
    return vqgan, perceptor


def make(name: str, models, z, target, cutn: int, device):
    vqgan, perceptor = models
    spec = LEVERS[name][0]
    if spec is None:
        return speed.ClassicRunner(vqgan, perceptor, target, z, cutn)
    from clipgan.pipeline import resolve_dtype

    return speed.ClipganRunner(vqgan, perceptor, target, z, cutn, default_dtype=resolve_dtype("auto", device), **spec)


def close(runner) -> None:
    steps = getattr(runner, "steps", None)
    if steps is not None:
        steps.close()  # puts modules back (low memory, compiled forwards)


def free(device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def timed_rounds(runners: dict, rows: dict, report: Report, clock: Clock, warmup: int, steps: int, deadline: float):
    """One step of every runner per round, order reversed every other round; events around each step."""
    times = {name: [] for name in runners}
    losses = {name: [] for name in runners}
    for r in range(warmup + steps):
        if r > warmup and time.monotonic() > deadline:
            break
        this_round = {}
        for name in list(runners if r % 2 == 0 else reversed(runners)):
            torch.manual_seed(1000 + r)  # the same cutouts for every runner in a round
            try:
                t, loss = clock(runners[name].step)
            except Exception as e:
                rows[name] = {"error": error_text(e)}
                log(f"{name}: {rows[name]['error']}")
                close(runners.pop(name))
                continue
            losses[name].append(loss)
            this_round[name] = t
            if r >= warmup:
                times[name].append(t)
        log(f"round {r + 1}/{warmup + steps}{' (warm-up)' if r < warmup else ''}: "
            + ", ".join(f"{n} {t:.4f} s" for n, t in this_round.items()))
        for name in runners:
            row = rows.setdefault(name, {"what": LEVERS[name][1]})
            row["losses"] = losses[name]
            if times[name]:
                s = statistics.median(times[name])
                row.update(s_per_step=s, steps_per_s=1 / s, per_step_s=times[name])
        report.save()
    return times


def ratios(rows: dict, times: dict, ref: str, key: str) -> None:
    """Median over rounds of lever/ref in the same round."""
    if not times.get(ref):
        return
    for name, t in times.items():
        if t and name in rows and "error" not in rows[name]:
            n = min(len(t), len(times[ref]))
            rows[name][key] = statistics.median(a / b for a, b in zip(t[-n:], times[ref][-n:]))


def loss_agreement(rows: dict, ref: str = "default") -> None:
    """Round 0 runs every lever on the same z and the same cutouts: its loss should agree."""
    if ref not in rows or not rows[ref].get("losses"):
        return
    l0 = rows[ref]["losses"][0]
    for name, row in rows.items():
        if row.get("losses") and name != "classic":
            row["loss0_rel_diff_vs_default"] = abs(row["losses"][0] - l0) / max(abs(l0), 1e-12)


def run_speed(args, device, models, report: Report) -> None:
    section = report.data["speed"]
    rows = section["rows"]
    z = speed.initial_z(models[0], args.size, device)
    target = models[1].encode_text([speed.PROMPT])
    runners = {}
    for name in args.levers:
        if name in COMPILED:
            continue
        torch.manual_seed(1)
        try:
            runners[name] = make(name, models, z, target, args.cutn, device)
        except Exception as e:
            rows[name] = {"error": error_text(e)}
    clock = Clock(device)
    deadline = report.t0 + args.budget * 0.35
    times = timed_rounds(runners, rows, report, clock, args.warmup, args.steps, deadline)
    for name, runner in runners.items():  # the classic saves a frame every 50 steps with an extra decode
        if name == "classic" and "error" not in rows.get(name, {}):
            from clipgan.bench.classic import checkins_per_step

            t, _ = clock(runner.checkin)
            rows[name]["checkin_s"] = t
            rows[name]["step_only_s"] = rows[name]["s_per_step"]
            times[name] = [s + t * checkins_per_step() for s in times[name]]
            rows[name]["s_per_step"] = statistics.median(times[name])
            rows[name]["steps_per_s"] = 1 / rows[name]["s_per_step"]
    ratios(rows, times, "classic", "x_classic")
    ratios(rows, times, "default", "x_default")
    loss_agreement(rows)
    report.save()
    report.guard(section, "cutouts_alone", cutouts_alone, models, args, device)
    if "flops" in args.phases:
        for name, runner in runners.items():
            report.guard(rows[name], "flops_per_step", count_flops, runner)
            utilisation(rows[name], report.data)
    for runner in runners.values():
        close(runner)
    runners.clear()
    free(device)


def cutouts_alone(models, args, device) -> dict:
    """Seconds for the cutouts alone, forward and backward, on an image of the run's size:
    clipgan's (one roi_align for every crop, then kornia) against the classic pooled ones."""
    from clipgan.bench.classic import ClassicCutouts
    from clipgan.config import Settings
    from clipgan.cutouts import CutoutConfig, Cutouts

    size = models[1].input_size
    kinds = {"default": Cutouts(size, CutoutConfig(cutn=args.cutn, cut_pow=Settings.cut_pow, augments=Settings.augments)),
             "classic": ClassicCutouts(size, args.cutn)}
    clock, out = Clock(device), {}
    image = torch.rand(1, 3, args.size, args.size, device=device, requires_grad=True)
    for name, cut in kinds.items():
        def once():
            cut(image).square().mean().backward()

        for _ in range(2):
            once()
        out[f"{name}_s"] = statistics.median(clock(once)[0] for _ in range(5))
    out["default_x_classic"] = out["default_s"] / out["classic_s"]
    return out


def count_flops(runner) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(7)
    with FlopCounterMode(display=False) as counter:
        runner.step()
    return float(counter.get_total_flops())


def utilisation(row: dict, data: dict) -> None:
    flops, s = row.get("flops_per_step"), row.get("step_only_s", row.get("s_per_step"))
    if not isinstance(flops, float) or not s:
        return
    row["tflops_achieved"] = flops / s / 1e12
    peak = data["peak"].get("tflops")
    if peak:
        row["util_of_peak"] = row["tflops_achieved"] / peak
    mm = data.get("matmul", {}).get("tflops")
    if mm and data["matmul"].get("dtype") == "bfloat16":
        row["util_of_matmul"] = row["tflops_achieved"] / mm


def memory_row(args, device, models, size: int, low_memory: bool, lever: str = "default") -> dict:
    """Peak allocator memory of one step (weights included) and the bytes autograd saved."""
    vqgan, perceptor = models
    free(device)
    z = speed.initial_z(vqgan, size, device)
    target = perceptor.encode_text([speed.PROMPT])
    spec = {"low_memory": True} if low_memory else {}
    from clipgan.pipeline import resolve_dtype

    torch.manual_seed(1)
    if lever == "classic":  # on CUDA it holds its own fp16 CLIP (counted in models_mib)
        runner = speed.ClassicRunner(vqgan, perceptor, target, z, args.cutn)
    else:  # alone here: no copies of the models (they would count as memory the step needs)
        runner = speed.ClipganRunner(vqgan, perceptor, target, z, args.cutn, copy_models=False,
                                     default_dtype=resolve_dtype("auto", device), **spec)
    weights = {p.untyped_storage().data_ptr() for m in runner.models for p in list(m.parameters()) + list(m.buffers())}
    counter = speed.SavedBytes(weights)
    row = {"size": size, "low_memory": low_memory, "lever": lever, "cutn": args.cutn}
    if lever != "classic":  # what clipgan's pre-run check predicts, to compare with the peak
        from clipgan.memory import estimate

        est = estimate(vqgan, [perceptor], (size, size), args.cutn, dtype=resolve_dtype("auto", device), low_memory=low_memory)
        row["estimate_step_mib"] = est.total / 2**20
    try:
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
        t0 = time.perf_counter()
        with torch.autograd.graph.saved_tensors_hooks(counter.pack, lambda t: t):
            runner.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated(device)
            row.update(peak_allocated_mib=peak / 2**20, peak_reserved_mib=torch.cuda.max_memory_reserved(device) / 2**20,
                       step_mib=(peak - base) / 2**20, models_mib=base / 2**20,
                       fits_cap=torch.cuda.max_memory_reserved(device) <= args.cap_gib * GIB)
        else:
            row["peak_allocated_mib"] = None
            row["peak_note"] = "allocator peak is CUDA only; saved_mib is exact everywhere"
        row.update(saved_mib=counter.mib, seconds=time.perf_counter() - t0)
    finally:
        close(runner)
        del runner
        free(device)
    return row


def run_memory(args, device, models, report: Report) -> None:
    rows = report.data["memory"]["rows"]
    for size, low, lever in args.memory_sizes:
        label = f"{lever} {size}" + (" low_memory" if low else "")
        report.guard(rows, label, memory_row, args, device, models, size, low, lever)


def fits(args, device, models, size: int, low_memory: bool) -> dict:
    from clipgan.memory import out_of_memory_message

    before = torch.cuda.memory_allocated(device) / 2**20 if device.type == "cuda" else None
    try:
        row = memory_row(args, device, models, size, low_memory)
    except (RuntimeError, MemoryError) as e:  # torch.OutOfMemoryError, or cuDNN/cuBLAS failing to allocate
        if out_of_memory_message(e) is None:
            raise
        row = {"size": size, "ok": False, "oom": error_text(e)}  # an answer, not an error of the bench
    else:
        row["ok"] = bool(row.get("fits_cap"))
    # a failed step's tensors live on in traceback cycles until collected: the next try would inherit them
    free(device)
    row["allocated_before_mib"] = before
    return row


def largest(args, device, models, low_memory: bool, deadline: float) -> dict:
    """Largest multiple of `step` whose one step fits under the cap, climbing from --size.

    Climbing, not bisecting: a step that ran out of memory leaves tensors behind that gc does not
    free (seen on an H200: 13.7 GiB still allocated after a failed 1024 step), so every try after
    the first failure would measure a polluted allocator. The climb stops at the first failure; run
    each search in its own process (--largest-kinds) so one search cannot pollute the other."""
    if device.type != "cuda":
        return {"skipped": "needs CUDA: the cap is the CUDA allocator's (set_per_process_memory_fraction)"}
    step = 128
    if device.index is None:  # the allocator cap wants an index
        device = torch.device("cuda", torch.cuda.current_device())
    total = torch.cuda.get_device_properties(device).total_memory
    torch.cuda.set_per_process_memory_fraction(min(1.0, args.cap_gib * GIB / total), device)
    tried, lo, hi, size = [], None, None, args.size
    try:
        while size <= 8192 and time.monotonic() < deadline:
            r = fits(args, device, models, size, low_memory)
            tried.append(r)
            if not r["ok"]:
                hi = size
                break
            lo, size = size, size + step
        return {"cap_gib": args.cap_gib, "largest": lo, "first_failing": hi, "step": step,
                "complete": hi is not None and lo is not None, "tried": tried,
                "note": None if lo is not None else f"{args.size} px did not fit; smaller sizes not searched"}
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, device)
        free(device)


def run_largest(args, device, models, report: Report) -> None:
    section = report.data["largest"]
    for name, low in (("default", False), ("low_memory", True)):
        if name not in args.largest_kinds:
            continue
        deadline = min(time.monotonic() + 75, report.t0 + args.budget * 0.8)
        report.guard(section, name, largest, args, device, models, low, deadline)


# ---- compiled levers: one child process each -------------------------------------------------

def run_compiled(args, device, report: Report) -> None:
    rows = report.data["compiled"]["rows"]
    for name in COMPILED:
        if name not in args.levers:
            continue
        if device.type != "cuda" and not args.compile_on_cpu:
            rows[name] = {"skipped": "CUDA only in this bench (compiling ViT-B-32 + the decoder on a CPU takes "
                                     "minutes); pass --compile-on-cpu to try"}
            report.save()
            continue
        left = report.remaining(args.budget) - 5
        if left < 30:
            rows[name] = {"skipped": f"budget: {left:.0f} s left"}
            report.save()
            continue
        report.guard(rows, name, child, args, name, min(args.compile_cap, left))
        row = rows[name]
        speed_rows = report.data["speed"]["rows"]
        if "x_default" in row and "x_classic" in speed_rows.get("default", {}):
            row["x_classic"] = row["x_default"] * speed_rows["default"]["x_classic"]
        if "flops_per_step" in speed_rows.get("default", {}) and "s_per_step" in row:
            row["flops_per_step"] = speed_rows["default"]["flops_per_step"]
            utilisation(row, report.data)
        report.save()


def child(args, name: str, timeout: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "child.json"
        cmd = [sys.executable, "-m", "clipgan.bench.gpu", "--child", name, "--child-json", str(path),
               "--size", str(args.size), "--cutn", str(args.cutn), "--steps", str(args.steps),
               "--warmup", str(args.warmup), "--device", args.device] + (["--tiny-models"] if args.tiny_models else [])
        log(f"{name}: child process, cap {timeout:.0f} s")
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
            err = out.stderr or ""
            status = None if out.returncode == 0 else f"child exited {out.returncode}: {err.strip()[-600:]}"
        except subprocess.TimeoutExpired as e:
            err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
            status = f"stopped at the cap of {timeout:.0f} s"
        if err.strip():  # the child's own log (compile warnings too) into this run's log
            sys.stderr.write(f"--- {name} child stderr (last 4000 characters) ---\n{err[-4000:]}\n---\n")
        try:
            row = json.loads(path.read_text()) if path.exists() else {}
        except ValueError as e:
            row = {"child_json": error_text(e)}
        if status:
            row["error" if "s_per_step" not in row else "note"] = status
        return row


def child_main(args, device) -> None:
    """In a fresh process: eager default and one compiled lever, interleaved; partial JSON after each round."""
    name, path = args.child, Path(args.child_json)
    row: dict = {"what": LEVERS[name][1]}

    def save():  # atomic: the parent may kill this process at any moment
        with contextlib.suppress(Exception):
            from torch._dynamo.utils import counters

            row["dynamo"] = {k: dict(counters[k]) for k in ("stats", "graph_break", "recompiles") if k in counters}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(row, default=str))
        os.replace(tmp, path)

    models = build_models(device, args.tiny_models)
    z = speed.initial_z(models[0], args.size, device)
    target = models[1].encode_text([speed.PROMPT])
    clock = Clock(device)
    torch.manual_seed(1)
    ref = make("default", models, z, target, args.cutn, device)
    torch.manual_seed(1)
    runner = make(name, models, z, target, args.cutn, device)
    log(f"{name}: models built, compiling on the first step")
    torch.manual_seed(1000)
    eager_first, loss_ref = clock(ref.step)
    torch.manual_seed(1000)
    with _notices() as notes:
        first, loss = clock(runner.step)  # compiles forward and backward
    row.update(first_step_s=first, eager_first_step_s=eager_first, compile_s=first - eager_first,
               loss0=loss, loss0_default=loss_ref, loss0_rel_diff_vs_default=abs(loss - loss_ref) / max(abs(loss_ref), 1e-12),
               notices=notes)
    save()
    times = {"default": [], name: []}
    for r in range(1, args.warmup + args.steps + 1):
        for n, rn in ((("default", ref), (name, runner)) if r % 2 else ((name, runner), ("default", ref))):
            torch.manual_seed(1000 + r)
            with _notices() as more:
                t, _ = clock(rn.step)
            row["notices"] = row["notices"] + more
            if r > args.warmup:
                times[n].append(t)
        if times[name]:
            row.update(s_per_step=statistics.median(times[name]), steps_per_s=1 / statistics.median(times[name]),
                       per_step_s=times[name], default_s_per_step=statistics.median(times["default"]),
                       x_default=statistics.median(a / b for a, b in zip(times[name], times["default"])))
            save()
    close(runner)
    close(ref)


@contextlib.contextmanager
def _notices():
    """ClipganNotice warnings (a compile fallback) as strings."""
    import warnings

    from clipgan.errors import ClipganNotice

    seen: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ClipganNotice)
        yield seen
    seen.extend(str(w.message) for w in caught if issubclass(w.category, ClipganNotice))


# ---- targets and the run ----------------------------------------------------------------------

def targets(data: dict) -> dict:
    rows, out = data["speed"]["rows"], {}
    best = {**rows, **data["compiled"]["rows"]}
    x = rows.get("default", {}).get("x_classic")
    out["default_x_classic_max_0.33"] = {"value": x, "met": x is not None and x <= 0.33}
    utils = {n: r["util_of_peak"] for n, r in best.items() if isinstance(r, dict) and "util_of_peak" in r}
    if utils:
        n = max(utils, key=utils.get)
        out["util_of_bf16_peak_min_0.25"] = {"value": utils[n], "lever": n, "met": utils[n] >= 0.25}
    mem = data["memory"]["rows"].get("default 1024 low_memory", {})
    if "peak_reserved_mib" in mem:
        out["1024_low_memory_within_16GiB"] = {"value_mib": mem["peak_reserved_mib"], "met": mem["fits_cap"]}
    sps = {n: r["steps_per_s"] for n, r in best.items() if isinstance(r, dict) and "steps_per_s" in r}
    if sps:
        n = max(sps, key=sps.get)
        out["moonshot_100_steps_per_s"] = {"value": sps[n], "lever": n, "met": sps[n] >= 100}
    return out


PHASES = ("matmul", "speed", "flops", "memory", "largest", "compiled")


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m clipgan.bench.gpu", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="bench-gpu", help="folder for gpu.json and gpu.md")
    p.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--cutn", type=int, default=32)
    p.add_argument("--steps", type=int, default=10, help="measured rounds")
    p.add_argument("--warmup", type=int, default=3, help="unmeasured rounds first")
    p.add_argument("--matmul-n", type=int, default=8192)
    p.add_argument("--memory-sizes", default="default:512,default:1024,default:1024:low,classic:512",
                   help="LEVER:SIZE[:low], comma-separated")
    p.add_argument("--cap-gib", type=float, default=16.0, help="memory cap for the largest-size search")
    p.add_argument("--largest-kinds", default="default,low_memory",
                   help="which largest-size searches (default, low_memory); one per process gives clean figures")
    p.add_argument("--budget", type=float, default=330.0, help="seconds for the whole run; later phases shrink to fit")
    p.add_argument("--compile-cap", type=float, default=150.0, help="seconds at most per compiled lever (child process)")
    p.add_argument("--levers", default=",".join(LEVERS), help=f"from: {', '.join(LEVERS)}")
    p.add_argument("--phases", default=",".join(PHASES), help=f"from: {', '.join(PHASES)}")
    p.add_argument("--compile-on-cpu", action="store_true", help="run the compiled levers on a CPU too")
    p.add_argument("--tiny", action="store_true", help="32x32, cutn 2, one round, small matmul: a CPU smoke run")
    p.add_argument("--tiny-models", action="store_true", help="tiny VQGAN and CLIP instead of the real architectures (tests)")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--child-json", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.tiny:
        args.size, args.cutn, args.steps, args.warmup, args.matmul_n = 32, 2, 1, 0, 256
        args.memory_sizes = "default:32,default:64,default:64:low"
    args.levers = tuple(v for v in args.levers.split(",") if v)
    args.phases = tuple(v for v in args.phases.split(",") if v)
    args.largest_kinds = tuple(v for v in args.largest_kinds.split(",") if v)
    for given, known, what in ((args.levers, LEVERS, "lever"), (args.phases, PHASES, "phase")):
        bad = [v for v in given if v not in known]
        if bad:
            p.error(f"unknown {what}(s) {', '.join(bad)}")
    if args.size % 16 or args.size < 16:
        p.error("--size must be a positive multiple of 16")
    try:
        args.memory_sizes = [(int(parts[1]), len(parts) > 2 and parts[2] == "low", parts[0])
                             for parts in (item.split(":") for item in args.memory_sizes.split(",") if item)]
    except (ValueError, IndexError):
        p.error("--memory-sizes takes LEVER:SIZE[:low] items")
    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    return args


def main(argv=None) -> None:
    import warnings

    args = parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning, module="kornia")
    device = torch.device(args.device)
    if args.child:
        child_main(args, device)
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = {"schema": 1, "command": " ".join(["python -m clipgan.bench.gpu", *(sys.argv[1:] if argv is None else argv)]),
            "settings": {k: v for k, v in vars(args).items() if not k.startswith("child")},
            "machine": {}, "peak": {}, "matmul": {}, "speed": {"rows": {}}, "compiled": {"rows": {}},
            "memory": {"rows": {}}, "largest": {}, "targets": {}, "finished": False}
    report = Report(out, data)
    report.guard(data, "machine", machine, device)
    report.guard(data, "peak", bf16_peak, device)
    log(f"{data['machine'].get('gpu', data['machine'].get('cpu'))}: size {args.size}, cutn {args.cutn}, out {out}")
    if "matmul" in args.phases:
        report.guard(data, "matmul", matmul, device, args.matmul_n)
        log(f"matmul: {data['matmul']}")
    models = None
    if {"speed", "memory", "largest"} & set(args.phases):
        try:
            t0 = time.perf_counter()
            models = build_models(device, args.tiny_models)
            data["models"] = {"vqgan": "tiny taming VQGAN" if args.tiny_models else "f16-16384 architecture, random weights",
                              "clip": ("tiny open_clip ViT" if args.tiny_models else speed.CLIP_ARCH) + ", random weights",
                              "build_s": time.perf_counter() - t0}
        except Exception as e:
            data["models"] = {"error": error_text(e)}
        report.save()
    if models is not None:
        if "speed" in args.phases:
            report.guard(data["speed"], "status", lambda: run_speed(args, device, models, report) or "done")
            log("speed: done")
        if "memory" in args.phases:
            report.guard(data["memory"], "status", lambda: run_memory(args, device, models, report) or "done")
            log("memory: done")
        if "largest" in args.phases:
            report.guard(data["largest"], "status", lambda: run_largest(args, device, models, report) or "done")
            log("largest: done")
        del models
        free(device)
    if "compiled" in args.phases:
        report.guard(data["compiled"], "status", lambda: run_compiled(args, device, report) or "done")
    report.guard(data, "targets", targets, data)
    data["finished"] = True
    report.save()
    print(markdown(data))


if __name__ == "__main__":
    main()
