"""Defaults that come from the chosen model: the run's size, restyle's box and the seam of --mask."""

from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from clipgan.cli import app
from clipgan.config import CPU_SIZE, Settings, default_feather
from clipgan.io import read_settings
from clipgan.models.registry import VQGAN_MODELS
from clipgan.pipeline import default_size, load_models, run_size

from conftest import tiny_cli_args

CPU = dict(device="cpu")


def without_size(args: list[str]) -> list[str]:
    i = args.index("-s")
    return args[:i] + args[i + 3:]


@pytest.fixture(scope="module")
def toy():
    return load_models(Settings(**CPU))


def test_feature_registry_sizes():
    assert VQGAN_MODELS["toy"].size == 64  # what its CLIP and VQGAN were trained on
    assert all(e.size is None for e in VQGAN_MODELS.values() if not e.bundled)  # real ones: by device


def test_feature_default_size_by_model_and_device(toy, tiny_loaded):
    assert Settings().size is None
    assert default_size(Settings(**CPU), toy) == (64, 64)
    models, kw = tiny_loaded  # a yaml of one's own: no size known, so the device decides
    assert default_size(Settings(**{**kw, "size": None}), models) == (CPU_SIZE, CPU_SIZE) == (256, 256)


def test_feature_run_size_by_hand(toy):
    s = Settings(**CPU)
    assert run_size(s, toy) == (64, 64)
    assert run_size(s.replace(size=(40, 24)), toy) == (40, 24)  # given: kept (a multiple of 4)
    assert run_size(s, toy, box_of=(200, 100)) == (64, 32)  # restyle: 2:1 inside the 64 px box
    assert run_size(s, toy, box_of=(90, 160)) == (36, 64)  # 36 = 64 * 90 / 160, a multiple of 4
    assert run_size(s.replace(size=(128, 128)), toy, box_of=(100, 50)) == (128, 64)


def test_feature_cli_generate_without_size_uses_the_models_size(tiny_settings, tmp_path):
    out = tmp_path / "big.png"
    args = ["generate", "a red circle", *without_size(tiny_cli_args(tiny_settings)), "--cutn", "1", "-i", "1",
            "-o", str(out), "-q"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert Image.open(out).size == (CPU_SIZE, CPU_SIZE)  # a real-model default on a CPU, not the toy's 64


def test_feature_cli_restyle_box_follows_the_model(tmp_path):
    from clipgan.video import VideoWriter, read_video_info

    source = tmp_path / "wide.mp4"
    with VideoWriter(source, fps=4) as video:
        for colour in ("red", "blue"):
            video.append(Image.new("RGB", (160, 90), colour))
    out = tmp_path / "out.gif"
    result = CliRunner().invoke(app, ["restyle", str(source), "a red circle", "-o", str(out), "--steps-per-frame", "1",
                                      "--cutn", "1", "--device", "cpu", "--seed", "0", "-q"])
    assert result.exit_code == 0, result.output
    with Image.open(out) as gif:
        assert gif.size == (64, 36)  # the toy's 64 px box at 16:9 (36 = 64 * 9 / 16, a multiple of 4)
    assert read_video_info(out)[0] == 2


def noise_picture(side: int) -> Image.Image:
    rng = np.random.default_rng(side)
    return Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8), "RGB")


def dilate(mask: np.ndarray, r: int) -> np.ndarray:
    t = torch.from_numpy(mask.astype(np.float32))[None, None]
    return torch.nn.functional.max_pool2d(t, 2 * r + 1, stride=1, padding=r)[0, 0].numpy() > 0


@pytest.mark.parametrize("side, given", [(32, None), (96, None), (32, 3)])
def test_feature_mask_leaves_every_pixel_outside_the_feather_band_byte_equal(tiny_settings, tmp_path, side, given):
    noise_picture(side).save(tmp_path / "in.png")
    mask = Image.new("L", (side, side), 0)
    mask.paste(255, (side // 4, side // 4, side // 2, side // 2))
    mask.save(tmp_path / "mask.png")
    out = tmp_path / "out.png"
    feather = [] if given is None else ["--feather", str(given)]
    args = ["generate", "a red circle", *without_size(tiny_cli_args(tiny_settings)), "--init-image", str(tmp_path / "in.png"),
            "--mask", str(tmp_path / "mask.png"), *feather, "-i", "2", "-o", str(out), "-q"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    r = given if given is not None else default_feather((side, side))
    assert r == (given or max(1, round(side / 32)))
    assert read_settings(out)["feather"] == r  # recorded, so a rerun blends the same band
    before, after = np.asarray(Image.open(tmp_path / "in.png")), np.asarray(Image.open(out).convert("RGB"))
    band = dilate(np.asarray(mask) > 127, r)
    assert np.array_equal(after[~band], before[~band])
    changed = (after != before).any(-1)
    assert changed[np.asarray(mask) > 127].any()
    # the band is no wider than promised, and it is used: some pixel just outside the mask changed
    ring = band & ~(np.asarray(mask) > 127)
    assert changed[ring].any()


def test_exception_bad_feather_and_size_are_one_line(tiny_settings, tmp_path):
    for extra, message in ([["--feather", "-1"], "feather must be 0 or more"], [["-s", "0", "0"], "size must be positive"]):
        args = ["generate", "a red circle", *without_size(tiny_cli_args(tiny_settings)), "-i", "1", *extra,
                "-o", str(tmp_path / "x.png")]
        if extra[0] == "--feather":
            noise_picture(32).save(tmp_path / "in.png")
            Image.new("L", (32, 32), 255).save(tmp_path / "m.png")
            args += ["--init-image", str(tmp_path / "in.png"), "--mask", str(tmp_path / "m.png")]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2 and message in result.output and result.output.count("\n") == 1, result.output


def test_feature_examples_without_size_take_the_models_size(tmp_path):
    script = Path(__file__).resolve().parents[1] / "examples" / "basic_generation.py"
    main = runpy.run_path(str(script))["main"]
    path = main(["--out", str(tmp_path), "--iterations", "1"], cutn=1, device="cpu")
    assert Image.open(path).size == (64, 64)  # the bundled models' own size, from the registry


# ---------------------------------------------------------------- coarse to fine, the toy's recipe

def test_feature_recipe_applies_only_where_nothing_says_otherwise(tmp_path):
    from clipgan.config import model_recipe

    plain = Settings(prompts=["a red circle on a blue background"])
    assert (model_recipe(plain).size, model_recipe(plain).upscale) == ((32, 32), 2.0)
    assert VQGAN_MODELS["toy"].coarse == 32 and all(e.coarse is None for e in VQGAN_MODELS.values() if not e.bundled)
    unchanged = [plain.replace(size=(64, 64)), plain.replace(upscale=1.5), plain.replace(init_image="x.png"),
                 plain.replace(image_model="pixels"), plain.replace(image_model="diffusion"),
                 plain.replace(vqgan="vqgan_imagenet_f16_1024"), plain.replace(prompts=["a red circle ^ a blue square"]),
                 plain.replace(vqgan_config="c.yaml", vqgan_checkpoint="c.ckpt")]
    for s in unchanged:
        assert model_recipe(s) == s, s
    assert model_recipe(model_recipe(plain)) == model_recipe(plain)  # once applied, it stays


def test_feature_default_generate_draws_coarse_then_fine_and_reruns_from_its_settings(toy, one_thread):
    import clipgan

    kw = dict(models=toy, iterations=3, upscale_steps=2, cutn=2, seed=4)
    result = clipgan.generate("a red circle on a blue background", **kw)
    assert result.image.size == (64, 64) and len(result.losses) == 5
    assert (result.settings.size, result.settings.upscale) == ((32, 32), 2.0)
    again = clipgan.generate(models=toy, settings=result.settings)
    assert again.image.tobytes() == result.image.tobytes()


@pytest.mark.parametrize("stop", [2, 3, 4])  # in the coarse run, at its end, in the refinement
def test_feature_first_steps_rerun_gives_the_picture_a_stopped_run_had(toy, one_thread, stop):
    import clipgan
    from clipgan.io import to_pil
    from clipgan.run import first_steps

    s = Settings(**CPU).replace(prompts=["a blue star on a yellow background"], iterations=3, upscale_steps=2, cutn=2,
                                seed=7)
    pictures = []
    clipgan.generate(models=toy, settings=s, callback=lambda step: pictures.append(to_pil(step.image)))
    prefix = first_steps(s, stop)
    assert (prefix.upscale is None) == (stop <= 3)
    assert clipgan.generate(models=toy, settings=prefix).image.tobytes() == pictures[stop - 1].tobytes()
    assert first_steps(s.replace(image_model="diffusion"), stop) is None
    assert first_steps(s.replace(lr_schedule="cosine"), stop) is None  # its lr follows the run's length
