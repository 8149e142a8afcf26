"""Editing: masks, inpainting, outpainting, upscaling and the sketch example.

Mechanics run on tiny random models; what the pictures mean is checked with the bundled toy
models."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import clipgan.cli_edit  # noqa: F401  registers outpaint, upscale, score
from clipgan import edit
from clipgan.cli import app
from clipgan.errors import ClipganError
from clipgan.io import read_settings
from clipgan.pipeline import load_models

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.fixture(scope="module")
def tiny(tiny_settings):
    from clipgan.config import Settings

    return load_models(Settings().replace(**tiny_settings))


@pytest.fixture(scope="module")
def run_settings(tiny_settings):
    return {k: v for k, v in tiny_settings.items() if k not in ("size",)}


def picture(w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")


def far_from(mask: np.ndarray, distance: int) -> np.ndarray:
    """Pixels farther than `distance` (chessboard) from every masked pixel."""
    t = torch.from_numpy(mask.astype(np.float32))[None, None]
    near = torch.nn.functional.max_pool2d(t, 2 * distance + 1, stride=1, padding=distance)
    return near[0, 0].numpy() == 0


# ---------------------------------------------------------------- masks

def test_load_mask_any_mode_and_size(tmp_path):
    img = Image.new("L", (8, 4), 0)
    img.paste(255, (4, 0, 8, 4))
    for mode in ("1", "L", "RGB", "P", "RGBA"):
        img.convert(mode).save(tmp_path / f"m-{mode}.png")
        m = edit.load_mask(tmp_path / f"m-{mode}.png", (8, 4))
        assert m.shape == (1, 1, 4, 8) and m.dtype == torch.float32
        assert m[..., :4].max() == 0 and m[..., 4:].min() == 1
    with pytest.raises(ClipganError, match="m-L.png is 8x4 but the picture is 16x8"):  # never stretched
        edit.load_mask(tmp_path / "m-L.png", (16, 8))


def test_load_mask_transparent_counts_as_keep(tmp_path):
    img = Image.new("RGBA", (4, 4), (255, 255, 255, 0))
    img.putpixel((1, 1), (255, 255, 255, 255))
    img.save(tmp_path / "a.png")
    m = edit.load_mask(tmp_path / "a.png", (4, 4))
    assert m.sum() == 1 and m[0, 0, 1, 1] == 1


def test_load_mask_rejects_non_images(tmp_path):
    (tmp_path / "x.png").write_text("not an image")
    with pytest.raises(ClipganError, match="not a readable image"):
        edit.load_mask(tmp_path / "x.png", (4, 4))
    with pytest.raises(ClipganError, match="not found"):
        edit.load_mask(tmp_path / "missing.png", (4, 4))


def test_latent_mask_by_hand():
    m = torch.zeros(1, 1, 6, 8)
    m[0, 0, 0, 0] = 1  # cell (0, 0)
    m[0, 0, 3, 5] = 1  # cell (1, 2) with factor 2
    m[0, 0, 5, 7] = 0.4  # below the threshold: kept
    cells = edit.latent_mask(m, 2)
    expected = torch.zeros(1, 1, 3, 4, dtype=torch.bool)
    expected[0, 0, 0, 0] = expected[0, 0, 1, 2] = True
    assert cells.dtype == torch.bool and torch.equal(cells, expected)
    # sides that are not a multiple of the factor: the partial cell counts
    assert edit.latent_mask(torch.ones(1, 1, 5, 5), 4).shape == (1, 1, 2, 2)


@pytest.mark.parametrize("r", [1, 2, 3, 8])
def test_feather_is_exact_outside_the_mask_dilated_by_r(r):
    m = torch.zeros(1, 1, 40, 40)
    m[..., 15:25, 15:25] = 1
    soft = edit.feather(m, r)
    assert torch.all(soft[m.bool()] == 1)  # masked pixels: exactly 1
    far = torch.from_numpy(far_from(m[0, 0].numpy(), r))
    assert torch.all(soft[0, 0][far] == 0)  # beyond r: exactly 0
    band = soft[0, 0, 20, 25:25 + r]  # the r pixels right of the mask
    assert (band > 0).all() and (band < 1).all() and torch.all(band[:-1] >= band[1:])  # the band is r wide, falling off
    assert torch.equal(edit.feather(m, 0), m)


def test_composite_keeps_the_original_bit_for_bit():
    original, generated = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    soft = torch.zeros(1, 1, 8, 8)
    soft[..., :2, :] = 1
    soft[..., 2, :] = 0.5
    out = edit.composite(generated, original, soft)
    assert torch.equal(out[..., 3:, :], original[..., 3:, :])
    assert torch.equal(out[..., :2, :], generated[..., :2, :])
    assert torch.allclose(out[..., 2, :], (generated + original)[..., 2, :] / 2)


def test_masked_cutouts_look_at_the_mask():
    from clipgan.cutouts import CutoutConfig

    mask = torch.zeros(1, 1, 64, 64)
    mask[..., :8, :8] = 1  # top-left corner
    torch.manual_seed(0)
    cut = edit.MaskedCutouts(16, CutoutConfig(cutn=200, augments=()), mask, focus=1.0)
    b = cut.boxes(64, 64)
    assert b.shape == (200, 5) and (b[:, 1:] >= 0).all() and (b[:, 3:] <= 64).all()
    assert torch.equal(b[:, 3] - b[:, 1], b[:, 4] - b[:, 2])  # still square
    covers = (b[:, 1] < 8) & (b[:, 2] < 8)  # the crop reaches into the masked corner
    assert covers.all()
    crops = cut(torch.rand(1, 3, 64, 64))
    assert crops.shape == (200, 3, 16, 16)
    with pytest.raises(ClipganError, match="all black"):
        edit.MaskedCutouts(16, CutoutConfig(cutn=2), torch.zeros(1, 1, 8, 8))


# ---------------------------------------------------------------- inpainting

def test_inpaint_changes_inside_and_keeps_outside_exactly(tiny, run_settings, tmp_path):
    from clipgan.io import load_rgb, save_image

    src = picture(30, 26)  # not a multiple of the factor: padded for the run, cropped after
    src.save(tmp_path / "in.png")
    mask = Image.new("L", src.size, 0)
    mask.paste(255, (10, 8, 20, 16))
    mask.save(tmp_path / "mask.png")
    steps = []
    result = edit.inpaint("a red circle", tmp_path / "in.png", tmp_path / "mask.png", models=tiny,
                          callback=steps.append, feather_px=2, **run_settings)
    assert len(steps) == run_settings["iterations"] and result.settings.size == (30, 26)
    save_image(result.image, tmp_path / "out.png", result.settings.to_dict())
    out, before = np.asarray(load_rgb(tmp_path / "out.png")), np.asarray(src)
    assert out.shape == before.shape
    m = np.asarray(mask) > 127
    keep = far_from(m, 2)  # beyond the feathered band (feather_px)
    assert np.array_equal(out[keep], before[keep])
    assert (out[m] != before[m]).any()


def test_inpaint_frees_only_masked_cells(tiny, run_settings):
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., :4, :4] = 1
    result = edit.inpaint("x", picture(32, 32), mask, models=tiny, **run_settings)
    with torch.no_grad():
        z0 = tiny.vqgan.encode(torch.from_numpy(np.asarray(picture(32, 32)) / 255.0).float().permute(2, 0, 1)[None])
    moved = (result.z != z0).any(1)[0]
    assert not moved[2:, :].any() and not moved[:, 2:].any()


def test_inpaint_rejects_an_empty_mask_and_a_wrong_size(tiny, run_settings):
    with pytest.raises(ClipganError, match="all black"):
        edit.inpaint("x", picture(16, 16), torch.zeros(1, 1, 16, 16), models=tiny, **run_settings)
    with pytest.raises(ClipganError, match="init-image"):
        edit.inpaint("x", None, torch.ones(1, 1, 16, 16), models=tiny, **run_settings)
    with pytest.raises(ClipganError, match="mask is 8x8"):
        edit.inpaint("x", picture(16, 16), torch.ones(1, 1, 8, 8), models=tiny, **run_settings)


# ---------------------------------------------------------------- outpainting

def test_parse_extend():
    assert edit.parse_extend("left=128,right=128,top=0,bottom=0") == dict(left=128, right=128, top=0, bottom=0)
    assert edit.parse_extend(" top = 3 ") == dict(left=0, right=0, top=3, bottom=0)


@pytest.mark.parametrize("text, message", [
    ("up=4", "unknown side"), ("left=-4", "whole number"), ("left=1.5", "whole number"), ("left=", "whole number"),
    ("left", "side=pixels"), ("left=4,left=8", "twice"), ("", "side=pixels"), ("left=0", "at least one"),
    ("left=4,", "side=pixels"),
])
def test_parse_extend_errors(text, message):
    with pytest.raises(ClipganError, match=message):
        edit.parse_extend(text)


def test_outpaint_grows_and_keeps_the_original_exactly(tiny, run_settings):
    src = picture(20, 16)
    ext = dict(left=5, right=8, top=0, bottom=3)  # 33x19: padded to 34x20 for the run, cropped back
    result = edit.outpaint(src, "a blue sky", extend=ext, models=tiny, feather_px=2, **run_settings)
    assert result.image.size == (33, 19) and result.settings.size == (33, 19)
    out = np.asarray(result.image)
    assert np.array_equal(out[0:16, 5:25], np.asarray(src))
    border = np.asarray(src)[:, :1].repeat(5, 1)  # the replicated left border, where the run starts
    assert not np.array_equal(out[0:16, 0:5], border)  # the new area was regenerated


def test_grow_noise_fill_and_bad_fill():
    start, border, mask = edit.grow(torch.rand(1, 3, 4, 4), dict(right=4), fill="noise")
    assert start.shape == border.shape == (1, 3, 4, 8) and mask.shape == (1, 1, 4, 8)
    assert torch.equal(start[..., :4], border[..., :4]) and mask[..., 4:].all() and not mask[..., :4].any()
    with pytest.raises(ClipganError, match="fill"):
        edit.grow(torch.rand(1, 3, 4, 4), dict(right=4), fill="zeros")


def test_cli_outpaint(tiny_models, tmp_path):
    yaml_path, ckpt = tiny_models["vq"]
    config, weights = tiny_models["clip"]
    picture(16, 16).save(tmp_path / "in.png")
    models = ["--vqgan-config", yaml_path, "--vqgan-checkpoint", ckpt, "--clip", f"{config}:{weights}",
              "--device", "cpu", "-i", "1", "--cutn", "2", "--seed", "1", "-q"]
    r = runner.invoke(app, [str(a) for a in ["outpaint", tmp_path / "in.png", "sky", "--extend", "left=4,top=2",
                                               "-o", tmp_path / "out.png", *models]])
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "out.png").size == (20, 18)
    r = runner.invoke(app, [str(a) for a in ["outpaint", tmp_path / "in.png", "a red sky", "--extend", "left=4",
                                               "--contrast", "red,blue", "-o", tmp_path / "named.png", *models]])
    assert r.exit_code == 0, r.output
    recorded = read_settings(tmp_path / "named.png")
    assert recorded["contrast"] == ["red", "blue"] and recorded["contrast_weight"] == 0.5
    r = runner.invoke(app, [str(a) for a in ["outpaint", tmp_path / "in.png", "sky", "--extend", "middle=4",
                                               "-o", tmp_path / "bad.png", *models]])
    assert r.exit_code == 2 and "unknown side" in r.output and not (tmp_path / "bad.png").exists()


@pytest.mark.parametrize("command", [["outpaint", "sky", "--extend", "left=4"], ["upscale"]])
def test_cli_edits_refuse_diffusion_in_one_line(tmp_path, command):
    """Outpainting and upscaling optimize a picture; the diffusion model has no such run (it
    inpaints through `generate --mask`), so it is refused before anything loads or is written."""
    picture(16, 16).save(tmp_path / "in.png")
    out = tmp_path / "out.png"
    out.write_bytes(b"keep me")
    r = runner.invoke(app, [command[0], str(tmp_path / "in.png"), *command[1:], "-o", str(out), "--image-model", "diffusion"])
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert r.exit_code == 2 and len(lines) == 1, r.output
    assert "is not made with --image-model diffusion" in lines[0] and out.read_bytes() == b"keep me"


# ---------------------------------------------------------------- upscaling

def test_upscale_doubles_the_size(tiny, run_settings):
    result = edit.upscale(picture(16, 12), "a red circle", factor=2, steps=2, models=tiny, **run_settings)
    assert result.image.size == (32, 24) and len(result.losses) == 2 and result.settings.size == (32, 24)


def test_upscale_without_prompts_uses_the_picture(tiny_models, tmp_path):
    yaml_path, ckpt = tiny_models["vq"]
    config, weights = tiny_models["clip"]
    picture(16, 16).save(tmp_path / "in.png")
    r = runner.invoke(app, [str(a) for a in [
        "upscale", tmp_path / "in.png", "--factor", "2", "--steps", "1", "-o", tmp_path / "big.png",
        "--vqgan-config", yaml_path, "--vqgan-checkpoint", ckpt, "--clip", f"{config}:{weights}",
        "--device", "cpu", "--cutn", "2", "--seed", "3", "-q"]])
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "big.png").size == (32, 32)
    r = runner.invoke(app, ["upscale", str(tmp_path / "in.png"), "--factor", "1"])
    assert r.exit_code == 2 and "more than 1" in r.output


def test_generate_upscaled(tiny, tiny_settings):
    result = edit.generate_upscaled("a red circle", upscale_factor=2, upscale_steps=1, models=tiny, **tiny_settings)
    assert result.image.size == (64, 64) and result.settings.size == (32, 32)
    assert len(result.losses) == tiny_settings["iterations"] + 1


# ---------------------------------------------------------------- start from a sketch

def _example():
    spec = importlib.util.spec_from_file_location("sketch_to_image", ROOT / "examples" / "sketch_to_image.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sketch_example_runs(tiny_settings, tmp_path):
    out = _example().main(["--out", str(tmp_path), "--iterations", "1"], **{k: v for k, v in tiny_settings.items()
                                                                            if k not in ("iterations", "seed", "size")})
    assert out.is_file() and (tmp_path / "sketch.png").is_file()


def test_sketch_keeps_its_layout(tmp_path):
    from clipgan.io import load_rgb, to_tensor
    from clipgan.toyworld.render import color_fractions

    out = _example().main(["--out", str(tmp_path), "--iterations", "30", "--seed", "0"])
    image = to_tensor(load_rgb(out))[0]
    w = image.shape[-1]
    left, right = color_fractions(image[..., : w // 2]), color_fractions(image[..., w // 2:])
    assert left["red"] > 0.15 and left["red"] > 3 * right["red"]
    assert right["blue"] > 0.5


def test_outpaint_continues_the_background(tmp_path):
    """A red circle on blue, extended right: the new area stays mostly blue, the original is untouched."""
    from clipgan.io import to_pil, to_tensor
    from clipgan.toyworld.render import Spec, color_fractions, render

    src = to_pil(render(Spec("circle", "red", "blue"), 64))
    result = edit.outpaint(src, "a red circle on a blue background", extend=dict(right=32), iterations=20,
                           cutn=8, seed=0, device="cpu")
    out = to_tensor(result.image)[0]
    assert np.array_equal(np.asarray(result.image)[:, :64], np.asarray(src))
    assert color_fractions(out[..., 64 + 8:])["blue"] > 0.5


@pytest.mark.parametrize("stop_at", [0, 1, 2, 3])  # after the first run's steps 1-2 (2: none left), the refinement's
def test_upscaled_generate_resumes_from_either_run_to_the_uninterrupted_result(tiny_loaded, stop_at):
    from clipgan.config import Settings
    from clipgan.pipeline import generate, resume_state, rng_state

    models, kw = tiny_loaded
    s = Settings(**kw).replace(prompts=["a red circle"], iterations=2, size=(16, 16), upscale=2.0, upscale_steps=2,
                               lr_schedule="cosine", cut_schedule="ramp")
    whole = generate(models=models, settings=s)
    assert whole.image.size == (32, 32) and len(whole.losses) == 4

    class Stop(Exception):
        pass

    seen = []

    def stop(step):
        seen.append(step.loss)
        if len(seen) == stop_at + 1:
            seen.append(resume_state(step, s, list(seen), rng_state()))
            raise Stop

    with pytest.raises(Stop):
        generate(models=models, settings=s, callback=stop)
    state = seen[-1]
    assert ("phase" in state) == (stop_at >= 2)
    resumed = generate(models=models, settings=s, resume=state)
    assert resumed.image.tobytes() == whole.image.tobytes()
    assert resumed.losses == pytest.approx(whole.losses) and resumed.settings == whole.settings
