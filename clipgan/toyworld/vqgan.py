"""A tiny VQGAN in taming-transformers format, trained on the shapes world.

The model is built from `taming.modules.*` only (never `taming.models`, which pulls in
pytorch_lightning).  Attribute names match taming's VQModel, so the state dict keys
(encoder.*, decoder.*, quantize.embedding.weight, quant_conv.*, post_quant_conv.*) and
the YAML config are interchangeable with published taming checkpoints.

Training is reconstruction (L1 + L2) plus the usual codebook/commitment loss; codes
left unused for a while are re-seeded from encoder outputs so the codebook stays in use.
No perceptual or adversarial loss: flat shapes do not need them.
"""

from __future__ import annotations

import contextlib
import io
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from clipgan.toyworld import render as rw

# Published taming configs carry this loss section; nothing here instantiates it.
_LOSSCONFIG = {
    "target": "taming.modules.losses.vqperceptual.VQLPIPSWithDiscriminator",
    "params": {"disc_conditional": False, "disc_in_channels": 3, "disc_start": 250001,
               "disc_weight": 0.8, "codebook_weight": 1.0},
}


@dataclass
class VQArch:
    embed_dim: int = 16
    n_embed: int = 512
    z_channels: int = 32
    resolution: int = 64
    ch: int = 32
    # taming's GroupNorm always has 32 groups; at 32 channels that is instance norm, which
    # erases the absolute colour of flat regions, so every level keeps 64 channels
    ch_mult: tuple[int, ...] = (2, 2, 2)  # len 3 -> two downsamplings -> f4
    num_res_blocks: int = 1
    attn_resolutions: tuple[int, ...] = ()

    def ddconfig(self) -> dict:
        return {"double_z": False, "z_channels": self.z_channels, "resolution": self.resolution,
                "in_channels": 3, "out_ch": 3, "ch": self.ch, "ch_mult": list(self.ch_mult),
                "num_res_blocks": self.num_res_blocks,
                "attn_resolutions": list(self.attn_resolutions), "dropout": 0.0}

    def taming_config(self) -> dict:
        return {"model": {
            "base_learning_rate": 4.5e-6,
            "target": "taming.models.vqgan.VQModel",
            "params": {"embed_dim": self.embed_dim, "n_embed": self.n_embed,
                       "ddconfig": self.ddconfig(), "lossconfig": _LOSSCONFIG},
        }}


@dataclass
class VQTrainConfig:
    arch: VQArch = field(default_factory=VQArch)
    steps: int = 1500
    batch: int = 8
    lr: float = 1e-3
    warmup: int = 50
    beta: float = 0.25  # commitment weight
    reset_every: int = 50  # re-seed codes unused over this many steps
    seed: int = 0
    eval_seed: int = 2_000_003
    eval_n: int = 200
    bf16: bool = True  # CPU autocast for the convolutions: about 3x faster with native bf16
    verbose: bool = False  # print the periodic log lines


class VQModel(nn.Module):
    """taming's VQModel without the Lightning parts: same submodules, same key names."""

    def __init__(self, arch: VQArch, beta: float = 0.25):
        super().__init__()
        from taming.modules.diffusionmodules.model import Decoder, Encoder
        from taming.modules.vqvae.quantize import VectorQuantizer2
        dd = arch.ddconfig()
        self.encoder = Encoder(**dd)
        with contextlib.redirect_stdout(io.StringIO()):  # taming's Decoder prints its z shape
            self.decoder = Decoder(**dd)
        self.quantize = VectorQuantizer2(arch.n_embed, arch.embed_dim, beta=beta, legacy=False)
        self.quant_conv = nn.Conv2d(arch.z_channels, arch.embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(arch.embed_dim, arch.z_channels, 1)

    def encode(self, x):
        """x in [-1, 1] -> (quantized z, codebook loss, code indices)."""
        h = self.quant_conv(self.encoder(x))
        zq, loss, (_, _, idx) = self.quantize(h)
        return zq, loss, idx, h

    def decode(self, zq):
        return self.decoder(self.post_quant_conv(zq))

    def forward(self, x):
        zq, loss, idx, _ = self.encode(x)
        return self.decode(zq), loss, idx


def lr_at(step: int, cfg: VQTrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))


def train(cfg: VQTrainConfig, progress: bool = True, position: int = 0) -> tuple[VQModel, dict]:
    """Train on fresh renders; returns the model (fp32, eval mode) and a log."""
    from tqdm import tqdm
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    model = VQModel(cfg.arch, cfg.beta)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.99))
    n_e = cfg.arch.n_embed
    usage = torch.zeros(n_e)
    t0 = time.time()
    log, resets = [], 0
    bar = tqdm(range(cfg.steps), desc="toy-vqgan", disable=not progress,
               position=position, mininterval=2)
    for step in bar:
        specs = rw.sample_specs(cfg.batch, g, rw.TRAIN_RANGES)
        x = rw.render_batch(specs, cfg.arch.resolution) * 2 - 1
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            h = model.quant_conv(model.encoder(x)).float()
        if step == 0:  # start the codebook on encoder outputs, not near zero
            _reset_dead_codes(model, torch.zeros(n_e), h.detach(), g)
        zq, qloss, (_, _, idx) = model.quantize(h)  # nearest-code search stays in fp32
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            xr = model.decode(zq).float()
        rec = (xr - x).abs().mean() + ((xr - x) ** 2).mean()
        loss = rec + qloss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        usage += torch.bincount(idx.flatten(), minlength=n_e).float()
        if cfg.reset_every and (step + 1) % cfg.reset_every == 0 and step < 0.8 * cfg.steps:
            resets += _reset_dead_codes(model, usage, h.detach(), g)
            usage.zero_()
        if step % 50 == 0 or step == cfg.steps - 1:
            psnr = 10 * math.log10(4 / ((xr.detach() - x) ** 2).mean().item())  # range 2
            log.append({"step": step, "loss": round(loss.item(), 4), "psnr": round(psnr, 2)})
            bar.set_postfix(psnr=f"{psnr:.1f}")
            if cfg.verbose:
                bar.write(str(log[-1]))
    model.eval()
    return model, {"train_seconds": round(time.time() - t0, 1), "codes_reset": resets, "log": log}


@torch.no_grad()
def _reset_dead_codes(model: VQModel, usage: torch.Tensor, h: torch.Tensor, g) -> int:
    dead = (usage == 0).nonzero().squeeze(1)
    if len(dead) == 0:
        return 0
    z = h.permute(0, 2, 3, 1).reshape(-1, h.shape[1])
    pick = torch.randint(len(z), (len(dead),), generator=g)
    noise = torch.randn(len(dead), z.shape[1], generator=g) * 0.01
    model.quantize.embedding.weight[dead] = z[pick] + noise
    return len(dead)


@torch.no_grad()
def evaluate(model: VQModel, n: int = 200, seed: int = 2_000_003, size: int = 64,
             batch: int = 50) -> dict[str, float]:
    """PSNR (dB, images in [0, 1]) and codebook usage on fresh default renders."""
    specs = rw.sample_specs(n, seed)
    se, used = 0.0, torch.zeros(model.quantize.n_e, dtype=torch.bool)
    for i in range(0, n, batch):
        x = rw.render_batch(specs[i:i + batch], size)
        xr, _, idx = model(x * 2 - 1)
        xr = ((xr + 1) / 2).clamp(0, 1)
        se += ((xr - x) ** 2).mean((1, 2, 3)).sum().item()
        used[idx.flatten()] = True
    return {"psnr": 10 * math.log10(1 / (se / n)), "codebook_usage": used.float().mean().item()}


def save(model: VQModel, arch: VQArch, out_dir: Path, global_step: int,
         name: str = "toy-vqgan") -> tuple[Path, Path]:
    """Write NAME.yaml (taming config) and NAME.ckpt (lightning-style dict, fp16 tensors)."""
    import yaml
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg_path = out_dir / f"{name}.yaml"
    cfg_path.write_text(yaml.safe_dump(arch.taming_config(), sort_keys=False))
    sd = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    ckpt_path = out_dir / f"{name}.ckpt"
    torch.save({"state_dict": sd, "global_step": int(global_step), "epoch": 0}, ckpt_path)
    return cfg_path, ckpt_path


def load(cfg_path: Path, ckpt_path: Path) -> VQModel:
    """Rebuild from the yaml and a weights_only load of the checkpoint."""
    import yaml
    params = yaml.safe_load(Path(cfg_path).read_text())["model"]["params"]
    dd = params["ddconfig"]
    arch = VQArch(embed_dim=params["embed_dim"], n_embed=params["n_embed"],
                  z_channels=dd["z_channels"], resolution=dd["resolution"], ch=dd["ch"],
                  ch_mult=tuple(dd["ch_mult"]), num_res_blocks=dd["num_res_blocks"],
                  attn_resolutions=tuple(dd["attn_resolutions"]))
    model = VQModel(arch)
    sd = torch.load(ckpt_path, map_location="cpu", weights_only=True)["state_dict"]
    sd = {k: v.float() for k, v in sd.items() if not k.startswith("loss.")}
    model.load_state_dict(sd)
    return model.eval()


def config_dict(cfg: VQTrainConfig) -> dict:
    return asdict(cfg)
