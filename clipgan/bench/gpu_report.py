"""The markdown of a clipgan.bench.gpu run (gpu.json -> gpu.md), for docs/benchmarks.md.

    python -m clipgan.bench.gpu_report gpu.json     # print it again from a saved JSON
"""

from __future__ import annotations

import json
import sys


def _f(x, fmt: str = ".3f", none: str = "-") -> str:
    return format(x, fmt) if isinstance(x, (int, float)) and not isinstance(x, bool) else none


def _pct(x) -> str:
    return f"{x * 100:.1f}%" if isinstance(x, (int, float)) else "-"


def _status(row: dict) -> str:
    if not isinstance(row, dict):
        return str(row)
    if "error" in row:
        return f"error: {row['error']}"
    if "skipped" in row:
        return f"skipped: {row['skipped']}"
    if row.get("notices"):  # a compiled lever that fell back to eager: its time is eager time
        return "FELL BACK: " + "; ".join(row["notices"])
    return row.get("note", "")


def speed_table(data: dict) -> list[str]:
    rows = {**data["speed"]["rows"], **data["compiled"]["rows"]}
    out = ["| lever | s/step | steps/s | x classic | x default | TFLOP/step | TFLOP/s | % bf16 peak | % matmul | loss0 vs default | what / status |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        if not isinstance(r, dict):
            continue
        flops = r.get("flops_per_step")
        extra = f" (compile {r['compile_s']:.0f} s)" if isinstance(r.get("compile_s"), (int, float)) else ""
        status = _status(r) or ""
        out.append(f"| {name} | {_f(r.get('s_per_step'), '.4f')} | {_f(r.get('steps_per_s'), '.1f')} | "
                   f"{_f(r.get('x_classic'), '.2f')} | {_f(r.get('x_default'), '.2f')} | "
                   f"{_f(flops / 1e12 if isinstance(flops, float) else None, '.2f')} | {_f(r.get('tflops_achieved'), '.1f')} | "
                   f"{_pct(r.get('util_of_peak'))} | {_pct(r.get('util_of_matmul'))} | "
                   f"{_f(r.get('loss0_rel_diff_vs_default'), '.1e')} | {r.get('what', '')}{extra} {status} |")
    return out


def memory_table(data: dict) -> list[str]:
    out = ["| run | size | peak allocated MiB | peak reserved MiB | step MiB | estimate MiB | autograd saved MiB | fits cap | status |",
           "|---|---|---|---|---|---|---|---|---|"]
    for label, r in data["memory"]["rows"].items():
        if not isinstance(r, dict):
            continue
        out.append(f"| {label} | {r.get('size', '-')} | {_f(r.get('peak_allocated_mib'), '.0f')} | "
                   f"{_f(r.get('peak_reserved_mib'), '.0f')} | {_f(r.get('step_mib'), '.0f')} | {_f(r.get('estimate_step_mib'), '.0f')} | "
                   f"{_f(r.get('saved_mib'), '.0f')} | {r.get('fits_cap', '-')} | {_status(r)} |")
    return out


def largest_lines(data: dict) -> list[str]:
    out = []
    for name in ("default", "low_memory"):
        r = data["largest"].get(name)
        if not isinstance(r, dict):
            continue
        if "largest" in r:
            tried = ", ".join(f"{t['size']}{'' if t.get('ok') else ' no'}" for t in r.get("tried", []))
            out.append(f"- {name}: largest square side under {r['cap_gib']:g} GiB: **{r['largest']}** px "
                       f"(first failing {r['first_failing']}; {'complete' if r['complete'] else 'incomplete'}; tried {tried})")
        else:
            out.append(f"- {name}: {_status(r)}")
    return out


def _errors(value, path: str = ""):
    """(where, message) of every error recorded anywhere in the run."""
    if isinstance(value, dict):
        if isinstance(value.get("error"), str):
            yield path or "run", value["error"]
        for k, v in value.items():
            if k != "error":
                yield from _errors(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _errors(v, f"{path}[{i}]")


def markdown(data: dict) -> str:
    m, s = data.get("machine", {}), data.get("settings", {})
    where = m.get("gpu") or m.get("cpu", "?")
    lines = [f"## GPU run: {where}", "",
             f"`{data.get('command', '')}` ({'finished' if data.get('finished') else 'UNFINISHED: partial results'}, "
             f"{data.get('elapsed_s', '?')} s)", "",
             f"- machine: {where}; torch {m.get('torch', '?')}, CUDA {m.get('cuda', '-')}, triton {m.get('triton', '-')}, "
             f"capability {m.get('capability', '-')}, {m.get('sms', '-')} SMs, {m.get('gpu_memory_gib', '-')} GiB; "
             f"{m.get('date', '')}",
             f"- {s.get('size')}x{s.get('size')}, cutn {s.get('cutn')}, {s.get('steps')} measured rounds after "
             f"{s.get('warmup')} warm-up; models: {data.get('models', {}).get('clip', '?')}, {data.get('models', {}).get('vqgan', '?')}",
             f"- bf16 dense peak: {_f(data.get('peak', {}).get('tflops'), '.1f')} TFLOP/s ({data.get('peak', {}).get('source', '')})"]
    mm = data.get("matmul", {})
    if "tflops" in mm:
        lines.append(f"- measured {mm['n']}^3 {mm['dtype']} matmul: {mm['tflops']:.1f} TFLOP/s ({mm['median_ms']:.2f} ms median)")
    elif mm:
        lines.append(f"- matmul: {_status(mm)}")
    lines += ["", "### Speed, lever by lever", ""] + speed_table(data)
    cut = data["speed"].get("cutouts_alone", {})
    if "default_s" in cut:
        lines += ["", f"Cutouts alone, forward and backward at {s.get('size')} px: clipgan's {cut['default_s'] * 1e3:.2f} ms, "
                      f"classic pooled {cut['classic_s'] * 1e3:.2f} ms ({cut['default_x_classic']:.2f}x)."]
    lines += ["", "### Peak memory (one step, weights included)", ""] + memory_table(data)
    lines += ["", "### Largest size", ""] + (largest_lines(data) or ["- not measured"])
    lines += ["", "### Targets", ""]
    for name, t in data.get("targets", {}).items():
        lines.append(f"- {name}: {'met' if t.get('met') else 'not met'} ({', '.join(f'{k} {v:.4g}' if isinstance(v, float) else f'{k} {v}' for k, v in t.items() if k != 'met')})")
    errors = [f"- {path}: {message}" for path, message in _errors(data)]
    if errors:
        lines += ["", "### Errors", ""] + errors
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(json.loads(open(sys.argv[1]).read())))
