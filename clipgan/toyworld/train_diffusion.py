"""Train the bundled toy diffusion model: `python -m clipgan.toyworld.train_diffusion --out checkpoints`.

An unconditional diffusers UNet2DModel (epsilon prediction, cosine noise schedule) on renders of
the shapes world: it learns what a flat shape on a flat background looks like, and knows nothing
of words; the prompt reaches it only through CLIP guidance at sampling time.

Writes --out/toy-diffusion/ in the diffusers layout:
  config.json, diffusion_pytorch_model.safetensors   the UNet (EMA weights)
  scheduler_config.json                              the DDPM noise schedule it was trained with
  card.json                                          what was trained, how long, and how it scored
Every run is seeded; the same flags give the same weights on the same machine.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from clipgan.toyworld import render as rw

NAME = "toy-diffusion"


@dataclass
class DiffusionTrainConfig:
    size: int = 32  # px; the toy CLIP sees 64, cutouts resize
    channels: tuple[int, ...] = (32, 64, 64)
    layers_per_block: int = 1
    attention: bool = True  # one attention block at the coarsest level
    steps: int = 2400
    batch: int = 32
    lr: float = 1e-3
    warmup: int = 150
    ema_decay: float = 0.999
    train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"
    prediction: str = "epsilon"  # what the UNet outputs: epsilon (noise) or v_prediction
    ranges: str = "default"  # the renders' layouts: a name in render.RANGES
    seed: int = 0
    bf16: bool = True  # autocast the UNet in bf16 where the CPU has it natively (about 1.7x faster)

    def unet_kwargs(self) -> dict:
        n = len(self.channels)
        down = ["DownBlock2D"] * n
        up = ["UpBlock2D"] * n
        if self.attention:
            down[-1], up[0] = "AttnDownBlock2D", "AttnUpBlock2D"
        return dict(sample_size=self.size, in_channels=3, out_channels=3,
                    block_out_channels=tuple(self.channels), layers_per_block=self.layers_per_block,
                    down_block_types=tuple(down), up_block_types=tuple(up),
                    norm_num_groups=8, attention_head_dim=min(32, self.channels[-1]), add_attention=self.attention)


def batch(n: int, size: int, g: torch.Generator, ranges: str = "default") -> torch.Tensor:
    """n renders of the world (render.RANGES[ranges]; default: the bench's), in [-1, 1], half of them mirrored."""
    x = rw.render_batch(rw.sample_specs(n, g, rw.RANGES[ranges]), size)
    flip = torch.rand(n, generator=g) < 0.5
    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
    return x * 2 - 1


def train(cfg: DiffusionTrainConfig, progress: bool = True, snapshot=None, every: int = 0):
    """(EMA UNet, scheduler, log); `snapshot(ema, sched)` is called every `every` steps if given."""
    from diffusers import DDPMScheduler, UNet2DModel
    from tqdm import tqdm

    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    unet = UNet2DModel(**cfg.unet_kwargs())
    ema = copy.deepcopy(unet).requires_grad_(False)
    sched = DDPMScheduler(num_train_timesteps=cfg.train_timesteps, beta_schedule=cfg.beta_schedule,
                          prediction_type=cfg.prediction, clip_sample=True)
    opt = torch.optim.AdamW(unet.parameters(), lr=cfg.lr, weight_decay=1e-4)
    lr_at = lambda k: min(1.0, (k + 1) / cfg.warmup) * 0.5 * (1 + torch.cos(torch.tensor(k / cfg.steps * torch.pi)).item())  # noqa: E731
    t0, log = time.time(), []
    bar = tqdm(range(cfg.steps), desc=NAME, disable=not progress, mininterval=5)
    running = None
    for k in bar:
        x0 = batch(cfg.batch, cfg.size, g, cfg.ranges)
        noise = torch.randn(x0.shape, generator=g)
        t = torch.randint(0, cfg.train_timesteps, (cfg.batch,), generator=g)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            pred = unet(sched.add_noise(x0, noise, t), t).sample
        target = noise if cfg.prediction == "epsilon" else sched.get_velocity(x0, noise, t)
        loss = F.mse_loss(pred.float(), target)
        for group in opt.param_groups:
            group["lr"] = cfg.lr * lr_at(k)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        decay = min(cfg.ema_decay, (1 + k) / (10 + k))  # short runs: the average warms up
        with torch.no_grad():
            for e, p in zip(ema.parameters(), unet.parameters()):
                e.lerp_(p, 1 - decay)
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if k % 100 == 0 or k == cfg.steps - 1:
            log.append({"step": k, "loss": round(running, 4)})
            bar.set_postfix(loss=f"{running:.4f}")
        if snapshot is not None and every and (k + 1) % every == 0:
            snapshot(ema, sched)
    return ema.eval(), sched, {"train_seconds": round(time.time() - t0, 1), "log": log}


def save(unet, sched, out: Path) -> Path:
    folder = Path(out) / NAME
    unet.save_pretrained(folder, safe_serialization=True)
    sched.save_pretrained(folder)
    return folder


def _channels(text: str) -> tuple[int, ...]:
    """"16,32,64" -> (16, 32, 64): two levels at least, each a multiple of the 8 norm groups."""
    try:
        widths = tuple(int(w) for w in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of whole numbers") from None
    if len(widths) < 2 or any(w < 8 or w % 8 for w in widths):
        raise argparse.ArgumentTypeError(f"{text!r}: give two widths or more, each a multiple of 8")
    return widths


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="checkpoints")
    p.add_argument("--steps", type=int)
    p.add_argument("--batch", type=int)
    p.add_argument("--size", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--channels", type=_channels, metavar="C1,C2,...",
                   help="the UNet's widths, one per level, e.g. 16,32,64 (default 32,64,64)")
    p.add_argument("--prediction", choices=("epsilon", "v_prediction"))
    p.add_argument("--ranges", choices=tuple(rw.RANGES), help="the renders' layouts (centred: every shape in the middle)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy 2-core machine)")
    p.add_argument("--fp32", action="store_true", help="no bf16 autocast (CPUs without fast bf16)")
    p.add_argument("--snapshot-every", type=int, default=0, help="also save the EMA weights every N steps")
    p.add_argument("--quick", action="store_true", help="a few steps of a tiny net, for tests")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = DiffusionTrainConfig()
    if args.quick:
        cfg = DiffusionTrainConfig(steps=3, batch=4, channels=(8, 16), warmup=1)
    from clipgan.pipeline import cpu_has_native_bf16
    cfg.bf16 = cfg.bf16 and not args.fp32 and cpu_has_native_bf16()  # emulated bf16 is 8-24x slower
    for name in ("steps", "batch", "size", "seed", "lr", "prediction", "ranges", "channels"):
        if getattr(args, name) is not None:
            setattr(cfg, name, getattr(args, name))
    unet, sched, log = train(cfg, snapshot=lambda u, s: save(u, s, Path(args.out)), every=args.snapshot_every)
    folder = save(unet, sched, Path(args.out))
    files = sorted(folder.iterdir())
    card = {
        "description": "Unconditional DDPM UNet (diffusers UNet2DModel) trained from scratch on renders "
                       "of the shapes world (clipgan.toyworld.render); the prompt enters only through "
                       "CLIP guidance. For offline demos and tests, not real images.",
        "parameters": sum(p.numel() for p in unet.parameters()),
        "files": [{"file": f.name, "bytes": f.stat().st_size} for f in files if f.name != "card.json"],
        "train": {**{k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()},
                  "threads": args.threads, "seconds": log["train_seconds"],
                  "final_loss": log["log"][-1]["loss"], "loss_log": log["log"]},
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "command": "python -m clipgan.toyworld.train_diffusion " + " ".join(argv or []),
    }
    (folder / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    print(f"wrote {folder} ({card['parameters']} parameters, {log['train_seconds']} s)")


if __name__ == "__main__":
    main()
