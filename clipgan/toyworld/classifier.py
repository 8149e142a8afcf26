"""A small CNN that names the shape in an image, for benchmarks of generated images.

It is trained on renders (never on CLIP outputs), so it is an independent judge of
whether a guided run drew the shape its prompt asked for.  `clipgan.toyworld.train`
trains it together with the toy CLIP/VQGAN and saves it to
`checkpoints/toy-shape-classifier.safetensors` (about 0.1 MB); training from scratch
takes well under a minute on a CPU, so `train()` is also fine to call on the fly.

    net = load("checkpoints/toy-shape-classifier.safetensors")
    names = predict(net, images)  # images (N, 3, H, W) in [0, 1], any H, W
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from clipgan.toyworld import render as rw

INPUT_SIZE = 64


@dataclass
class ClassifierConfig:
    steps: int = 400
    batch: int = 64
    lr: float = 3e-3
    width: int = 24
    seed: int = 0
    eval_seed: int = 3_000_003
    eval_n: int = 500


class ShapeNet(nn.Module):
    """Four conv stages, global pooling, one linear layer to len(SHAPES) logits."""

    def __init__(self, width: int = 24):
        super().__init__()
        w = width
        chans = [3, w, w, 2 * w, 2 * w]
        layers = []
        for a, b in zip(chans, chans[1:]):
            layers += [nn.Conv2d(a, b, 3, padding=1), nn.BatchNorm2d(b), nn.ReLU(), nn.MaxPool2d(2)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(2 * w, len(rw.SHAPES))

    def forward(self, x):
        """x (N, 3, H, W) in [0, 1] -> logits (N, len(SHAPES))."""
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=True)
        # colours carry no shape information: centre each image so only contrast matters
        x = x - x.mean((2, 3), keepdim=True)
        return self.head(self.features(x).amax((2, 3)))


def _batch(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    specs = rw.sample_specs(n, g, rw.TRAIN_RANGES)
    x = rw.render_batch(specs, INPUT_SIZE)
    flip = torch.rand(n, generator=g) < 0.5
    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
    x = x + torch.randn(x.shape, generator=g) * 0.05 * torch.rand(n, 1, 1, 1, generator=g)
    y = torch.tensor([rw.SHAPES.index(s.shape) for s in specs])
    return x.clamp(0, 1), y


def train(cfg: ClassifierConfig = ClassifierConfig(), progress: bool = False,
          position: int = 0) -> tuple[ShapeNet, dict]:
    from tqdm import tqdm
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    net = ShapeNet(cfg.width)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.steps)
    t0 = time.time()
    for _ in tqdm(range(cfg.steps), desc="toy-shape-classifier", disable=not progress,
                  position=position, mininterval=2):
        x, y = _batch(cfg.batch, g)
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    net.eval()
    return net, {"train_seconds": round(time.time() - t0, 1), "steps": cfg.steps}


@torch.no_grad()
def predict_proba(net: ShapeNet, images: torch.Tensor) -> torch.Tensor:
    """(N, len(SHAPES)) probabilities; images (N, 3, H, W) or (3, H, W) in [0, 1]."""
    x = images if images.dim() == 4 else images.unsqueeze(0)
    return net.eval()(x.float()).softmax(-1)


def predict(net: ShapeNet, images: torch.Tensor) -> list[str]:
    """Shape names, one per image."""
    return [rw.SHAPES[i] for i in predict_proba(net, images).argmax(-1).tolist()]


@torch.no_grad()
def accuracy(net: ShapeNet, n: int = 500, seed: int = 3_000_003, size: int = 64) -> float:
    specs = rw.sample_specs(n, seed)
    names = predict(net, rw.render_batch(specs, size))
    return sum(a == s.shape for a, s in zip(names, specs)) / n


def save(net: ShapeNet, path: Path) -> Path:
    from safetensors.torch import save_file
    sd = {k: v.detach().float().contiguous() for k, v in net.state_dict().items()}
    save_file(sd, str(path), metadata={"width": str(net.head.in_features // 2)})
    return Path(path)


def bundled() -> ShapeNet:
    """The judge the benches and semantic tests use: the classifier shipped in checkpoints/."""
    from clipgan.models.registry import bundled_dir

    return load(bundled_dir() / "toy-shape-classifier.safetensors")


def load(path: Path) -> ShapeNet:
    from safetensors import safe_open
    from safetensors.torch import load_file
    with safe_open(str(path), "pt") as f:
        width = int(f.metadata()["width"])
    net = ShapeNet(width)
    net.load_state_dict(load_file(str(path)))
    return net.eval()
