"""Many recipes on the bundled-model bench at once: one picture per job, spread over worker processes.

    python -m clipgan.toyworld.sweep --variant "C1: contrast_weight=1" --variant "lr: lr=0.2" \\
        [--base "precision=fp32"] [--seeds 0,1] [--set main] [--cpu-workers 2] [--gpu-workers 0] \\
        [--seconds 600] --json sweep.json

Each job is one (seed, prompt) of `bench.prompts`, seeded as the bench seeds it, drawn by one
worker with every recipe in turn: the recipes are compared on the same pictures and the same
arithmetic (CUDA's pictures differ from the CPU's), and a finished recipe gives the bench's figures.
When the deadline (--seconds) stops handing jobs out, every recipe has the same prompts (but a job
the grace after the deadline cuts short); the report counts what finished. It is written after
every picture, so a run cut short keeps its figures.
"default" (clipgan's defaults plus --base) is always a recipe. Made for a lent GPU machine's few
minutes (--gpu-workers: processes on CUDA, --cpu-workers: one-thread processes beside them).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import time

from clipgan.bench.right import parse_variant
from clipgan.toyworld import bench


def _worker(device: str, recipes: dict[str, dict], jobs, results, deadline: float) -> None:
    import torch

    torch.set_num_threads(1)
    from clipgan.config import Settings
    from clipgan.run import load_models_for, model_key
    from clipgan.toyworld.classifier import bundled

    classifier = bundled()
    loaded = {}  # model_key -> models: recipes that name the same models share them
    while time.time() < deadline:
        try:
            which, n, seed, k = jobs.get_nowait()
        except queue.Empty:
            return
        triple = bench.prompts(n, which)[k]
        for name, changes in recipes.items():
            t0 = time.perf_counter()
            try:
                s = Settings().replace(device=device, **changes)
                key = model_key(s)
                if key not in loaded:
                    loaded[key] = load_models_for(s)
                row, _ = bench.draw(triple, bench.first_seed(seed, which) + k, loaded[key], s, classifier)
                row.update(shape=triple[1], seconds=round(time.perf_counter() - t0, 2))
            except Exception as e:  # noqa: BLE001  a recipe that fails is reported, the others go on
                row = {"error": f"{type(e).__name__}: {e}"[:300]}
            results.put({"recipe": name, "seed": seed, "k": k, "device": device, "worker": os.getpid(), **row})


def summarize(rows: list[dict], recipes: list[str]) -> dict:
    """Per recipe: pictures finished, hit rates and right shapes per shape (e.g. "3/5")."""
    out = {}
    for name in recipes:
        done = [r for r in rows if r["recipe"] == name and "error" not in r]
        failed = [r["error"] for r in rows if r["recipe"] == name and "error" in r]
        per_shape: dict[str, list[int]] = {}
        for r in done:
            hit_total = per_shape.setdefault(r["shape"], [0, 0])
            hit_total[0] += r["shape_hit"]
            hit_total[1] += 1
        rate = (lambda key: round(sum(r[key] for r in done) / len(done), 3)) if done else (lambda key: None)
        out[name] = {"pictures": len(done), "shape_accuracy": rate("shape_hit"), "fg_color_hit_rate": rate("fg_hit"),
                     "bg_color_hit_rate": rate("bg_hit"),
                     "per_shape": {s: f"{a}/{b}" for s, (a, b) in sorted(per_shape.items())},
                     "errors": failed[:3], "error_count": len(failed)}
    return out


def run(variants: dict[str, dict], base: dict | None = None, seeds=(0,), which: str = "main", n: int = 24,
        cpu_workers: int = 1, gpu_workers: int = 0, seconds: float = 600, grace: float = 120,
        json_path: str | None = None) -> dict:
    import multiprocessing as mp

    base = dict(base or {})
    recipes = {"default": dict(base), **{name: {**base, **changes} for name, changes in variants.items()}}
    ctx = mp.get_context("spawn")  # CUDA cannot be used in a forked child
    jobs, results = ctx.Queue(), ctx.Queue()
    jobs.cancel_join_thread()  # jobs left at the deadline are dropped: exiting must not wait to flush them
    total = 0  # pictures: one per recipe and prompt (the report's "jobs")
    for seed in seeds:
        for k in range(len(bench.prompts(n, which))):
            jobs.put((which, n, seed, k))
            total += len(recipes)
    start = time.time()
    deadline = start + seconds
    workers = [ctx.Process(target=_worker, args=(device, recipes, jobs, results, deadline), daemon=True)
               for device in ["cuda"] * gpu_workers + ["cpu"] * cpu_workers]
    for w in workers:
        w.start()
    rows: list[dict] = []

    def report() -> dict:
        return {"set": which, "seeds": list(seeds), "prompts": n, "base": base, "recipes": recipes,
                "jobs": total, "elapsed_s": round(time.time() - start, 1),
                "summary": summarize(rows, list(recipes)), "rows": rows}

    while len(rows) < total and time.time() < deadline + grace:
        try:
            rows.append(results.get(timeout=1))
        except queue.Empty:
            if not any(w.is_alive() for w in workers) and results.empty():
                break
            continue
        print(f"{time.time() - start:6.0f} s  {len(rows)} of {total} pictures", flush=True)
        if json_path:
            _write(json_path, report())
    for w in workers:
        if w.is_alive():
            w.terminate()
    final = report()
    if json_path:
        _write(json_path, final)
    return final


def _write(path: str, report: dict) -> None:
    from clipgan.io import atomic_path

    with atomic_path(path) as tmp:  # a reader never sees half a report
        tmp.write_text(json.dumps(report, indent=1))


def seed_list(text: str) -> list[int]:
    """argparse type: "0,1,2" -> [0, 1, 2]."""
    try:
        return [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds are whole numbers separated by commas, got {text!r}") from None


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variant", action="append", default=[], type=parse_variant,
                   help='a recipe: "NAME: key=value, ..." (Settings fields changed from the defaults)')
    p.add_argument("--base", type=lambda t: parse_variant(f"base:{t}")[1], default={},
                   help='"key=value, ..." applied to every recipe, default included')
    p.add_argument("--seeds", type=seed_list, default=[0], help="comma-separated, e.g. 0,1")
    p.add_argument("--set", choices=bench.SETS, default="main", dest="which")
    p.add_argument("--n", type=bench.whole(1), default=24)
    p.add_argument("--cpu-workers", type=bench.whole(0), default=1)
    p.add_argument("--gpu-workers", type=bench.whole(0), default=0)
    p.add_argument("--seconds", type=float, default=600, help="no job starts after this")
    p.add_argument("--json")
    a = p.parse_args(argv)
    if a.cpu_workers + a.gpu_workers == 0:
        p.error("at least one worker in all (--cpu-workers, --gpu-workers)")
    if not a.seconds > 0:  # nan and 0 too
        p.error(f"--seconds must be more than 0, got {a.seconds}")
    from clipgan.config import Settings
    from clipgan.errors import ClipganError

    for name, changes in [("base", a.base), *a.variant]:
        try:
            Settings().replace(**{**a.base, **changes})  # a bad value is a one-line error before any worker starts
        except (ClipganError, TypeError) as e:
            p.error(f"{name}: {e}")
    report = run(dict(a.variant), a.base, a.seeds, a.which, a.n, a.cpu_workers, a.gpu_workers, a.seconds,
                 json_path=a.json)
    for name, s in report["summary"].items():
        if s["pictures"]:
            print(f"{name}: {s['pictures']} pictures  shapes {s['shape_accuracy']:.0%}  fg {s['fg_color_hit_rate']:.0%}  "
                  f"bg {s['bg_color_hit_rate']:.0%}  {s['per_shape']}")
        else:
            print(f"{name}: no pictures {s['errors']}")


if __name__ == "__main__":
    main()
