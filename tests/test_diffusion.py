"""--image-model diffusion on tiny random diffusers UNets written in the real format (save_pretrained,
safetensors), 2-3 steps on the CPU, guided by the tiny random CLIP of conftest."""

from __future__ import annotations

import functools
import json
import math
import warnings
from http.server import SimpleHTTPRequestHandler
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import clipgan
from clipgan.cli import main
from clipgan.errors import ClipganError, ClipganNotice

pytest.importorskip("diffusers")

SIDE = 32


@pytest.fixture(scope="module")
def loaded(unet_dir, tiny_settings, one_thread):
    from clipgan.config import Settings
    from clipgan.diffuse import load_diffusion_models

    kw = dict(clip=tiny_settings["clip"], cutn=4, device="cpu", seed=1, iterations=3,
              image_model="diffusion", diffusion=str(unet_dir))
    return load_diffusion_models(Settings(**kw)), kw


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"))


# ---------------------------------------------------------------- the guidance math

def test_values_x0_eps_round_trip():
    """Each prediction type's output -> (x0, eps) -> output again, and x = a x0 + s eps holds."""
    from clipgan.image_models.diffusion import from_x0, to_x0_eps

    g = torch.Generator().manual_seed(0)
    x, out = torch.randn(2, 3, 4, 4, generator=g), torch.randn(2, 3, 4, 4, generator=g)
    ab = torch.tensor(0.3)
    for kind in ("epsilon", "v_prediction", "sample"):
        x0, eps = to_x0_eps(out, x, ab, kind)
        torch.testing.assert_close(ab.sqrt() * x0 + (1 - ab).sqrt() * eps, x)
        torch.testing.assert_close(from_x0(x0, x, ab, kind), out, rtol=1e-4, atol=1e-4)


def test_feature_guidance_lowers_the_loss(loaded):
    """The shift `guidance` returns is a descent step: the losses it reports are lower after it."""
    from clipgan.image_models.diffusion import guidance
    from clipgan.pipeline import build_guides
    from clipgan.config import Settings

    models, kw = loaded
    guides = build_guides(Settings(**kw, prompts=["a red circle"]), models)
    x0 = torch.rand(1, 3, SIDE, SIDE, generator=torch.Generator().manual_seed(3)) * 2.4 - 1.2

    def total(x):
        torch.manual_seed(0)  # the same cutouts for both
        shift, losses = guidance(guides, x, 0.05, tv_weight=1.0, range_weight=1.0)
        return shift, sum(v.item() for v in losses.values())

    shift, before = total(x0)
    assert shift.pow(2).mean().sqrt().item() == pytest.approx(0.05, rel=1e-3)  # RMS = the scale
    _, after = total(x0 + shift)
    assert after < before


# ---------------------------------------------------------------- runs

def test_smoke_generate_seeded_and_sized(loaded):
    models, kw = loaded
    seen = []
    a = clipgan.generate("a red circle", models=models, callback=seen.append, **kw)
    b = clipgan.generate("a red circle", models=models, **kw)
    c = clipgan.generate("a red circle", models=models, **{**kw, "seed": 2})
    assert a.image.size == (SIDE, SIDE) and a.settings.size == (SIDE, SIDE)
    assert [s.index for s in seen] == [0, 1, 2] and len(a.losses) == 3
    assert all(s.image.shape == (1, 3, SIDE, SIDE) and 0 <= s.image.min() and s.image.max() <= 1 for s in seen)
    assert np.array_equal(pixels(a.image), pixels(b.image))
    assert not np.array_equal(pixels(a.image), pixels(c.image))


def test_feature_ddpm_scheduler_and_guidance_scale(loaded):
    """DDPM draws noise each step from the run's own generator (seeded); the guidance changes the picture."""
    models, kw = loaded
    a = clipgan.generate("a red circle", models=models, **{**kw, "scheduler": "ddpm"})
    b = clipgan.generate("a red circle", models=models, **{**kw, "scheduler": "ddpm"})
    ddim = clipgan.generate("a red circle", models=models, **kw)
    free = clipgan.generate("a red circle", models=models, **{**kw, "guidance_scale": 0.0})
    assert np.array_equal(pixels(a.image), pixels(b.image))
    assert not np.array_equal(pixels(a.image), pixels(ddim.image))
    assert not np.array_equal(pixels(free.image), pixels(ddim.image))


def _step(i: int, loss: float, tag: str):
    from clipgan.image_models.diffusion import DiffusionStep

    return DiffusionStep(i, 10 - i, loss, {"a red circle": loss, "tv": 100.0}, torch.zeros(1), torch.tensor([float(tag)]))


def test_values_best_of_continues_the_lowest_clip_loss():
    """Each run goes `prefix` steps; the one with the lowest CLIP loss (TV and range left out) goes on,
    the others stop where they were."""
    from clipgan.image_models.diffusion import best_of

    pulled = []

    def run(tag, losses):
        for i, loss in enumerate(losses):
            pulled.append((tag, i))
            yield _step(i, loss, tag)

    runs = [run("0", [5, 4, 3, 2]), run("1", [5, 3.5, 1, 1]), run("2", [1, 3.9, 9, 9])]
    steps = list(best_of(runs, prefix=2))
    assert [s.sample.item() for s in steps] == [1.0] * 4 and [s.index for s in steps] == [0, 1, 2, 3]
    assert sorted(pulled) == [("0", 0), ("0", 1), ("1", 0), ("1", 1), ("1", 2), ("1", 3), ("2", 0), ("2", 1)]
    assert [s.loss for s in best_of([run("5", [2, 1])], prefix=1)] == [2, 1]  # one run: no search


def test_feature_candidates_pick_a_better_start(loaded):
    """With 3 candidates the run is seeded and whole, and the kept start scores no worse after the first
    steps than the seed's own noise (candidate 0, which runs first and so sees the same cutouts)."""
    from clipgan.diffuse import CANDIDATE_SHARE

    models, kw = loaded
    kw = {**kw, "iterations": 4}
    prefix = math.ceil(CANDIDATE_SHARE * 4)
    one, three, again = [], [], []
    with warnings.catch_warnings(record=True) as plain:
        warnings.simplefilter("always")
        a = clipgan.generate("a red circle", models=models, callback=one.append, **{**kw, "candidates": 1})
    assert not [w for w in plain if issubclass(w.category, ClipganNotice)]
    with pytest.warns(ClipganNotice, match=f"trying 3 starting noises for {prefix} steps each"):  # the silent wait, said
        b = clipgan.generate("a red circle", models=models, callback=three.append, **{**kw, "candidates": 3})
    with pytest.warns(ClipganNotice):
        c = clipgan.generate("a red circle", models=models, callback=again.append, **{**kw, "candidates": 3})
    assert [s.index for s in three] == [0, 1, 2, 3] and b.settings.candidates == 3
    assert np.array_equal(pixels(b.image), pixels(c.image))
    score = lambda s: sum(v for k, v in s.losses.items() if k not in ("range", "tv"))  # noqa: E731
    assert score(three[prefix - 1]) <= score(one[prefix - 1])
    assert a.settings.candidates == 1


def test_cardinality_init_image_skips_steps(loaded, tmp_path):
    """strength 0.5 of 4 steps runs the last 2, from the picture noised to that level."""
    models, kw = loaded
    sketch = tmp_path / "sketch.png"
    Image.new("RGB", (64, 64), (220, 30, 30)).save(sketch)  # any size: resized to the UNet's
    seen = []
    r = clipgan.generate("a red circle", models=models, callback=seen.append,
                         **{**kw, "iterations": 4, "init_image": str(sketch), "strength": 0.5})
    assert len(seen) == 2 and r.image.size == (SIDE, SIDE)


def test_feature_inpaint_keeps_outside_byte_equal(loaded, tmp_path):
    models, kw = loaded
    rng = np.random.default_rng(0)
    picture = rng.integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)
    mask = np.zeros((SIDE, SIDE), np.uint8)
    mask[8:20, 10:24] = 255
    Image.fromarray(picture).save(tmp_path / "p.png")
    Image.fromarray(mask).save(tmp_path / "m.png")
    r = clipgan.generate("a red circle", models=models,
                         **{**kw, "init_image": str(tmp_path / "p.png"), "mask": str(tmp_path / "m.png"), "feather": 0})
    out = pixels(r.image)
    assert np.array_equal(out[mask == 0], picture[mask == 0])
    assert not np.array_equal(out[mask > 0], picture[mask > 0])
    assert r.settings.mask == str(tmp_path / "m.png") and r.settings.feather == 0
    default = clipgan.generate("a red circle", models=models,
                               **{**kw, "init_image": str(tmp_path / "p.png"), "mask": str(tmp_path / "m.png")})
    assert default.settings.feather == 1  # config.default_feather at 32 px, as for the VQGAN
    grown = np.zeros_like(mask)
    grown[7:21, 9:25] = 255  # the mask dilated by the 1 px seam
    assert np.array_equal(pixels(default.image)[grown == 0], picture[grown == 0])


def test_feature_morph_frames(loaded):
    from clipgan.animate import morph_frame_count
    from clipgan.diffuse import mean_frame_difference, morph_frames

    models, kw = loaded
    kw = {k: v for k, v in kw.items() if k != "image_model"}
    frames = list(morph_frames(["a red circle", "a blue square"], 2, models=models, **kw))
    again = list(morph_frames(["a red circle", "a blue square"], 2, models=models, **kw))
    looped = list(morph_frames(["a red circle", "a blue square"], 2, loop=True, models=models, **kw))
    assert len(frames) == morph_frame_count(2, 2) == 3 and len(looped) == morph_frame_count(2, 2, True) == 4
    assert [f.keyframe for f in frames] == [0, None, 1] and [f.mix for f in frames] == [0, 0.5, 0]
    assert all(f.image.shape == (1, 3, SIDE, SIDE) for f in frames)
    assert all(torch.equal(a.image, b.image) for a, b in zip(frames, again))
    # a keyframe is the plain run of its prompt and seed from the seed's own noise (no candidates)
    alone = clipgan.generate("a red circle", models=models, **{**kw, "image_model": "diffusion", "candidates": 1})
    assert np.array_equal(pixels(frames[0].pil()), pixels(alone.image))
    assert torch.equal(looped[0].image, frames[0].image)
    assert mean_frame_difference([f.image for f in frames]) > 0


def test_feature_cli_png_settings_rerun_and_video(unet_dir, tiny_settings, tmp_path, one_thread):
    """The CLI writes the settings into the PNG; --from-png replays the same picture; --video gets
    one frame per denoising step."""
    import imageio.v3 as iio

    from clipgan.io import read_settings

    out, again, video = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "a.gif"
    args = ["--image-model", "diffusion", "--diffusion", str(unet_dir), "--clip", tiny_settings["clip"][0],
            "--cutn", "4", "--device", "cpu", "-i", "2", "--seed", "4", "-q"]
    with pytest.raises(SystemExit) as info:
        main(["generate", "a red circle", *args, "-o", str(out), "--video", str(video)])
    assert info.value.code == 0
    stored = read_settings(out)
    assert stored["image_model"] == "diffusion" and stored["diffusion"] == str(unet_dir) and stored["seed"] == 4
    with pytest.raises(SystemExit) as info:
        main(["generate", "--from-png", str(out), "-o", str(again), "-q"])
    assert info.value.code == 0
    assert np.array_equal(pixels(Image.open(out)), pixels(Image.open(again)))
    assert iio.imread(video).shape[0] == 2
    frames, saved = tmp_path / "frames", tmp_path / "c.png"  # --save-every: the estimate so far, then the picture
    with pytest.raises(SystemExit) as info:
        main(["generate", "a red circle", *args, "-o", str(saved), "--save-every", "1", "--frames-dir", str(frames)])
    assert info.value.code == 0
    assert sorted(f.name for f in frames.iterdir()) == ["00001.png", "00002.png"]
    assert np.array_equal(pixels(Image.open(saved)), pixels(Image.open(out)))


def test_feature_cli_morph_video(unet_dir, tiny_settings, tmp_path, one_thread):
    import imageio.v3 as iio

    video = tmp_path / "m.gif"
    with pytest.raises(SystemExit) as info:
        main(["morph", "a red circle", "a blue square", "-o", str(video), "--image-model", "diffusion",
              "--diffusion", str(unet_dir), "--clip", tiny_settings["clip"][0], "--cutn", "2", "--device", "cpu",
              "--keyframe-steps", "2", "-n", "2", "--seed", "1", "-q"])
    assert info.value.code == 0
    assert iio.imread(video).shape[0] == 3


# ---------------------------------------------------------------- bad input

def _broken(tmp_path: Path, unet_dir: Path, kind: str) -> Path:
    import shutil

    folder = tmp_path / kind
    if kind == "missing":
        return folder
    shutil.copytree(unet_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    if kind == "corrupt-config":
        (folder / "config.json").write_text("{not json")
    elif kind == "corrupt-weights":
        (folder / "diffusion_pytorch_model.safetensors").write_bytes(b"\x00" * 100)
    elif kind == "pickle-only":
        (folder / "diffusion_pytorch_model.safetensors").rename(folder / "diffusion_pytorch_model.bin")
    elif kind == "class-conditional":
        (folder / "config.json").write_text(json.dumps({**config, "num_class_embeds": 10}))
    elif kind == "text-conditional":
        (folder / "config.json").write_text(json.dumps({**config, "_class_name": "UNet2DConditionModel"}))
    elif kind == "latent":
        (folder / "config.json").write_text(json.dumps({**config, "in_channels": 4, "out_channels": 4}))
    return folder


@pytest.mark.parametrize("kind, words", [
    ("missing", ("no diffusion model folder",)),
    ("corrupt-config", ("config.json", "JSON")),
    ("corrupt-weights", ("could not load the UNet",)),
    ("pickle-only", ("safetensors", ".bin")),
    ("class-conditional", ("class-conditional",)),
    ("text-conditional", ("UNet2DConditionModel",)),
    ("latent", ("latent",)),
    ("size", ("does not fit", "32x32")),
    ("unknown-name", ("unknown diffusion model",)),
])
def test_exception_bad_model_one_line_exit_2(kind, words, unet_dir, tiny_settings, tmp_path, capsys):
    folder = unet_dir if kind == "size" else "no-such-model" if kind == "unknown-name" else _broken(tmp_path, unet_dir, kind)
    out = tmp_path / "out.png"
    size = ["-s", "64", "64"] if kind == "size" else []
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(["generate", "a red circle", "--image-model", "diffusion", "--diffusion", str(folder), *size,
              "--clip", tiny_settings["clip"][0], "--cutn", "2", "--device", "cpu", "-i", "2", "-o", str(out), "-q"])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert info.value.code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert all(w in lines[0] for w in words), lines[0]
    assert not out.exists()


@pytest.mark.parametrize("change, words", [
    ({"guidance_scale": -1}, "guidance-scale"), ({"strength": 0}, "strength"), ({"strength": math.nan}, "strength"),
    ({"scheduler": "euler"}, "scheduler"), ({"candidates": 0}, "candidates"), ({"candidates": 10**9}, "at most 64"), ({"candidates": 1.5}, "candidates"), ({"image_model": "gan"}, "image-model"),
])
def test_exception_bad_settings(change, words):
    from clipgan.config import Settings

    with pytest.raises(ClipganError, match=words):
        Settings().replace(**change)


# ---------------------------------------------------------------- download

def test_feature_download_and_load(unet_dir, tmp_path, monkeypatch):
    """`clipgan download NAME` of a registry entry: the real folder over HTTP, checked, then loaded."""
    from conftest import local_server

    from clipgan.download import download_model
    from clipgan.models import diffusion_registry as dr
    from clipgan.models.diffusion import load_diffusion

    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(unet_dir))
    handler.log_message = lambda *a: None
    with local_server(handler) as server:
        monkeypatch.setitem(dr.DIFFUSION_MODELS, "test-unet", dr.DiffusionEntry("test-unet", "test only", SIDE, server.url))
        paths = download_model("test-unet", root=tmp_path, progress=False)
    assert [p.name for p in paths] == list(dr.FILES)
    assert dr.resolve_diffusion("test-unet", tmp_path) == tmp_path / "test-unet"
    model = load_diffusion(tmp_path / "test-unet")
    assert model.size == SIDE and model.scheduler("ddim").config.num_train_timesteps == 1000
    record = json.loads((tmp_path / "test-unet" / "downloads.json").read_text())
    assert set(record) == set(dr.FILES)  # trust on first use: every file's sha256 recorded


# ---------------------------------------------------------------- the bundled toy model and its training

@pytest.mark.parametrize("prediction, ranges", [("epsilon", "default"), ("v_prediction", "centred")])
def test_smoke_training_script_writes_a_loadable_folder(prediction, ranges, tmp_path, one_thread):
    from clipgan.models.diffusion import load_diffusion
    from clipgan.toyworld.train_diffusion import main as train_main

    train_main(["--out", str(tmp_path), "--quick", "--prediction", prediction, "--ranges", ranges])
    folder = tmp_path / "toy-diffusion"
    card = json.loads((folder / "card.json").read_text())
    model = load_diffusion(folder)
    assert card["parameters"] == sum(p.numel() for p in model.unet.parameters())
    assert model.size == card["train"]["size"] and card["train"]["steps"] == 3
    assert card["train"]["prediction"] == model.scheduler("ddim").config.prediction_type == prediction
    assert card["train"]["ranges"] == ranges


def test_training_script_takes_the_unets_widths(tmp_path, one_thread):
    """--channels 8,16,24: the folder's UNet has those widths and the card says so; widths the
    UNet's 8 norm groups cannot split are argparse's one-line error (exit 2)."""
    from clipgan.models.diffusion import load_diffusion
    from clipgan.toyworld.train_diffusion import main as train_main

    train_main(["--out", str(tmp_path), "--quick", "--channels", "8,16,24"])
    folder = tmp_path / "toy-diffusion"
    assert tuple(load_diffusion(folder).unet.config.block_out_channels) == (8, 16, 24)
    assert json.loads((folder / "card.json").read_text())["train"]["channels"] == [8, 16, 24]
    for bad in ("8,12", "32", "a,b"):
        with pytest.raises(SystemExit) as refused:
            train_main(["--out", str(tmp_path / "bad"), "--quick", "--channels", bad])
        assert refused.value.code == 2
    assert not (tmp_path / "bad").exists()


def test_centred_renders_put_every_shape_in_the_middle():
    from clipgan.toyworld import render as rw
    from clipgan.toyworld.train_diffusion import batch

    specs = rw.sample_specs(50, 0, rw.CENTRED_RANGES)
    assert all(s.x == 0 and s.y == 0 and 0.45 <= s.size <= 0.65 for s in specs)
    x = batch(8, 32, torch.Generator().manual_seed(0), "centred")
    assert x.shape == (8, 3, 32, 32) and x.min() >= -1 and x.max() <= 1
    torch.testing.assert_close(x, x.flip(-1))  # centred, upright shapes are their own mirror images


def test_smoke_bundled_model_within_budget_and_runs(one_thread):
    """The bundled folder is what its card says, at most 8 MB, and the default run uses it."""
    from clipgan.models.diffusion_registry import resolve_diffusion

    folder = resolve_diffusion("toy-diffusion")
    card = json.loads((folder / "card.json").read_text())
    assert sum(f.stat().st_size for f in folder.iterdir()) <= 8 * 2**20
    assert {f["file"]: f["bytes"] for f in card["files"]} == \
        {f.name: f.stat().st_size for f in folder.iterdir() if f.name != "card.json"}
    r = clipgan.generate("a red circle on a blue background", image_model="diffusion", iterations=2, cutn=2,
                         seed=0, device="cpu")
    assert r.image.size == (card["train"]["size"],) * 2 and r.settings.diffusion == "toy-diffusion"
