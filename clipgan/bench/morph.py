"""How smoothly morphs change: the mean frame-to-frame difference of a VQGAN morph and of a diffusion
morph between the same prompts, with the bundled models (a benchmark, not a test).

    python -m clipgan.bench.morph [--frames 8] [--pairs 2] [--iterations 30] [--cutn 16] [--json out.json]

Difference: mean absolute change of a pixel between neighbouring frames, in 0..255 units, at each
model's own size (VQGAN 64 px, toy diffusion 32 px). Also the largest single jump, since a morph
that is smooth on average can still pop once. The ends are judged by the shape classifier.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

PAIRS = [("a red circle on a blue background", "a yellow square on a black background"),
         ("a green triangle on a white background", "a purple star on an orange background")]


def differences(frames: list[torch.Tensor]) -> list[float]:
    return [(a.float() - b.float()).abs().mean().item() * 255 for a, b in zip(frames, frames[1:])]


def run(frames: int = 8, seed: int = 0, pairs: int = len(PAIRS), **settings) -> dict:
    from clipgan import animate
    from clipgan.diffuse import morph_frames
    from clipgan.toyworld.classifier import bundled, predict
    from clipgan.toyworld.render import parse_caption

    judge = bundled()
    out = {"frames_per_transition": frames, "seed": seed, "pairs": []}
    for a, b in PAIRS[:pairs]:
        row = {"prompts": [a, b]}
        for kind in ("vqgan", "diffusion"):
            t0 = time.perf_counter()
            if kind == "vqgan":
                images = [f.image for f in animate.morph([a, b], frames_per_transition=frames, seed=seed,
                                                         cutn=settings.get("cutn", 32))]
            else:
                images = [f.image for f in morph_frames([a, b], frames, seed=seed, **settings)]
            d = differences(images)
            ends = predict(judge, torch.cat([images[0], images[-1]]).float())
            row[kind] = {"mean_difference": round(sum(d) / len(d), 2), "max_difference": round(max(d), 2),
                         "ends_judged": ends,
                         "ends_right": ends == [parse_caption(a)["shape"], parse_caption(b)["shape"]],
                         "seconds": round(time.perf_counter() - t0, 1)}
        out["pairs"].append(row)
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=8, help="frames per transition")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pairs", type=int, default=len(PAIRS))
    p.add_argument("--iterations", type=int, default=30, help="diffusion steps per frame")
    p.add_argument("--cutn", type=int, default=16)
    p.add_argument("--guidance-scale", type=float)
    p.add_argument("--json")
    args = p.parse_args(argv)
    extra = {"guidance_scale": args.guidance_scale} if args.guidance_scale is not None else {}
    report = run(args.frames, args.seed, args.pairs, iterations=args.iterations, cutn=args.cutn, **extra)
    for row in report["pairs"]:
        print(" -> ".join(row["prompts"]))
        for kind in ("vqgan", "diffusion"):
            r = row[kind]
            print(f"  {kind:9} mean {r['mean_difference']:6.2f}  max {r['max_difference']:6.2f}  "
                  f"ends {'/'.join(r['ends_judged'])} ({'right' if r['ends_right'] else 'wrong'})  {r['seconds']} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
