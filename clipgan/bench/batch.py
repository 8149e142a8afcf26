"""Images per minute of `clipgan batch`: the same jobs on 1 local worker (in this process), on N
local worker processes, and on a local Ray with one actor per CPU slot (or GPU). Modes: local-1
(this process, torch's default threads), local-1x1 (the same on one thread), local-n, ray.

    python -m clipgan.bench.batch [--jobs 12] [--iterations 30] [--cutn 16] [--workers 2] [--json out.json]

Each mode runs the whole batch into a fresh folder with the bundled models, so its figure includes
what a user waits for: process or Ray start-up and one model load per worker ("end to end"). The
rate after the first finished job ("steady") leaves most of that out. Ratios are against 1 local
worker measured in the same run; the modes run one after another, so a change in machine load
between them shows up as noise (run it on an idle machine).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from clipgan.batch.jobs import make_jobs
from clipgan.batch.run import run_batch

COLORS = ["red", "blue", "green", "yellow", "purple", "orange"]
SHAPES = ["circle", "square", "star", "triangle"]


def jobs_text(count: int) -> str:
    """`count` different toy-world prompts, one a line."""
    lines = [f"a {COLORS[i % 6]} {SHAPES[i // 6 % 4]} on a {COLORS[(i + 3) % 6]} background" for i in range(count)]
    return "\n".join(lines) + "\n"


def measure(mode: str, jobs_file: Path, settings: dict, workers: int, folder: Path) -> dict:
    import torch

    jobs = make_jobs(jobs_file, settings)
    ends: list[float] = []
    threads = torch.get_num_threads()
    if mode == "local-1x1":  # one worker on one thread: workers against threads, on a loaded machine
        torch.set_num_threads(1)
    start = time.perf_counter()
    try:
        summary = run_batch(jobs, folder, workers=1 if mode.startswith("local-1") else workers,
                            device=settings["device"], ray=mode == "ray", on_record=lambda r: ends.append(time.perf_counter()))
    finally:
        torch.set_num_threads(threads)
    wall = time.perf_counter() - start
    if summary.failed:
        raise SystemExit(f"{mode}: {summary.failed} jobs failed; see {folder / 'manifest.jsonl'}")
    n = len(jobs)
    steady = (n - 1) / (ends[-1] - ends[0]) * 60 if n > 1 and ends[-1] > ends[0] else float("nan")
    return {"mode": mode, "jobs": n, "wall_s": wall, "first_s": ends[0] - start,
            "per_minute": n / wall * 60, "steady_per_minute": steady}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=12)
    p.add_argument("--iterations", type=int, default=30)
    p.add_argument("--cutn", type=int, default=16)
    p.add_argument("--workers", type=int, default=2, help="local processes (the Ray run takes every CPU slot or GPU)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--modes", default="local-1,local-1x1,local-n,ray")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)

    from clipgan.bench.speed import machine

    settings = {"iterations": args.iterations, "cutn": args.cutn, "device": args.device}
    rows = []
    with tempfile.TemporaryDirectory(prefix="clipgan-bench-batch-") as tmp:
        jobs_file = Path(tmp) / "jobs.txt"
        jobs_file.write_text(jobs_text(args.jobs))
        for mode in args.modes.split(","):
            row = measure(mode, jobs_file, settings, args.workers, Path(tmp) / mode)
            rows.append(row)
            print(f"{mode}: {row['per_minute']:.1f} images/min end to end", flush=True)
    ref = rows[0]["per_minute"]
    result = {"machine": machine(), "settings": {**settings, "jobs": args.jobs, "workers": args.workers},
              "rows": [{**r, "x_first": r["per_minute"] / ref} for r in rows]}
    print(f"\n{args.jobs} jobs, 64x64, {args.iterations} steps, cutn {args.cutn}, device {args.device}; "
          f"{result['machine']['cpu']}, {result['machine']['cores']} cores")
    print(f"{'mode':<10} {'img/min':>8} {'x first':>8} {'steady/min':>11} {'first (s)':>10} {'wall (s)':>9}")
    for r in result["rows"]:
        mode = r["mode"].replace("local-n", f"local-{args.workers}")
        print(f"{mode:<10} {r['per_minute']:>8.1f} {r['x_first']:>8.2f} {r['steady_per_minute']:>11.1f} "
              f"{r['first_s']:>10.1f} {r['wall_s']:>9.1f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
