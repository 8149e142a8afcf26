"""Speed and memory of one optimization step: the classic recipe vs clipgan, lever by lever.

    python -m clipgan.bench.speed [--size 256] [--cutn 32] [--steps 3] [--device cpu] [--json out.json]
    python -m clipgan.bench.speed --memory --size 512 --variants classic,default,low_memory

Models are the published architectures with random weights: the imagenet f16-16384 VQGAN
(taming modules, built by clipgan) and open_clip ViT-B-32 with QuickGELU (the layout of
OpenAI's ViT-B/32, which the classic script loads). Random weights cost the same FLOPs.

Time: every variant lives in this one process; each round runs one step of every variant
in turn (A B C A B C ...), so a change in machine load hits all of them alike. The ratio
of a variant to the classic step is taken per round, and the median over rounds reported.

Memory (--memory): each variant runs in a fresh subprocess, with glibc's mmap threshold
fixed at 128 KiB so that freed tensors go back to the OS at once. Reported: the process's
peak RSS (ru_maxrss), its RSS with models loaded before the first step, their difference
(what the step itself needed), and the bytes autograd saved for the backward pass
(counted with saved_tensors_hooks; deterministic, no allocator noise). On CUDA the peak is
torch.cuda.max_memory_allocated instead.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

import torch

F16_16384 = dict(double_z=False, z_channels=256, resolution=256, in_channels=3, out_ch=3, ch=128,
                 ch_mult=[1, 1, 2, 2, 4], num_res_blocks=2, attn_resolutions=[16], dropout=0.0)
CLIP_ARCH = "ViT-B-32-quickgelu"
PROMPT = "a lighthouse in fog, oil painting"

# name -> what differs from clipgan's defaults (None: the classic recipe)
VARIANTS: dict[str, dict | None] = {
    "classic": None,
    "default": {},
    "bf16": {"dtype": "bf16"},
    "channels_last": {"channels_last": True},
    "pooled_cutouts": {"pooled": True},
    "low_memory": {"low_memory": True},
    "fast": {"dtype": "bf16", "channels_last": True},
    "bf16_low_memory": {"dtype": "bf16", "low_memory": True},
    "compile": {"compile": True},
}
SPEED_DEFAULT = ("classic", "default", "bf16", "channels_last", "pooled_cutouts", "low_memory", "fast")
MEMORY_DEFAULT = ("classic", "default", "low_memory", "bf16_low_memory")
NOTES = {
    "classic": "nerdyrodent generate.py defaults; extra decode+PNG every 50 steps amortized (11 in 501 steps)",
    "classic_no_checkin": "classic step alone: the lever 'no extra decode to save a frame'",
    "default": "clipgan iterate(), Settings defaults (precision auto as resolve_dtype gives it now)",
    "bf16": "default + bf16 autocast",
    "channels_last": "default + channels_last decoder and CLIP",
    "pooled_cutouts": "default, but the classic pooled+augmented cutouts instead of clipgan's",
    "low_memory": "default + decoder gradient checkpointing",
    "fast": "default + bf16 autocast + channels_last",
    "bf16_low_memory": "default + bf16 autocast + decoder checkpointing",
    "compile": "default + torch.compile of the decoder and CLIP's image tower (compile time not counted: warm-up)",
}


def build_models(device: torch.device, seed: int = 0):
    """(vqgan, perceptor) with the published architectures and random weights, frozen."""
    import contextlib

    from clipgan.models.clip import load_clip
    from clipgan.models.vqgan import VQGAN

    torch.manual_seed(seed)
    with contextlib.redirect_stdout(io.StringIO()):
        vqgan = VQGAN(dict(F16_16384), n_embed=16384, embed_dim=256)
    with torch.no_grad():  # spread like a trained codebook
        vqgan.codebook.normal_()
    vqgan = vqgan.float().eval().requires_grad_(False).to(device)
    perceptor = load_clip(f"{CLIP_ARCH}:random", device=device)
    return vqgan, perceptor


def initial_z(vqgan, size: int, device, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    side = size // vqgan.factor
    idx = torch.randint(vqgan.codebook.shape[0], (side, side), generator=g).to(device)
    return vqgan.codebook[idx].movedim(-1, 0).unsqueeze(0).contiguous()


def _png(image: torch.Tensor) -> bytes:
    from PIL import Image

    array = image[0].float().mul(255).round().clamp(0, 255).byte().permute(1, 2, 0).cpu().numpy()
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


class ClassicRunner:
    """The classic step; `checkin()` is the extra decode + PNG it does every 50 steps."""

    def __init__(self, vqgan, perceptor, target, z, cutn):
        from clipgan.bench.classic import ClassicStep

        clip_model = perceptor.model
        if z.device.type == "cuda":  # ClassicStep makes CLIP fp16 in place there: not the shared one
            clip_model = copy.deepcopy(clip_model)
        self.state = ClassicStep(vqgan, clip_model, [(target, 1.0, float("-inf"))], z, cutn=cutn)
        self.models = (vqgan, clip_model)
        self.i = 0

    def step(self, checkin: bool = False) -> float:
        loss = self.state.step(self.i, checkin=checkin)
        self.i += 1
        return loss

    def checkin(self) -> None:
        self.state.checkin()


class ClipganRunner:
    """clipgan's iterate(), driven one step at a time, with one lever changed."""

    def __init__(self, vqgan, perceptor, target, z, cutn, *, dtype=None, channels_last=False, low_memory=False,
                 pooled=False, default_dtype=None, compile=False, cuda_graphs=False, copy_models=True):
        from clipgan.config import Settings
        from clipgan.cutouts import CutoutConfig, Cutouts
        from clipgan.image_models import VQGANImage
        from clipgan.losses.terms import Guide, Target, standard_terms
        from clipgan.optimize import iterate

        # these change the modules (memory format; forwards replaced while the run lives, and
        # runs interleave here): work on copies, so that no other variant is measured with them
        if copy_models and (channels_last or low_memory or compile or cuda_graphs):
            vqgan, perceptor = copy.deepcopy(vqgan), copy.deepcopy(perceptor)
        self.models = (vqgan, perceptor)
        if channels_last:
            vqgan = vqgan.to(memory_format=torch.channels_last)
            perceptor = perceptor.to(memory_format=torch.channels_last)
        if pooled:
            from clipgan.bench.classic import ClassicCutouts

            cutouts = ClassicCutouts(perceptor.input_size, cutn)
        else:
            cutouts = Cutouts(perceptor.input_size, CutoutConfig(cutn=cutn, cut_pow=Settings.cut_pow,
                                                                 augments=Settings.augments))
        guide = Guide(perceptor, cutouts, [Target("prompt", target, 1.0)])
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None, None: default_dtype}[dtype]
        self.dtype = dtype
        terms = standard_terms([guide], z, Settings.init_weight, Settings.tv_weight)
        self.steps = iterate(VQGANImage(vqgan, z), terms, steps=10**9, lr=Settings.lr, optimizer=Settings.optimizer,
                             dtype=dtype, low_memory=low_memory, compile=compile, cuda_graphs=cuda_graphs)
        self.last = None

    def step(self, checkin: bool = False) -> float:
        self.last = next(self.steps)
        return self.last.loss

    def checkin(self) -> None:
        _png(self.last.image)  # the step's own image: no second decode


def make_runner(name, vqgan, perceptor, target, z, cutn, device):
    from clipgan.pipeline import resolve_dtype

    spec = VARIANTS[name]
    if spec is None:
        return ClassicRunner(vqgan, perceptor, target, z, cutn)
    return ClipganRunner(vqgan, perceptor, target, z, cutn, default_dtype=resolve_dtype("auto", device), **spec)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Timings:
    step: list[float] = field(default_factory=list)
    checkin: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)


def run_speed(args, device) -> dict:
    from clipgan.bench.classic import checkins_per_step

    vqgan, perceptor = build_models(device)
    z = initial_z(vqgan, args.size, device)
    target = perceptor.encode_text([PROMPT])
    names = list(args.variants)
    runners = {}
    for name in names:
        torch.manual_seed(1)
        runners[name] = make_runner(name, vqgan, perceptor, target, z, args.cutn, device)
    timings = {name: Timings() for name in names}
    rounds = args.warmup + args.steps
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):  # A B C, C B A: no variant always first
            runner, t = runners[name], timings[name]
            torch.manual_seed(1000 + r)
            _sync(device)
            t0 = time.perf_counter()
            loss = runner.step()
            _sync(device)
            t1 = time.perf_counter()
            runner.checkin()
            _sync(device)
            t2 = time.perf_counter()
            if r >= args.warmup:
                t.step.append(t1 - t0)
                t.checkin.append(t2 - t1)
            t.losses.append(loss)
            if not args.quiet:
                print(f"  round {r + 1}/{rounds} {name:<16} {t1 - t0:7.2f} s/step  checkin {t2 - t1:5.2f} s  "
                      f"loss {loss:.4f}", file=sys.stderr, flush=True)
    per = checkins_per_step()
    rows = {}
    for name in names:
        t = timings[name]
        # every variant saves frames at the classic's rate; only the classic decodes again for it
        per_step = [s + c * per for s, c in zip(t.step, t.checkin)]
        rows[name] = {"s_per_step": statistics.median(per_step), "step_only": statistics.median(t.step),
                      "checkin_s": statistics.median(t.checkin), "loss": t.losses[-1], "losses": t.losses,
                      "per_round": per_step}
        if name == "classic":
            rows["classic_no_checkin"] = {"s_per_step": statistics.median(t.step), "step_only": statistics.median(t.step),
                                          "checkin_s": 0.0, "loss": t.losses[-1], "losses": t.losses, "per_round": t.step}
    if "classic" in rows:
        ref = rows["classic"]["per_round"]
        for row in rows.values():
            row["ratio"] = statistics.median(a / b for a, b in zip(row["per_round"], ref))
    return {"kind": "speed", "checkins_per_step": per, "rows": rows}


# ---- memory: one fresh process per variant ---------------------------------------------

def _rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return peak / 1024


def _current_rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class SavedBytes:
    """Bytes autograd keeps for the backward pass (unique storages, weights excluded)."""

    def __init__(self, exclude: set[int]):
        self.seen: dict[int, int] = {}
        self.exclude = exclude

    def pack(self, t):
        s = t.untyped_storage()
        ptr = s.data_ptr()
        if ptr not in self.exclude:
            self.seen[ptr] = s.nbytes()
        return t

    @property
    def mib(self) -> float:
        return sum(self.seen.values()) / 2**20


def memory_child(args, device) -> dict:
    name = args.memory_child
    vqgan, perceptor = build_models(device)
    z = initial_z(vqgan, args.size, device)
    target = perceptor.encode_text([PROMPT])
    torch.manual_seed(1)
    runner = make_runner(name, vqgan, perceptor, target, z, args.cutn, device)
    weights = {p.untyped_storage().data_ptr() for m in (vqgan, perceptor) for p in list(m.parameters()) + list(m.buffers())}
    counter = SavedBytes(weights)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device) / 2**20
    else:
        base = _current_rss_mib()
    t0 = time.perf_counter()
    with torch.autograd.graph.saved_tensors_hooks(counter.pack, lambda t: t):
        # step 0 of the classic run includes its checkin (decode while the graph is alive)
        loss = runner.step(checkin=name == "classic")
    seconds = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else _rss_mib()
    return {"variant": name, "size": args.size, "peak_mib": peak, "base_mib": base, "step_mib": peak - base,
            "saved_mib": counter.mib, "loss": loss, "seconds": seconds}


def run_memory(args, device) -> dict:
    rows = {}
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072", PYTHONWARNINGS="ignore")
    for name in args.variants:
        cmd = [sys.executable, "-m", "clipgan.bench.speed", "--memory-child", name, "--size", str(args.size),
               "--cutn", str(args.cutn), "--device", str(device)]
        out = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if out.returncode != 0:
            raise SystemExit(f"memory run of {name} failed:\n{out.stderr[-2000:]}")
        row = json.loads(out.stdout.strip().splitlines()[-1])
        rows[name] = row
        if not args.quiet:
            print(f"  {name:<16} peak {row['peak_mib']:8.0f} MiB  step {row['step_mib']:8.0f} MiB  "
                  f"saved {row['saved_mib']:8.0f} MiB  ({row['seconds']:.1f} s)", file=sys.stderr, flush=True)
    if "classic" in rows:
        ref = rows["classic"]
        for row in rows.values():
            for key in ("peak_mib", "step_mib", "saved_mib"):
                row[key.replace("_mib", "_ratio")] = row[key] / ref[key] if ref[key] else float("nan")
    return {"kind": "memory", "rows": rows}


# ---- output --------------------------------------------------------------------------------

def machine() -> dict:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d %H:%M %Z")}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def print_speed(result: dict, args) -> None:
    rows = result["rows"]
    print(f"\nspeed: {args.size}x{args.size}, cutn {args.cutn}, {args.steps} measured steps after {args.warmup} "
          f"warm-up, device {args.device}")
    print(f"{'variant':<20} {'s/step':>8} {'x classic':>10} {'loss':>8}  what")
    for name, row in rows.items():
        ratio = f"{row['ratio']:.2f}" if "ratio" in row else "-"
        print(f"{name:<20} {row['s_per_step']:8.2f} {ratio:>10} {row['loss']:8.4f}  {NOTES.get(name, '')}")


def print_memory(result: dict, args) -> None:
    print(f"\nmemory: {args.size}x{args.size}, cutn {args.cutn}, device {args.device} (one fresh process per variant)")
    print(f"{'variant':<20} {'peak MiB':>9} {'step MiB':>9} {'saved MiB':>10} {'peak x':>7} {'step x':>7} {'saved x':>8}")
    for name, row in result["rows"].items():
        r = [f"{row.get(k, float('nan')):.2f}" for k in ("peak_ratio", "step_ratio", "saved_ratio")]
        print(f"{name:<20} {row['peak_mib']:9.0f} {row['step_mib']:9.0f} {row['saved_mib']:10.0f} "
              f"{r[0]:>7} {r[1]:>7} {r[2]:>8}")


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m clipgan.bench.speed", description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=256, help="image side in pixels (multiple of 16)")
    p.add_argument("--cutn", type=int, default=32)
    p.add_argument("--steps", type=int, default=3, help="measured steps per variant")
    p.add_argument("--warmup", type=int, default=1, help="unmeasured steps per variant first")
    p.add_argument("--device", default="cpu")
    p.add_argument("--variants", default=None, help=f"comma-separated, from: {', '.join(VARIANTS)}")
    p.add_argument("--memory", action="store_true", help="peak memory per variant (fresh process each) instead of time")
    p.add_argument("--json", default=None, help="also write the results here")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    default = MEMORY_DEFAULT if args.memory else SPEED_DEFAULT
    args.variants = tuple(v for v in args.variants.split(",") if v) if args.variants else default
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        p.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    if args.size % 16 or args.size < 16:
        p.error("--size must be a positive multiple of 16")
    return args


def main(argv=None) -> None:
    import warnings

    args = parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning, module="kornia")
    device = torch.device(args.device)
    if args.memory_child:
        print(json.dumps(memory_child(args, device)))
        return
    info = machine()
    if not args.quiet:
        print(f"{info['cpu']}, {info['cores']} cores, torch {info['torch']} ({info['cpu_capability']}), "
              f"{info['torch_threads']} threads", file=sys.stderr)
    result = run_memory(args, device) if args.memory else run_speed(args, device)
    (print_memory if args.memory else print_speed)(result, args)
    if args.json:
        payload = {"machine": info, "command": " ".join(["python -m clipgan.bench.speed", *(argv or sys.argv[1:])]),
                   "settings": {k: v for k, v in vars(args).items() if k != "memory_child"}, **result}
        with open(args.json, "w") as f:
            json.dump(payload, f, indent=1)


if __name__ == "__main__":
    main()
