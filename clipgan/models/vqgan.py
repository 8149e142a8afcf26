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

from clipgan.errors import ClipganError, brief
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
    if target == NET2NET and isinstance(params, dict):
        first = params.get("first_stage_config") or {}
        first = first if isinstance(first, dict) else {}
        target, params, prefix = first.get("target"), first.get("params") or {}, "first_stage_model."
    if not isinstance(target, str) or target not in VQ_TARGETS:
        raise ClipganError(f"{path}: unsupported VQGAN target {brief(target)}; expected one of {', '.join(VQ_TARGETS)}")
    if not isinstance(params, dict):
        raise ClipganError(f"{path} is not a taming VQGAN config (model params are not a mapping)")
    dd = params.get("ddconfig")
    missing = [k for k in ("n_embed", "embed_dim") if k not in params]
    missing += [f"ddconfig.{k}" for k in _DDCONFIG_KEYS if not isinstance(dd, dict) or k not in dd]
    if missing:
        raise ClipganError(f"{path} is not a taming VQGAN config (missing {', '.join(missing)})")
    if params.get("remap"):
        raise ClipganError(f"{path}: configs with a codebook remap file are not supported")
    _check_values(path, params)
    return params, VQ_TARGETS[target], prefix


# bounds far beyond published models (ch 128, ch_mult up to 5 levels, 16384 codes), so that a
# hand-edited yaml fails here rather than inside taming or by allocating the machine's memory
_LIMITS = {"n_embed": 2**20, "embed_dim": 4096, "ch": 4096, "z_channels": 4096, "num_res_blocks": 16,
           "resolution": 2**16, "channels": 8192, "levels": 8}


def _check_values(path, params: dict) -> None:
    """Every number the model is built from: whole, positive, within _LIMITS; images have 3 channels."""
    dd = params["ddconfig"]

    def whole(value, name: str, low: int = 1, high: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
            bound = f" and at most {high}" if high is not None else ""
            raise ClipganError(f"VQGAN config {path}: {name} must be a whole number of at least {low}{bound}, got {brief(value)}")
        return value

    whole(params["n_embed"], "n_embed", 1, _LIMITS["n_embed"])
    whole(params["embed_dim"], "embed_dim", 1, _LIMITS["embed_dim"])
    for key in ("ch", "z_channels", "num_res_blocks", "resolution"):
        whole(dd[key], f"ddconfig.{key}", 1, _LIMITS[key])
    for key in ("in_channels", "out_ch"):
        if dd[key] != 3 or isinstance(dd[key], bool):
            raise ClipganError(f"VQGAN config {path}: ddconfig.{key} must be 3 (RGB), got {brief(dd[key])}")
    mult = dd["ch_mult"]
    if not isinstance(mult, (list, tuple)) or not 1 <= len(mult) <= _LIMITS["levels"]:
        raise ClipganError(f"VQGAN config {path}: ddconfig.ch_mult must be a list of 1 to {_LIMITS['levels']} "
                           f"whole numbers, got {brief(mult)}")
    for m in mult:
        whole(m, "each ddconfig.ch_mult", 1, _LIMITS["channels"] // dd["ch"])
    attn = dd["attn_resolutions"]
    if not isinstance(attn, (list, tuple)) or not all(isinstance(a, int) and not isinstance(a, bool) for a in attn):
        raise ClipganError(f"VQGAN config {path}: ddconfig.attn_resolutions must be a list of whole numbers, got {brief(attn)}")
    for key in ("double_z", "give_pre_end", "tanh_out", "resamp_with_conv"):
        if key in dd and not isinstance(dd[key], bool):
            raise ClipganError(f"VQGAN config {path}: ddconfig.{key} must be true or false, got {brief(dd[key])}")
    dropout = dd.get("dropout", 0.0)
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ClipganError(f"VQGAN config {path}: ddconfig.dropout must be a number from 0 to 1, got {brief(dropout)}")


def load_vqgan(config: str | Path, checkpoint: str | Path, *, trust: bool = False, device="cpu") -> VQGAN:
    """Build the model the yaml describes and fill it from the checkpoint (frozen, eval mode)."""
    params, gumbel, prefix = read_config(config)
    dd = {k: v for k, v in params["ddconfig"].items()}
    dd.setdefault("dropout", 0.0)
    try:
        model = VQGAN(dd, params["n_embed"], params["embed_dim"], gumbel=gumbel)
    except Exception as e:  # taming's constructors on values that pass the checks but do not go together
        raise ClipganError(f"VQGAN config {config} has invalid values ({type(e).__name__}: {str(e)[:120]})") from None
    state = load_state(checkpoint, trust=trust)
    state = state.get("state_dict", state)
    if not isinstance(state, dict):
        raise ClipganError(f"checkpoint {checkpoint} does not hold a state dict")
    weights = {k[len(prefix):]: v for k, v in state.items()
               if isinstance(k, str) and k.startswith(prefix) and not k.startswith(prefix + "loss.")}
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
