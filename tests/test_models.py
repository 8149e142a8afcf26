"""The VQGAN and CLIP loaders on tiny random models in the published formats."""

import argparse
import subprocess
import sys

import pytest
import torch
import yaml

from clipgan.errors import ClipganError
from clipgan.models.clip import load_clip, split_spec
from clipgan.models.vqgan import load_vqgan
from conftest import write_vqgan


@pytest.mark.parametrize("kind", ["vq", "gumbel", "net2net"])
def test_vqgan_loads_each_layout(tiny_models, kind):
    yaml_path, ckpt_path = tiny_models[kind]
    model = load_vqgan(yaml_path, ckpt_path)
    assert model.factor == 2 and model.codebook.shape == (16, 4) and model.gumbel == (kind == "gumbel")
    assert not any(p.requires_grad for p in model.parameters())
    image = torch.rand(1, 3, 32, 48)
    z = model.encode(image)
    assert z.shape == (1, 4, 16, 24)
    # encoded cells are codebook rows
    cells = z.movedim(1, -1).reshape(-1, 4)
    assert (torch.cdist(cells, model.codebook).min(1).values < 1e-5).all()
    assert model.decode(z).shape == (1, 3, 32, 48)


def test_vqgan_weights_are_the_written_ones_and_loss_keys_ignored(tiny_models):
    yaml_path, ckpt_path = tiny_models["net2net"]
    state = torch.load(ckpt_path, weights_only=True)["state_dict"]
    model = load_vqgan(yaml_path, ckpt_path)
    assert torch.equal(model.decoder.conv_out.weight, state["first_stage_model.decoder.conv_out.weight"])
    assert "loss.weight" not in model.state_dict()


def test_vqgan_reads_safetensors(tiny_models, tmp_path):
    from safetensors.torch import save_file

    yaml_path, ckpt_path = tiny_models["vq"]
    state = torch.load(ckpt_path, weights_only=True)["state_dict"]
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "w.safetensors"))
    model = load_vqgan(yaml_path, tmp_path / "w.safetensors")
    assert torch.equal(model.quantize.embedding.weight, state["quantize.embedding.weight"])


def test_missing_decoder_keys_are_named(tiny_models, tmp_path):
    yaml_path, ckpt_path = tiny_models["vq"]
    ckpt = torch.load(ckpt_path, weights_only=True)
    del ckpt["state_dict"]["decoder.conv_out.weight"]
    torch.save(ckpt, tmp_path / "x.ckpt")
    with pytest.raises(ClipganError, match="missing decoder.conv_out.weight"):
        load_vqgan(yaml_path, tmp_path / "x.ckpt")


def test_codebook_that_does_not_fit_is_named(tiny_models, tmp_path):
    _, ckpt = write_vqgan(tmp_path, "vq", n_embed=32)
    with pytest.raises(ClipganError, match=r"quantize.embedding.weight \(32, 4\) vs \(16, 4\)"):
        load_vqgan(tiny_models["vq"][0], ckpt)


def test_pickled_objects_need_trust(tiny_models, tmp_path):
    yaml_path, ckpt_path = tiny_models["vq"]
    ckpt = torch.load(ckpt_path, weights_only=True)
    ckpt["hparams"] = argparse.Namespace(lr=1.0)  # as old lightning checkpoints carry
    torch.save(ckpt, tmp_path / "old.ckpt")
    with pytest.raises(ClipganError, match="--trust-checkpoint"):
        load_vqgan(yaml_path, tmp_path / "old.ckpt")
    assert load_vqgan(yaml_path, tmp_path / "old.ckpt", trust=True).factor == 2


@pytest.mark.parametrize("text,match", [
    ("foo: 1\n", "not a taming VQGAN config"),
    ("model:\n  target: some.Other\n", "unsupported VQGAN target"),
    ("model:\n  target: taming.models.vqgan.VQModel\n  params: {n_embed: 4}\n", "missing embed_dim"),
    ("model: [unclosed\n", "not valid YAML"),
])
def test_bad_configs(tiny_models, tmp_path, text, match):
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(ClipganError, match=match):
        load_vqgan(tmp_path / "c.yaml", tiny_models["vq"][1])


def test_loading_never_imports_lightning_or_taming_models(tiny_models):
    yaml_path, ckpt_path = tiny_models["gumbel"]
    code = (f"import sys; from clipgan.models.vqgan import load_vqgan; load_vqgan({str(yaml_path)!r}, {str(ckpt_path)!r}); "
            "bad = [m for m in sys.modules if m.startswith(('pytorch_lightning', 'lightning', 'taming.models', 'taming.main'))]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_lpips_loss_config_is_never_built(tiny_models):
    config = yaml.safe_load(tiny_models["vq"][0].read_text())
    assert "LPIPS" in config["model"]["params"]["lossconfig"]["target"]  # the fixture names it, like real files
    load_vqgan(*tiny_models["vq"])  # and loading needs no VGG weights


def test_clip_from_config_json_and_weights(tiny_models):
    config, weights = tiny_models["clip"]
    p = load_clip(f"{config}:{weights}")
    assert p.input_size == 32
    image_emb = p.encode_image(torch.rand(3, 3, 32, 32))
    text_emb = p.encode_text(["a red circle", "a blue square"])
    assert image_emb.shape == (3, 32) and text_emb.shape == (2, 32)
    assert torch.allclose(image_emb.norm(dim=1), torch.ones(3)) and torch.allclose(text_emb.norm(dim=1), torch.ones(2))


def test_clip_weights_are_loaded_not_random(tiny_models, tmp_path):
    from conftest import write_clip

    config, weights = tiny_models["clip"]
    _, other = write_clip(tmp_path, name="tiny-clip", seed=5, fmt="pt")
    a, b = load_clip(f"{config}:{weights}"), load_clip(f"{config}:{other}")
    assert not torch.equal(a.encode_text(["x"]), b.encode_text(["x"]))
    assert torch.equal(a.encode_text(["x"]), load_clip(f"{config}:{weights}").encode_text(["x"]))


def test_clip_image_gradient_flows(tiny_models):
    config, weights = tiny_models["clip"]
    p = load_clip(f"{config}:{weights}")
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    p.encode_image(x).sum().backward()
    assert x.grad.abs().sum() > 0


def test_split_spec_keeps_colons_inside_paths():
    known = {"ViT-B-32"}
    assert split_spec("ViT-B-32:openai", known) == ("ViT-B-32", "openai")
    assert split_spec("ViT-B-32:C:\\w\\clip.pt", known) == ("ViT-B-32", "C:\\w\\clip.pt")
    assert split_spec("C:\\cfg\\toy.json:C:\\w.safetensors", known) == ("C:\\cfg\\toy.json", "C:\\w.safetensors")
    with pytest.raises(ClipganError, match="needs weights"):
        split_spec("ViT-B-32", known)
    with pytest.raises(ClipganError, match="unknown CLIP model"):
        split_spec("NoSuch:openai", known)


def test_clip_errors(tiny_models, tmp_path):
    config, _ = tiny_models["clip"]
    with pytest.raises(ClipganError, match="neither a file nor a known tag"):
        load_clip("ViT-B-32:nosuchtag")
    with pytest.raises(ClipganError, match="neither a file nor a known tag"):
        load_clip(f"{config}:{tmp_path / 'missing.pt'}")
    (tmp_path / "bad.json").write_text('{"foo": 1}')
    with pytest.raises(ClipganError, match="not an open_clip model config"):
        load_clip(f"{tmp_path / 'bad.json'}:random")
    (tmp_path / "junk.pt").write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(ClipganError):
        load_clip(f"{config}:{tmp_path / 'junk.pt'}")
