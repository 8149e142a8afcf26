"""A tiny open_clip CLIP for the shapes world: config, training, zero-shot evaluation.

The architecture is an ordinary open_clip ViT CLIP described by a model-config JSON,
with the standard BPE tokenizer (context 77) and 64-wide attention heads, so the
saved state dict has the original CLIP layout and loads with

    open_clip.add_model_config("checkpoints/toy-clip.json")
    open_clip.create_model("toy-clip", pretrained="checkpoints/toy-clip.safetensors")

Images are fed at 64 px, normalized with the OpenAI CLIP mean/std (open_clip's default).

Training is contrastive, with two twists that make shapes learnable in minutes on a CPU:
every step scores each image against all 280 canonical captions (so the negatives that
differ only by shape or one colour are always present), and targets are multi-positive
(any caption consistent with the image counts, which also teaches partial captions such
as "a red circle").  Images get the augmentations a guided run throws at CLIP: crops and
zooms (drawn by the renderer), small rotations and stretches, flips, colour jitter, blur
and noise.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from clipgan.toyworld import render as rw

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class ClipArch:
    """open_clip model config; attention heads are 64 wide everywhere.

    vision "resnet" is open_clip's ModifiedResNet (CLIP's RN layout: attention pooling with
    width * 32 / 64 heads); "vit" a VisionTransformer.  The ResNet learns shape from the
    renders far sooner on a CPU budget: a tiny ViT sits at chance on shape for thousands of
    steps while colour is already perfect.
    """

    embed_dim: int = 64
    image_size: int = 64
    vision: str = "resnet"
    resnet_layers: tuple[int, ...] = (1, 1, 1, 1)
    resnet_width: int = 8
    patch_size: int = 8
    vision_width: int = 128
    vision_layers: int = 4
    text_width: int = 64  # the 49408-token embedding costs 6.3 MB in fp16 at width 64
    text_layers: int = 2

    def to_open_clip(self) -> dict:
        if self.vision == "resnet":
            vision = {"image_size": self.image_size, "layers": list(self.resnet_layers),
                      "width": self.resnet_width}
        else:
            vision = {"image_size": self.image_size, "layers": self.vision_layers,
                      "width": self.vision_width, "patch_size": self.patch_size}
        return {
            "embed_dim": self.embed_dim,
            "vision_cfg": vision,
            "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": self.text_width,
                         "heads": self.text_width // 64, "layers": self.text_layers},
        }


@dataclass
class ClipTrainConfig:
    arch: ClipArch = field(default_factory=ClipArch)
    steps: int = 1500
    batch: int = 128
    lr: float = 1e-3
    warmup: int = 100
    weight_decay: float = 0.05
    seed: int = 0
    eval_seed: int = 1_000_003  # fresh renders for the zero-shot figures
    eval_n: int = 1000
    noise: float = 0.04  # max std of added gaussian noise
    jitter: float = 0.1  # brightness / contrast / saturation jitter amplitude
    bf16: bool = True  # CPU autocast: a real speed-up on AVX-512 BF16 machines, far slower elsewhere
    eval_every: int = 0  # >0: log a small zero-shot check every this many steps
    shape_init: bool = True  # sin-cos positions and edge filters at the start (see below)
    init_from: str | None = None  # start from these weights (a .safetensors of the same arch): fine-tuning
    # the renders' radii (image half-widths); None: render.TRAIN_RANGES's. Large shapes only: a small shape
    # is then a worse picture of its caption, and guidance is pushed to draw it larger
    sizes: tuple[float, float] | None = None
    # Hard negatives: this share of each batch is shapeless blobs / speckle in two colours, which
    # only the shape-free captions describe, so "right colours, no shape" scores low for every shape.
    blob_share: float = 0.0
    # Adversarial training of the image tower (PGD in pixel space, L2 ball of radius adv_eps per
    # image in [0, 1] units): robust towers have input gradients that draw the object.
    adv_eps: float = 0.0
    adv_steps: int = 3
    adv_warmup: int = 0  # steps over which the radius grows from 0: robust training from scratch
    # Guided negatives (negatives.py): this share of each batch is pictures a guided run drew
    # against this very CLIP, refreshed every guided_every steps; needs a toy VQGAN folder.
    guided_share: float = 0.0
    guided_every: int = 100
    guided_n: int = 32
    guided_keep: tuple[int, ...] = (20, 40, 60)
    recon_share: float = 0.0  # share of renders seen through the VQGAN (with guided negatives)
    # "shapeless": a guided picture is taught as a blob of the asked colours; "against": it only
    # competes with a render of its own caption for that caption (a discriminator's view)
    guided_label: str = "shapeless"
    guided_size: int = 64  # 32: negatives drawn as a coarse-to-fine run's coarse stage
    guided_contrast: float = 0.0  # the other shapes pushed away while drawing them (runsetup's contrast)
    # a CLIP (.safetensors, its .json beside it) that drafts at 32 px first: the negatives are then drawn
    # as the defaults draw, with the CLIP being trained as the refinement's partner (needs guided_contrast)
    guided_draft: str | None = None
    guided_draft_steps: int = 50
    vqgan_dir: str | None = None
    # Denoised estimates (denoised.py): this share of the renders is replaced by a toy UNet's
    # estimate of the clean picture from the render noised to a timestep below denoised_t_max
    # (a share of its schedule): what a guided diffusion run scores. Needs a diffusers UNet folder.
    denoised_share: float = 0.0
    denoised_t_max: float = 0.8
    diffusion_dir: str | None = None
    # A second reader of another CLIP's text space: its `frozen` part ("text": all but the image
    # tower; "embedding": the token embedding only) comes from this .safetensors and stays as it
    # is, so only the rest would need shipping beside that CLIP.
    text_from: str | None = None
    frozen: str = "text"


def build(arch: ClipArch) -> torch.nn.Module:
    from open_clip.model import CLIP
    cfg = arch.to_open_clip()
    return CLIP(cfg["embed_dim"], cfg["vision_cfg"], cfg["text_cfg"])


def normalize(images: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(OPENAI_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(OPENAI_STD).view(1, 3, 1, 1)
    return (images - mean) / std


def augment(x: torch.Tensor, cfg: ClipTrainConfig, g: torch.Generator) -> torch.Tensor:
    """Flips, colour jitter, blur and noise on a batch in [0, 1]."""
    n = x.shape[0]
    r = lambda *s: torch.rand(*s, generator=g)  # noqa: E731
    flip = r(n) < 0.5
    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
    j = cfg.jitter
    x = x * (1 + j * (2 * r(n, 1, 1, 1) - 1))  # brightness
    mean = x.mean((1, 2, 3), keepdim=True)
    x = mean + (x - mean) * (1 + j * (2 * r(n, 1, 1, 1) - 1))  # contrast
    grey = x.mean(1, keepdim=True)
    x = grey + (x - grey) * (1 + j * (2 * r(n, 1, 1, 1) - 1))  # saturation
    blur = r(n) < 0.3  # resampling blur, as from resized cutouts
    if blur.any():
        small = F.interpolate(x[blur], scale_factor=0.5, mode="bilinear", antialias=True)
        x[blur] = F.interpolate(small, size=x.shape[-2:], mode="bilinear")
    x = x + torch.randn(x.shape, generator=g) * cfg.noise * r(n, 1, 1, 1)
    return x.clamp(0, 1)


class CaptionBank:
    """Every caption the world can produce, tokenized once, with its (fg, bg, shape) labels.

    Labels are indices into COLOR_NAMES / SHAPES, with -1 where a template leaves the
    attribute out.
    """

    def __init__(self):
        import open_clip
        tok = open_clip.get_tokenizer("ViT-B-32")  # the standard CLIP BPE, context 77
        texts, labels = [], []
        for ti, t in enumerate(rw.TEMPLATES):
            fields = rw.template_fields(t)
            for s, f, b in self._combos(fields):
                spec = rw.Spec(rw.SHAPES[s if s >= 0 else 0], rw.COLOR_NAMES[f if f >= 0 else 0],
                               rw.COLOR_NAMES[b if b >= 0 else 0])
                texts.append(rw.caption(spec, t))
                labels.append((f, b, s, ti))
        self.texts = texts
        self.labels = torch.tensor(labels)
        self.tokens = tok(texts)
        self.length = int((self.tokens != 0).sum(1).max())  # tokens past EOT never matter
        self.canonical = (self.labels[:, 3] == 0).nonzero().squeeze(1)
        # captions that name no shape and both colours: the only true ones for a blob
        self.shapeless = ((self.labels[:, 2] < 0) & (self.labels[:, :2] >= 0).all(1)).nonzero().squeeze(1)

    @staticmethod
    def _combos(fields):
        nc, ns = len(rw.COLOR_NAMES), len(rw.SHAPES)
        for s in range(ns) if "shape" in fields else [-1]:
            for f in range(nc) if "fg" in fields else [-1]:
                for b in range(nc) if "bg" in fields else [-1]:
                    if f < 0 or b < 0 or f != b:
                        yield s, f, b

    def consistent(self, idx: torch.Tensor, specs_lab: torch.Tensor) -> torch.Tensor:
        """(N, T) bool: caption idx[t] describes image n truthfully."""
        lab = self.labels[idx, :3]  # (T, 3)
        ok = (lab.unsqueeze(0) == specs_lab.unsqueeze(1)) | (lab.unsqueeze(0) < 0)
        return ok.all(-1)


def spec_labels(specs: list[rw.Spec]) -> torch.Tensor:
    return torch.tensor([(rw.COLOR_NAMES.index(s.fg), rw.COLOR_NAMES.index(s.bg),
                          rw.SHAPES.index(s.shape)) for s in specs])


def encode_text_short(model, tokens: torch.Tensor) -> torch.Tensor:
    """open_clip's encode_text on tokens cut after the longest EOT.

    With the causal mask nothing after EOT reaches the pooled EOT position, so this
    equals model.encode_text on the full 77 tokens, at a fraction of the cost.
    """
    n = tokens.shape[1]
    x = model.token_embedding(tokens) + model.positional_embedding[:n]
    x = model.transformer(x, attn_mask=model.attn_mask[:n, :n])
    x = model.ln_final(x)
    x = x[torch.arange(x.shape[0]), tokens.argmax(-1)]
    return x @ model.text_projection


def blobs(n: int, size: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n shapeless two-colour images (N, 3, size, size) and their (fg, bg) colour labels.

    Half are smooth blobs (low-resolution noise, upsampled and thresholded), half speckle
    (finer noise): the colour-right, shape-wrong pictures a guided run drifts to.
    """
    nc = len(rw.COLOR_NAMES)
    fg = torch.randint(nc, (n,), generator=g)
    bg = (fg + torch.randint(1, nc, (n,), generator=g)) % nc
    masks = []
    for k in range(n):
        res = int(torch.randint(3, 6, (1,), generator=g)) if k % 2 == 0 else int(torch.randint(8, 17, (1,), generator=g))
        noise = torch.rand(1, 1, res, res, generator=g)
        up = F.interpolate(noise, size=(size, size), mode="bicubic" if k % 2 == 0 else "nearest", align_corners=None if k % 2 else False)
        share = 0.15 + 0.35 * float(torch.rand(1, generator=g))
        thr = torch.quantile(up.flatten(), 1 - share)
        masks.append(((up - thr) * 40).clamp(0, 1)[0])
    a = torch.stack(masks)  # (N, 1, H, W)
    cols = torch.stack([rw.color_tensor(c) for c in rw.COLOR_NAMES])
    img = cols[bg].view(n, 3, 1, 1) + (cols[fg] - cols[bg]).view(n, 3, 1, 1) * a
    return img, torch.stack([fg, bg], 1)


def contrastive(img: torch.Tensor, txt: torch.Tensor, pos: torch.Tensor, scale) -> torch.Tensor:
    """Multi-positive symmetric InfoNCE on normalized features; pos (B, T) marks true captions."""
    logits = scale * img @ txt.T
    rows = pos.sum(1) > 0  # images no caption describes only count as negatives for the texts
    i2t = -(pos[rows] / pos[rows].sum(1, keepdim=True) * logits[rows].log_softmax(1)).sum(1).mean()
    has = pos.sum(0) > 0  # texts with at least one matching image in the batch
    pt = pos[:, has]
    t2i = -(pt / pt.sum(0, keepdim=True) * logits[:, has].log_softmax(0)).sum(0).mean()
    return 0.5 * (i2t + t2i)


def pgd(model, x: torch.Tensor, txt: torch.Tensor, pos: torch.Tensor, scale, cfg: ClipTrainConfig,
        g: torch.Generator, eps: float | None = None) -> torch.Tensor:
    """x (in [0, 1]) moved within an L2 ball of radius eps (default adv_eps) per image to raise the loss."""
    eps = cfg.adv_eps if eps is None else eps
    n = x.shape[0]
    step = 2.5 * eps / cfg.adv_steps
    d = torch.randn(x.shape, generator=g)
    d = d / d.flatten(1).norm(dim=1).view(-1, 1, 1, 1) * eps * torch.rand(n, 1, 1, 1, generator=g)
    txt, scale = txt.detach(), float(scale.detach())
    for _ in range(cfg.adv_steps):
        d.requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            img = F.normalize(model.encode_image(normalize((x + d).clamp(0, 1))).float(), dim=-1)
        (grad,) = torch.autograd.grad(contrastive(img, txt, pos, scale), d)
        with torch.no_grad():
            d = d + step * grad / grad.flatten(1).norm(dim=1).clamp(min=1e-12).view(-1, 1, 1, 1)
            norm = d.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
            d = d * (eps / norm).clamp(max=1)
    return (x + d.detach()).clamp(0, 1)


def frozen_names(model, frozen: str) -> list[str]:
    """The state-dict names a reader shares with its CLIP: "text" (all but the image tower) or "embedding"."""
    if frozen not in ("text", "embedding"):
        raise ValueError(f"frozen must be text or embedding, not {frozen!r}")
    keep = (lambda k: not k.startswith("visual.")) if frozen == "text" else (lambda k: k == "token_embedding.weight")
    return [k for k in model.state_dict() if keep(k)]


def freeze_from(model, path: str, frozen: str) -> None:
    """Load the `frozen` part (frozen_names) from `path` and freeze it; the rest trains."""
    from safetensors.torch import load_file

    names = frozen_names(model, frozen)
    given = load_file(path)
    missing = [k for k in names if k not in given]
    if missing:
        raise ValueError(f"{path} lacks {missing[0]} (not a CLIP of this architecture)")
    model.load_state_dict({k: given[k].float() for k in names}, strict=False)
    for name, p in model.named_parameters():
        p.requires_grad_(name not in names)


def _param_groups(model, wd):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "embedding" in name or "logit_scale" in name else decay).append(p)
    return [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]


def lr_at(step: int, cfg: ClipTrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * t))


def render_ranges(cfg: ClipTrainConfig) -> rw.SpecRanges:
    """Where the training renders' layouts come from: the world's training ranges, radii from cfg.sizes if set."""
    return replace(rw.TRAIN_RANGES, size=tuple(cfg.sizes)) if cfg.sizes else rw.TRAIN_RANGES


def train(cfg: ClipTrainConfig, progress: bool = True, position: int = 0, pool=None,
          denoised=None) -> tuple[torch.nn.Module, dict]:
    """Train a CLIP on fresh renders; returns the model (fp32, eval mode) and a log.

    pool: a negatives.Pool, with cfg.guided_share (passed in: negatives.py builds on this module);
    denoised: a denoised.Denoised, with cfg.denoised_share."""
    from tqdm import tqdm
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    model = build(cfg.arch)
    if cfg.init_from:
        from safetensors.torch import load_file
        model.load_state_dict({k: v.float() for k, v in load_file(cfg.init_from).items()})
    elif cfg.shape_init and cfg.arch.vision == "vit":
        init_sincos(model.visual)
        init_patch_filters(model.visual)
    if cfg.text_from:
        freeze_from(model, cfg.text_from, cfg.frozen)
    text_grad = not (cfg.text_from and cfg.frozen == "text")  # a frozen text tower needs no graph
    bank = CaptionBank()
    tokens = bank.tokens[:, : bank.length]
    opt = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=(0.9, 0.98))
    n_var = len(bank.texts)
    if cfg.guided_share and pool is None:
        raise ValueError("guided negatives need a negatives.Pool (see train.run_clip)")
    if cfg.denoised_share and denoised is None:
        raise ValueError("denoised estimates need a denoised.Denoised (see train.run_clip)")
    ranges = render_ranges(cfg)
    t0 = time.time()
    log = []
    bar = tqdm(range(cfg.steps), desc="toy-clip", disable=not progress,
               position=position, mininterval=2)
    for step in bar:
        n_blob = round(cfg.batch * cfg.blob_share)
        n_guided = round(cfg.batch * cfg.guided_share)
        if pool is not None and pool.maybe_refresh(model, step, g):
            bar.write(f"step {step}: {len(pool.images)} guided negatives")
        specs = rw.sample_specs(cfg.batch - n_blob - n_guided, g, ranges)
        x = rw.render_batch(specs, cfg.arch.image_size)
        lab = spec_labels(specs)
        if denoised is not None:
            x = denoised(x, g)
        if pool is not None:
            x = pool.reconstruct(x, g)
            gx, gl = pool.sample(n_guided, g)
            if cfg.guided_label == "against":  # each beside a render of what it was asked to be
                k = n_guided // 2
                gx, gl = gx[:k], gl[:k]
                partners = pool.partners(gl, g)
                x = torch.cat([x, rw.render_batch(partners, cfg.arch.image_size)])
                lab = torch.cat([lab, spec_labels(partners)])
                gl = torch.full_like(gl, -3)  # no caption is true of it
            else:
                gl = gl.clone()
                gl[:, 2] = -2
            x, lab = torch.cat([x, gx]), torch.cat([lab, gl])
        if n_blob:
            bx, bl = blobs(n_blob, cfg.arch.image_size, g)
            x = torch.cat([x, bx])
            # shape label -2: no caption naming a shape is true of a blob
            lab = torch.cat([lab, torch.cat([bl, torch.full((n_blob, 1), -2)], 1)])
        x = augment(x, cfg, g)
        # texts: all canonical captions + one random other phrasing per image
        extra = torch.randint(n_var, (cfg.batch,), generator=g)
        idx = torch.cat([bank.canonical, extra] + ([bank.shapeless] if n_blob or n_guided else [])).unique()
        pos = bank.consistent(idx, lab).float()  # (B, T)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        scale = model.logit_scale.exp().clamp(max=100)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16), torch.set_grad_enabled(text_grad):
            txt = F.normalize(encode_text_short(model, tokens[idx]).float(), dim=-1)
        eps = cfg.adv_eps * min(1.0, (step + 1) / cfg.adv_warmup) if cfg.adv_warmup else cfg.adv_eps
        if eps > 0:
            x = pgd(model, x, txt, pos, scale, cfg, g, eps)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            img = F.normalize(model.encode_image(normalize(x)).float(), dim=-1)
        loss = contrastive(img, txt, pos, scale)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        if step % 50 == 0 or step == cfg.steps - 1:
            entry = {"step": step, "loss": round(loss.item(), 4)}
            if cfg.eval_every and (step % cfg.eval_every == 0 or step == cfg.steps - 1):
                model.eval()
                entry.update(zero_shot(model, n=200, seed=cfg.eval_seed + 1))
                model.train()
            log.append(entry)
            bar.set_postfix(loss=f"{loss.item():.3f}")
            if cfg.eval_every:
                bar.write(str(entry))
    model.eval()
    return model, {"train_seconds": round(time.time() - t0, 1), "log": log}


@torch.no_grad()
def zero_shot(model, n: int = 1000, seed: int = 1_000_003, size: int = 64,
              batch: int = 250) -> dict[str, float]:
    """Zero-shot accuracy on fresh renders, one attribute at a time.

    For each image the candidates are the canonical captions that differ from the true
    one only in that attribute (7 foreground colours, 7 background colours, 5 shapes).
    Uses the model's own encode_text on full 77-token inputs.
    """
    import open_clip
    tok = open_clip.get_tokenizer("ViT-B-32")
    nc, ns = len(rw.COLOR_NAMES), len(rw.SHAPES)
    # text features for every (fg, bg, shape); fg == bg rows are never a candidate
    table = torch.zeros(nc, nc, ns, model.text_projection.shape[1])
    combos = [(f, b, s) for f in range(nc) for b in range(nc) for s in range(ns) if f != b]
    texts = [rw.caption(rw.Spec(rw.SHAPES[s], rw.COLOR_NAMES[f], rw.COLOR_NAMES[b]))
             for f, b, s in combos]
    feats = F.normalize(model.encode_text(tok(texts)).float(), dim=-1)
    for (f, b, s), v in zip(combos, feats):
        table[f, b, s] = v
    specs = rw.sample_specs(n, seed)
    lab = spec_labels(specs)
    img = torch.cat([F.normalize(model.encode_image(normalize(rw.render_batch(specs[i:i + batch], size))).float(), dim=-1)
                     for i in range(0, n, batch)])
    hits = {"fg": 0, "bg": 0, "shape": 0}
    for k in range(n):
        f, b, s = lab[k].tolist()
        x = img[k]
        fg = (table[:, b, s] @ x).masked_fill(torch.arange(nc) == b, -9)
        bg = (table[f, :, s] @ x).masked_fill(torch.arange(nc) == f, -9)
        sh = table[f, b, :] @ x
        hits["fg"] += int(fg.argmax() == f)
        hits["bg"] += int(bg.argmax() == b)
        hits["shape"] += int(sh.argmax() == s)
    return {k: v / n for k, v in hits.items()}


def save(model, arch: ClipArch, out_dir: Path, name: str = "toy-clip") -> tuple[Path, Path]:
    """Write NAME.json (open_clip model config) and NAME.safetensors (fp16 state dict)."""
    from safetensors.torch import save_file
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg_path = out_dir / f"{name}.json"
    cfg_path.write_text(json.dumps(arch.to_open_clip(), indent=4) + "\n")
    sd = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    w_path = out_dir / f"{name}.safetensors"
    save_file(sd, str(w_path), metadata={"format": "pt"})
    return cfg_path, w_path


def load(cfg_path: Path, weights: Path):
    """Load through open_clip's own registry, exactly as the package does."""
    import open_clip
    open_clip.add_model_config(str(cfg_path))
    return open_clip.create_model(Path(cfg_path).stem, pretrained=str(weights)).eval()


def config_dict(cfg: ClipTrainConfig) -> dict:
    return asdict(cfg)


@torch.no_grad()
def init_sincos(visual, scale: float = 1.0) -> None:
    """Start the ViT's positional embedding at a 2D sin-cos pattern (class token at 0).

    Random init leaves position nearly invisible next to colour, and a tiny ViT then sits
    on a long plateau before it learns anything about shape.
    """
    pe = visual.positional_embedding
    n, d = pe.shape
    side = int(round((n - 1) ** 0.5))
    q = d // 4
    freq = 1.0 / (100.0 ** (torch.arange(q) / q))
    ys, xs = torch.meshgrid(torch.arange(side, dtype=torch.float32),
                            torch.arange(side, dtype=torch.float32), indexing="ij")
    ang_x, ang_y = xs.reshape(-1, 1) * freq, ys.reshape(-1, 1) * freq
    grid = torch.cat([ang_x.sin(), ang_x.cos(), ang_y.sin(), ang_y.cos()], 1)
    pe[0].zero_()
    pe[1:, : 4 * q] = grid * scale


@torch.no_grad()
def init_patch_filters(visual, n_colour: int = 16, gain: float = 3.0) -> None:
    """Start the ViT's patch embedding with mostly zero-mean (edge-sensitive) filters.

    With random filters a patch's embedding is dominated by its mean colour, so the
    geometry inside edge patches barely registers and shape learning stalls.  Here all
    but `n_colour` filters have zero spatial mean per input channel: flat patches excite
    only the colour filters, edge patches light up the rest.
    """
    w = visual.conv1.weight  # (width, 3, p, p)
    edge = w[n_colour:]
    edge -= edge.mean((2, 3), keepdim=True)
    edge *= gain
