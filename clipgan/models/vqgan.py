"""A taming VQGAN built from its yaml and checkpoint, without taming.models or lightning.

Supported configs: taming.models.vqgan.VQModel (imagenet f16, wikiart, ...), GumbelVQ
(openimages f8 8192) and the first stage of cond_transformer.Net2NetTransformer (coco, sflckr).
The loss section (LPIPS, discriminator) is never built and `loss.*` weights are dropped.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import yaml
from torch import Tensor, nn

from clipgan.errors import ClipganError
from clipgan.models.weights import load_state

VQ_TARGETS = {"taming.models.vqgan.VQModel": False, "taming.models.vqgan.GumbelVQ": True}
NET2NET = "taming.models.cond_transformer.Net2NetTransformer"
_DDCONFIG_KEYS = ("ch", "out_ch", "ch_mult", "num_res_blocks", "attn_resolutions", "in_channels", "resolution", "z_channels")


class VQGAN(nn.Module):
    """Encoder, quantizer codebook and decoder; images are in [0, 1] at this interface."""

    def __init__(self, ddconfig: dict, n_embed: int, embed_dim: int, gumbel: bool = False):
        super().__init__()
        # taming imports stay here: its package __init__ is light, taming.models is not
        from taming.modules.diffusionmodules.model import Decoder, Encoder
        from taming.modules.vqvae.quantize import GumbelQuantize, VectorQuantizer2

        self.gumbel = gumbel
        self.encoder = Encoder(**ddconfig)
        with contextlib.redirect_stdout(io.StringIO()):  # taming prints the z shape
            self.decoder = Decoder(**ddconfig)
        z_channels = ddconfig["z_channels"]
        if gumbel:
            self.quantize = GumbelQuantize(z_channels, embed_dim, n_embed=n_embed)
        else:
            self.quantize = VectorQuantizer2(n_embed, embed_dim, beta=0.25)
        self.quant_conv = nn.Conv2d(z_channels, embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(embed_dim, z_channels, 1)
        self.factor = 2 ** (len(ddconfig["ch_mult"]) - 1)
        self.embed_dim = embed_dim

    @property
    def codebook(self) -> Tensor:
        """(n_embed, embed_dim): the vectors a latent cell may take."""
        return self.quantize.embed.weight if self.gumbel else self.quantize.embedding.weight

    def encode(self, image: Tensor) -> Tensor:
        """Image (B, 3, H, W) in [0, 1] -> quantized latent (B, embed_dim, H/f, W/f)."""
        h = self.quant_conv(self.encoder(image * 2 - 1))
        if self.gumbel:
            # the most likely code, without gumbel noise, so encoding is deterministic
            idx = self.quantize.proj(h).argmax(1)
            return self.codebook[idx].movedim(-1, 1)
        from clipgan.losses import vector_quantize

        return vector_quantize(h, self.codebook)

    def decode(self, z_q: Tensor) -> Tensor:
        """Quantized latent -> image in [-1, 1] (unclamped, as the decoder outputs it)."""
        return self.decoder(self.post_quant_conv(z_q))


def read_config(path: str | Path) -> tuple[dict, bool, str]:
    """(first-stage params, is_gumbel, key prefix in the checkpoint) from a taming yaml."""
    path = Path(path)
    if not path.is_file():
        raise ClipganError(f"VQGAN config not found: {path}")
    try:
        cfg = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ClipganError(f"VQGAN config {path} is not valid YAML ({type(e).__name__})") from None
    model = cfg.get("model") if isinstance(cfg, dict) else None
    if not isinstance(model, dict) or "target" not in model:
        raise ClipganError(f"{path} is not a taming VQGAN config (no model.target)")
    target, params, prefix = model["target"], model.get("params") or {}, ""
    if target == NET2NET:
        first = params.get("first_stage_config") or {}
        target, params, prefix = first.get("target"), first.get("params") or {}, "first_stage_model."
    if target not in VQ_TARGETS:
        raise ClipganError(f"{path}: unsupported VQGAN target {target!r}; expected one of {', '.join(VQ_TARGETS)}")
    dd = params.get("ddconfig")
    missing = [k for k in ("n_embed", "embed_dim") if k not in params]
    missing += [f"ddconfig.{k}" for k in _DDCONFIG_KEYS if not isinstance(dd, dict) or k not in dd]
    if missing:
        raise ClipganError(f"{path} is not a taming VQGAN config (missing {', '.join(missing)})")
    if params.get("remap"):
        raise ClipganError(f"{path}: configs with a codebook remap file are not supported")
    return params, VQ_TARGETS[target], prefix


def load_vqgan(config: str | Path, checkpoint: str | Path, *, trust: bool = False, device="cpu") -> VQGAN:
    """Build the model the yaml describes and fill it from the checkpoint (frozen, eval mode)."""
    params, gumbel, prefix = read_config(config)
    dd = {k: v for k, v in params["ddconfig"].items()}
    dd.setdefault("dropout", 0.0)
    try:
        model = VQGAN(dd, int(params["n_embed"]), int(params["embed_dim"]), gumbel=gumbel)
    except (TypeError, ValueError, KeyError) as e:
        raise ClipganError(f"VQGAN config {config} has invalid values ({e})") from None
    state = load_state(checkpoint, trust=trust)
    state = state.get("state_dict", state)
    weights = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix) and not k.startswith(prefix + "loss.")}
    _check_fit(model, weights, checkpoint)
    model.load_state_dict(weights, strict=False)
    return model.float().eval().requires_grad_(False).to(device)


def _check_fit(model: nn.Module, weights: dict, checkpoint) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in weights]
    wrong = [
        f"{k} {tuple(getattr(weights[k], 'shape', ()))} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in weights and getattr(weights[k], "shape", None) != v.shape
    ]
    if missing:
        raise ClipganError(f"checkpoint {checkpoint} does not fit the config: missing {_few(missing)}")
    if wrong:
        raise ClipganError(f"checkpoint {checkpoint} does not fit the config: wrong shape {_few(wrong)}")


def _few(items: list[str], n: int = 3) -> str:
    more = f" (+{len(items) - n} more)" if len(items) > n else ""
    return ", ".join(items[:n]) + more
