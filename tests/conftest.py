"""Tiny random models written in the published file formats, loaded through the real loaders."""

from __future__ import annotations

import contextlib
import json
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

TINY_DD = dict(double_z=False, z_channels=4, resolution=32, in_channels=3, out_ch=3, ch=32,
               ch_mult=[1, 2], num_res_blocks=1, attn_resolutions=[], dropout=0.0)
LPIPS_LOSS = {
    "target": "taming.modules.losses.vqperceptual.VQLPIPSWithDiscriminator",
    "params": {"disc_conditional": False, "disc_in_channels": 3, "disc_start": 10000, "disc_weight": 0.8, "codebook_weight": 1.0},
}
TINY_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 1, "layers": 1},
}


class TamingLayout(nn.Module):
    """Same attribute names as taming's VQModel / GumbelVQ, so the state dict keys match."""

    def __init__(self, dd: dict, n_embed: int, embed_dim: int, gumbel: bool):
        super().__init__()
        from taming.modules.diffusionmodules.model import Decoder, Encoder
        from taming.modules.vqvae.quantize import GumbelQuantize, VectorQuantizer2

        self.encoder, self.decoder = Encoder(**dd), Decoder(**dd)
        self.quantize = (GumbelQuantize(dd["z_channels"], embed_dim, n_embed) if gumbel
                         else VectorQuantizer2(n_embed, embed_dim, beta=0.25))
        self.quant_conv = nn.Conv2d(dd["z_channels"], embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(embed_dim, dd["z_channels"], 1)
        self.loss = nn.Conv2d(3, 3, 1)  # stands in for LPIPS/discriminator weights: must be ignored


def write_vqgan(folder: Path, kind: str = "vq", seed: int = 0, n_embed: int = 16, embed_dim: int = 4,
                extra: dict | None = None, dd: dict | None = None) -> tuple[Path, Path]:
    """A taming yaml + lightning-style ckpt. kind: vq | gumbel | net2net."""
    torch.manual_seed(seed)
    dd = dict(dd or TINY_DD)
    model = TamingLayout(dd, n_embed, embed_dim, gumbel=kind == "gumbel")
    with torch.no_grad():  # a codebook with some spread, like a trained one
        (model.quantize.embed if kind == "gumbel" else model.quantize.embedding).weight.normal_()
    params = {"embed_dim": embed_dim, "n_embed": n_embed, "ddconfig": dd, "lossconfig": LPIPS_LOSS}
    target = "taming.models.vqgan.GumbelVQ" if kind == "gumbel" else "taming.models.vqgan.VQModel"
    if kind == "gumbel":
        params["kl_weight"] = 1e-8
        params["temperature_scheduler_config"] = {"target": "taming.lr_scheduler.LambdaWarmUpCosineScheduler", "params": {}}
    state = model.state_dict()
    config = {"model": {"base_learning_rate": 4.5e-6, "target": target, "params": params}}
    if kind == "net2net":
        config = {"model": {"target": "taming.models.cond_transformer.Net2NetTransformer", "params": {
            "first_stage_config": {"target": target, "params": params},
            "cond_stage_config": "__is_unconditional__",
            "transformer_config": {"target": "taming.modules.transformer.mingpt.GPT", "params": {"n_layer": 1}}}}}
        state = {f"first_stage_model.{k}": v for k, v in state.items()}
        state["transformer.tok_emb.weight"] = torch.zeros(4, 4)
    state.update(extra or {})
    yaml_path, ckpt_path = folder / f"{kind}.yaml", folder / f"{kind}.ckpt"
    yaml_path.write_text(yaml.safe_dump(config))
    torch.save({"state_dict": state, "global_step": 7, "epoch": 1}, ckpt_path)
    return yaml_path, ckpt_path


def write_clip(folder: Path, name: str = "tiny-clip", seed: int = 0, fmt: str = "safetensors") -> tuple[Path, Path]:
    """An open_clip model-config JSON and random weights for it."""
    import open_clip

    folder.mkdir(parents=True, exist_ok=True)
    config = folder / f"{name}.json"
    config.write_text(json.dumps(TINY_CLIP))
    open_clip.add_model_config(config)
    torch.manual_seed(seed)
    model = open_clip.create_model(name)
    weights = folder / f"{name}.{fmt}"
    if fmt == "safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    else:
        torch.save(model.state_dict(), weights)
    return config, weights


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict:
    """Paths of tiny random models in every supported layout, written once per session."""
    folder = tmp_path_factory.mktemp("models")
    out = {kind: write_vqgan(folder, kind) for kind in ("vq", "gumbel", "net2net")}
    out["clip"] = write_clip(folder / "clip")
    return out


@pytest.fixture(scope="session")
def tiny_settings(tiny_models) -> dict:
    """Settings for generate() with the tiny models: small, fast, seeded."""
    yaml_path, ckpt_path = tiny_models["vq"]
    config, weights = tiny_models["clip"]
    return dict(vqgan_config=str(yaml_path), vqgan_checkpoint=str(ckpt_path), clip=(f"{config}:{weights}",),
                size=(32, 32), iterations=3, cutn=4, device="cpu", seed=1)


def tiny_cli_args(kw: dict) -> list[str]:
    """CLI options for the tiny models of `tiny_settings` at 32x32, seeded: one run's worth, no output flags."""
    return ["--vqgan-config", kw["vqgan_config"], "--vqgan-checkpoint", kw["vqgan_checkpoint"], "--clip", kw["clip"][0],
            "-s", "32", "32", "--cutn", "4", "--device", "cpu", "--seed", "5"]


def write_unet(folder: Path, seed: int = 0, schedule: dict | None = None, **config) -> Path:
    """A tiny random diffusers UNet2DModel (+ DDPM schedule), 32 px, in the diffusers layout."""
    from diffusers import DDPMScheduler, UNet2DModel

    torch.manual_seed(seed)
    kw = dict(sample_size=32, block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=4,
              down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
              add_attention=False)
    UNet2DModel(**{**kw, **config}).save_pretrained(folder, safe_serialization=True)
    DDPMScheduler(**(schedule or {})).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def unet_dir(tmp_path_factory) -> Path:
    """A tiny random diffusion model folder, written once per session."""
    pytest.importorskip("diffusers")
    return write_unet(tmp_path_factory.mktemp("unet") / "tiny-unet")


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread: on a shared 2-core machine, two spinning threads make small steps 5-10x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_loaded(tiny_settings):
    """(models, settings kwargs) with the tiny random models, loaded once per module."""
    from clipgan.config import Settings
    from clipgan.pipeline import load_models

    kwargs = dict(tiny_settings)
    return load_models(Settings(**kwargs)), kwargs


@contextlib.contextmanager
def local_server(handler, **attributes):
    """A real HTTP server on 127.0.0.1 (a free port) in a thread; `.url` is its address."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    for name, value in attributes.items():
        setattr(httpd, name, value)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def iterate_vqgan(vqgan, guides, z, *, init_weight: float = 0.0, tv_weight: float = 0.0, z_mask=None, **options):
    """optimize.iterate on a VQGAN latent with the standard loss terms (the loop's old signature)."""
    from clipgan.image_models import VQGANImage
    from clipgan.losses.terms import standard_terms
    from clipgan.optimize import iterate

    model = VQGANImage(vqgan, z)
    if z_mask is not None:
        model.hold_cells(z_mask)
    return iterate(model, standard_terms(guides, z, init_weight, tv_weight), **options)
