"""Train the bundled toy models: `python -m clipgan.toyworld.train --out checkpoints`.

Writes, into --out:
  toy-clip.json, toy-clip.safetensors      open_clip config + fp16 state dict
  toy-vqgan.yaml, toy-vqgan.ckpt           taming config + lightning-style checkpoint
  toy-shape-classifier.safetensors         benchmark judge (see classifier.py)
  toy-models.json                          model card with the measured figures

The CLIP and the VQGAN train at the same time in two processes of one thread each
(faster on a 2-core CPU than one after the other with two threads); the classifier
follows in whichever process frees up first.  Every run is seeded.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from clipgan.models.registry import bundled_dir
from clipgan.toyworld import classifier as cls_mod
from clipgan.toyworld import clip as clip_mod
from clipgan.toyworld import render as rw
from clipgan.toyworld import vqgan as vq_mod

# --quick: seconds, for tests; tiny steps and evaluation sets, targets not expected.
QUICK = {"clip_steps": 3, "vq_steps": 3, "cls_steps": 3, "eval_n": 20}


def _file_info(path: Path) -> dict:
    return {"file": path.name, "bytes": path.stat().st_size}


def _params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def run_clip(out: str, steps: int, seed: int, eval_n: int, threads: int, position: int, bf16: bool,
             clip_options: dict | None = None) -> dict:
    import torch
    torch.set_num_threads(threads)
    cfg = clip_mod.ClipTrainConfig(steps=steps, seed=seed, eval_n=eval_n, bf16=bf16, **(clip_options or {}))
    cfg.warmup = min(cfg.warmup, max(1, steps // 10))
    pool = None
    if cfg.guided_share:
        from clipgan.toyworld.negatives import Pool

        pool = Pool(cfg.vqgan_dir, cfg.guided_n, cfg.guided_every, tuple(cfg.guided_keep), recon=cfg.recon_share,
                    size=cfg.guided_size, contrast=cfg.guided_contrast, draft=cfg.guided_draft,
                    draft_steps=cfg.guided_draft_steps)
    denoised = None
    if cfg.denoised_share:
        from clipgan.toyworld.denoised import Denoised

        denoised = Denoised(cfg.diffusion_dir, cfg.denoised_share, cfg.denoised_t_max)
    model, log = clip_mod.train(cfg, progress=True, position=position, pool=pool, denoised=denoised)
    cfg_path, w_path = clip_mod.save(model, cfg.arch, Path(out))
    # measure what was saved, loaded back the way the package loads it
    model = clip_mod.load(cfg_path, w_path)
    acc = clip_mod.zero_shot(model, n=eval_n, seed=cfg.eval_seed)
    return {
        "open_clip_name": cfg_path.stem,
        "files": [_file_info(cfg_path), _file_info(w_path)],
        "architecture": cfg.arch.to_open_clip(),
        "parameters": _params(model),
        "input_size": cfg.arch.image_size,
        "normalization": {"mean": list(clip_mod.OPENAI_MEAN), "std": list(clip_mod.OPENAI_STD)},
        "tokenizer": "open_clip SimpleTokenizer (standard CLIP BPE), context length 77",
        "zero_shot": {**{k: round(v, 4) for k, v in acc.items()}, "n": eval_n,
                      "seed": cfg.eval_seed, "template": rw.CANONICAL},
        "train": {"steps": steps, "batch": cfg.batch, "lr": cfg.lr, "seed": seed,
                  "seconds": log["train_seconds"], "final_loss": log["log"][-1]["loss"],
                  **{k: v for k, v in (clip_options or {}).items() if v and k != "arch"}},
    }


def run_vqgan(out: str, steps: int, seed: int, eval_n: int, threads: int, position: int, bf16: bool,
              arch: vq_mod.VQArch | None = None) -> dict:
    import torch
    torch.set_num_threads(threads)
    cfg = vq_mod.VQTrainConfig(arch=arch or vq_mod.VQArch(), steps=steps, seed=seed, eval_n=eval_n, bf16=bf16)
    cfg.warmup = min(cfg.warmup, max(1, steps // 10))
    model, log = vq_mod.train(cfg, progress=True, position=position)
    cfg_path, ckpt_path = vq_mod.save(model, cfg.arch, Path(out), global_step=steps)
    model = vq_mod.load(cfg_path, ckpt_path)
    ev = vq_mod.evaluate(model, n=eval_n, seed=cfg.eval_seed)
    return {
        "files": [_file_info(cfg_path), _file_info(ckpt_path)],
        "architecture": cfg.arch.ddconfig()
        | {"embed_dim": cfg.arch.embed_dim, "n_embed": cfg.arch.n_embed},
        "downsampling": 2 ** (len(cfg.arch.ch_mult) - 1),
        "parameters": _params(model),
        "decoder_parameters": _params(model.decoder),
        "psnr_db": round(ev["psnr"], 2),
        "codebook_usage": round(ev["codebook_usage"], 4),
        "eval": {"n": eval_n, "seed": cfg.eval_seed, "size": 64},
        "train": {"steps": steps, "batch": cfg.batch, "lr": cfg.lr, "seed": seed,
                  "seconds": log["train_seconds"], "codes_reset": log["codes_reset"]},
    }


def run_classifier(out: str, steps: int, seed: int, eval_n: int, threads: int, position: int, bf16: bool) -> dict:
    import torch
    torch.set_num_threads(threads)
    cfg = cls_mod.ClassifierConfig(steps=steps, seed=seed, eval_n=eval_n)
    net, log = cls_mod.train(cfg, progress=True, position=position)
    path = cls_mod.save(net, Path(out) / "toy-shape-classifier.safetensors")
    net = cls_mod.load(path)
    acc = cls_mod.accuracy(net, n=eval_n, seed=cfg.eval_seed)
    return {"files": [_file_info(path)], "parameters": _params(net),
            "accuracy": round(acc, 4), "eval": {"n": eval_n, "seed": cfg.eval_seed},
            "train": {"steps": steps, "seed": seed, "seconds": log["train_seconds"]}}


def _codebook_size(text: str) -> int:
    n = int(text)
    if n < 2:
        raise argparse.ArgumentTypeError(f"at least 2 codes, not {n}")
    return n


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m clipgan.toyworld.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="checkpoints", help="output folder")
    p.add_argument("--only", choices=["all", "clip", "vqgan", "classifier"], default="all")
    p.add_argument("--steps", type=int, help="steps for every model (overrides the defaults)")
    p.add_argument("--clip-steps", type=int, default=clip_mod.ClipTrainConfig.steps)
    p.add_argument("--vqgan-steps", type=int, default=vq_mod.VQTrainConfig.steps)
    p.add_argument("--classifier-steps", type=int, default=cls_mod.ClassifierConfig.steps)
    p.add_argument("--eval-n", type=int, default=1000, help="fresh renders for the CLIP zero-shot figures")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bf16", choices=["auto", "on", "off"], default="auto",
                   help="bf16 autocast in training; auto: only on CPUs with native bf16 (emulated bf16 is 8-24x slower)")
    d = clip_mod.ClipTrainConfig
    p.add_argument("--clip-lr", type=float, default=d.lr)
    p.add_argument("--clip-init", help="fine-tune the CLIP from this .safetensors (same architecture)")
    p.add_argument("--text-from", help="a reader for this CLIP (.safetensors): its --frozen part is loaded and kept")
    p.add_argument("--frozen", choices=["text", "embedding"],
                   help=f"with --text-from: share the whole text tower, or only the token embedding (default: {d.frozen})")
    p.add_argument("--blob-share", type=float, default=d.blob_share,
                   help="share of each CLIP batch that is shapeless two-colour blobs (hard negatives)")
    p.add_argument("--adv-eps", type=float, default=d.adv_eps,
                   help="PGD adversarial training of the CLIP image tower: L2 radius per image (0: off)")
    p.add_argument("--adv-steps", type=int, default=d.adv_steps)
    p.add_argument("--adv-warmup", type=int, default=d.adv_warmup,
                   help="steps over which the PGD radius grows from 0 to --adv-eps")
    p.add_argument("--clip-sizes", type=float, nargs=2, metavar=("LO", "HI"),
                   help="the CLIP's renders' radii in image half-widths (default: the world's training range)")
    p.add_argument("--clip-width", type=int, default=clip_mod.ClipArch.resnet_width,
                   help="width of the CLIP's ResNet image tower")
    p.add_argument("--guided-share", type=float, default=d.guided_share,
                   help="share of each CLIP batch drawn by guided runs against the CLIP itself (negatives)")
    p.add_argument("--guided-every", type=int, default=d.guided_every, help="steps between fresh guided negatives")
    p.add_argument("--guided-n", type=int, default=d.guided_n, help="guided runs per refresh")
    p.add_argument("--guided-label", choices=["shapeless", "against"], default=d.guided_label,
                   help="guided negatives: taught as shapeless blobs, or only as losing to a render of their caption")
    p.add_argument("--guided-size", type=int, choices=[32, 64], default=d.guided_size,
                   help="side the guided negatives are drawn at (32: a coarse-to-fine run's first stage)")
    p.add_argument("--guided-contrast", type=float, default=d.guided_contrast,
                   help="contrast weight over the other shapes while drawing the guided negatives")
    p.add_argument("--guided-draft", help="a CLIP (.safetensors, .json beside it) drafting the guided negatives at 32 px: "
                   "they are drawn as the defaults draw, the CLIP trained being the refinement's partner")
    p.add_argument("--guided-draft-steps", type=int, default=d.guided_draft_steps, help="steps of each draft at 32 px")
    p.add_argument("--guided-keep", type=int, nargs="+", default=list(d.guided_keep),
                   help="steps of each guided run whose pictures are kept")
    p.add_argument("--recon-share", type=float, default=d.recon_share,
                   help="with guided negatives: share of renders seen through the VQGAN")
    p.add_argument("--vqgan-dir", help="toy VQGAN folder the guided negatives are drawn with (default: the bundled one)")
    p.add_argument("--denoised-share", type=float, default=d.denoised_share,
                   help="share of the CLIP's renders replaced by a toy UNet's clean estimate from the noised render")
    p.add_argument("--denoised-t-max", type=float, default=d.denoised_t_max,
                   help="the noise levels drawn: timesteps below this share of the UNet's schedule")
    p.add_argument("--diffusion-dir", help="toy UNet folder for --denoised-share (default: the bundled one)")
    p.add_argument("--vq-downsampling", type=int, choices=[4, 8, 16], default=4,
                   help="VQGAN: pixels per code side (f4 is bundled; f8 or f16 is a coarser, stronger prior)")
    p.add_argument("--vq-codes", type=_codebook_size, default=vq_mod.VQArch.n_embed, help="VQGAN: codebook size")
    p.add_argument("--threads", type=int, help="torch threads for a one-process run (default: every core)")
    p.add_argument("--sequential", action="store_true", help="one process, all threads")
    p.add_argument("--quick", action="store_true", help="a few steps only: a smoke test")
    a = p.parse_args(argv)
    if a.clip_sizes and not 0 < a.clip_sizes[0] <= a.clip_sizes[1] <= 1:
        p.error(f"--clip-sizes LO HI are radii in image half-widths, 0 < LO <= HI <= 1; got {a.clip_sizes[0]:g} {a.clip_sizes[1]:g}")
    if a.frozen and not a.text_from:
        p.error("--frozen says what to keep of --text-from's CLIP; give --text-from too")
    if a.guided_draft:
        if not (a.guided_share and a.guided_contrast > 0):
            p.error("--guided-draft draws guided negatives with a contrast: give --guided-share and --guided-contrast too")
        missing = [f for f in (Path(a.guided_draft), Path(a.guided_draft).with_suffix(".json")) if not f.is_file()]
        if missing:
            p.error(f"--guided-draft: {missing[0]} is not a file (the CLIP's .safetensors, its .json beside it)")
    return a


def main(argv=None) -> dict:
    a = parse_args(argv)
    steps = {"clip": a.clip_steps, "vqgan": a.vqgan_steps, "classifier": a.classifier_steps}
    evals = {"clip": a.eval_n, "vqgan": 200, "classifier": 500}
    if a.steps:
        steps = dict.fromkeys(steps, a.steps)
    if a.quick:
        steps = {"clip": QUICK["clip_steps"], "vqgan": QUICK["vq_steps"], "classifier": QUICK["cls_steps"]}
        evals = dict.fromkeys(evals, QUICK["eval_n"])
    names = list(steps) if a.only == "all" else [a.only]
    runners = {"clip": run_clip, "vqgan": run_vqgan, "classifier": run_classifier}
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    bf16 = {"on": True, "off": False}.get(a.bf16)
    if bf16 is None:
        from clipgan.pipeline import cpu_has_native_bf16

        bf16 = cpu_has_native_bf16()
    clip_options = {"lr": a.clip_lr, "init_from": a.clip_init, "blob_share": a.blob_share,
                    "adv_eps": a.adv_eps, "adv_steps": a.adv_steps, "adv_warmup": a.adv_warmup,
                    "arch": clip_mod.ClipArch(resnet_width=a.clip_width)}
    # a lever's settings only when it is on: the card names what the training used
    if a.clip_sizes:
        clip_options.update(sizes=tuple(a.clip_sizes))
    if a.text_from:
        clip_options.update(text_from=a.text_from, frozen=a.frozen or clip_mod.ClipTrainConfig.frozen)
    if a.guided_share:
        clip_options.update(guided_share=a.guided_share, guided_every=a.guided_every, guided_n=a.guided_n,
                            recon_share=a.recon_share, guided_label=a.guided_label,
                            guided_size=a.guided_size, guided_contrast=a.guided_contrast, guided_keep=tuple(a.guided_keep),
                            vqgan_dir=a.vqgan_dir or str(bundled_dir()))
        if a.guided_draft:
            clip_options.update(guided_draft=a.guided_draft, guided_draft_steps=a.guided_draft_steps)
    if a.denoised_share:
        from clipgan.config import Settings
        from clipgan.models.diffusion_registry import resolve_diffusion

        clip_options.update(denoised_share=a.denoised_share, denoised_t_max=a.denoised_t_max,
                            diffusion_dir=a.diffusion_dir or str(resolve_diffusion(Settings().diffusion)))
    if a.clip_init:  # a copy: the run may overwrite the very file it starts from
        import shutil
        import tempfile
        keep = Path(tempfile.mkdtemp()) / "init.safetensors"
        shutil.copy(a.clip_init, keep)
        clip_options["init_from"] = str(keep)
    levels = {4: 3, 8: 4, 16: 5}[a.vq_downsampling]  # ch_mult entries: one downsampling between each
    extra = {"clip": (clip_options,), "vqgan": (vq_mod.VQArch(n_embed=a.vq_codes, ch_mult=(2,) * levels),)}
    t0 = time.time()
    results = {}
    cores = os.cpu_count() or 1
    if a.sequential or len(names) == 1 or cores < 2:
        for i, n in enumerate(names):
            results[n] = runners[n](str(out), steps[n], a.seed, evals[n], a.threads or cores, 0, bf16, *extra.get(n, ()))
    else:
        # spawn: a clean interpreter per worker, one thread each
        with ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as pool:
            futures = {n: pool.submit(runners[n], str(out), steps[n], a.seed, evals[n], 1, i, bf16, *extra.get(n, ()))
                       for i, n in enumerate(names)}
            results = {n: f.result() for n, f in futures.items()}
    card_path = out / "toy-models.json"
    card = json.loads(card_path.read_text()) if card_path.exists() and a.only != "all" else {}
    card.update({
        "description": "Toy models for the synthetic shapes world (clipgan.toyworld), trained "
                       "from scratch on renders; for offline demos and tests, not real images.",
        "world": {"colors": rw.COLORS, "shapes": list(rw.SHAPES), "canonical": rw.CANONICAL},
        "command": "python -m clipgan.toyworld.train " + " ".join(argv if argv is not None else sys.argv[1:]),
        "torch": __import__("torch").__version__,
        "machine": f"{platform.machine()}, {cores} CPU cores",
        "bf16_autocast": bf16,
    })
    if "clip" in results and a.clip_init:
        results["clip"]["train"]["init_from"] = a.clip_init
    for n, r in results.items():
        card[{"clip": "clip", "vqgan": "vqgan", "classifier": "shape_classifier"}[n]] = r
    card["wall_seconds" if a.only == "all" else f"wall_seconds_{a.only}"] = round(time.time() - t0, 1)
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps({k: card[k] for k in card if k not in ("world", "description")}, indent=2))
    return json.loads(card_path.read_text())  # as written: lists, not tuples


if __name__ == "__main__":
    main()
