"""`clipgan generate --mask / --upscale`: inpainting and hi-res refinement through the main command,
with the tiny random models from conftest (loaded through the real loaders)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import clipgan
from clipgan.cli import app
from clipgan.config import UPSCALE_STEPS, Settings, default_feather
from clipgan.errors import ClipganError
from clipgan.io import SETTINGS_KEY

runner = CliRunner()
BOX = (10, 8, 20, 16)  # the masked rectangle (left, top, right, bottom) in a 32x32 picture


def model_args(tiny_models) -> list[str]:
    yaml_path, ckpt_path = tiny_models["vq"]
    config, weights = tiny_models["clip"]
    return ["--vqgan-config", str(yaml_path), "--vqgan-checkpoint", str(ckpt_path), "--clip", f"{config}:{weights}",
            "--device", "cpu", "--cutn", "4", "--seed", "1", "-q"]


def invoke(args: list) -> object:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def settings_of(path) -> dict:
    with Image.open(path) as image:
        return json.loads(image.info[SETTINGS_KEY])


def far_from(mask: np.ndarray, distance: int) -> np.ndarray:
    """Pixels farther than `distance` (chessboard) from every masked pixel."""
    t = torch.from_numpy(mask.astype(np.float32))[None, None]
    near = torch.nn.functional.max_pool2d(t, 2 * distance + 1, stride=1, padding=distance)
    return near[0, 0].numpy() == 0


@pytest.fixture
def files(tmp_path):
    """A 32x32 noise picture, its mask (white box), an all-black mask and a text file posing as a png."""
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), "RGB").save(tmp_path / "in.png")
    mask = Image.new("L", (32, 32), 0)
    mask.paste(255, BOX)
    mask.save(tmp_path / "mask.png")
    Image.new("L", (32, 32), 0).save(tmp_path / "black.png")
    (tmp_path / "text.png").write_text("not an image")
    return tmp_path


# ---------------------------------------------------------------- feature: inpainting

def test_mask_keeps_far_pixels_exactly_and_changes_inside(tiny_models, files):
    out, frames = files / "out.png", files / "frames"
    r = invoke(["generate", "a red circle", "--init-image", files / "in.png", "--mask", files / "mask.png",
                "--feather", "2", "-i", "3", "--save-every", "1", "--frames-dir", frames, "-o", out,
                *model_args(tiny_models)])
    assert r.exit_code == 0, r.output
    before, after = np.asarray(Image.open(files / "in.png")), np.asarray(Image.open(out).convert("RGB"))
    assert after.shape == before.shape  # the picture's own size
    m = np.asarray(Image.open(files / "mask.png")) > 127
    keep = far_from(m, 2)  # beyond the feathered band (--feather)
    assert keep.sum() > 500 and np.array_equal(after[keep], before[keep])
    assert (after[m] != before[m]).any()
    # saved frames show the pasted picture, not the raw decode
    assert sorted(p.name for p in frames.iterdir()) == ["00001.png", "00002.png", "00003.png"]
    first = np.asarray(Image.open(frames / "00001.png").convert("RGB"))
    assert np.array_equal(first[keep], before[keep])
    data = settings_of(out)
    assert data["mask"] == str(files / "mask.png") and data["feather"] == 2
    assert data["init_image"] == str(files / "in.png") and data["upscale"] is None


def test_mask_rerun_from_png_and_the_python_api_give_the_same_picture(tiny_models, tiny_settings, files):
    out, again = files / "out.png", files / "again.png"
    args = ["--init-image", files / "in.png", "--mask", files / "mask.png", "-i", "2", *model_args(tiny_models)]
    assert invoke(["generate", "a blue square", *args, "-o", out]).exit_code == 0
    r = invoke(["generate", "--from-png", out, "-o", again, "-q"])
    assert r.exit_code == 0, r.output
    assert Image.open(again).tobytes() == Image.open(out).tobytes()
    # clipgan.generate with init_image= and mask= inpaints, with the CLI's defaults (feather included)
    api = {k: v for k, v in tiny_settings.items() if k != "size"}
    result = clipgan.generate("a blue square", init_image=str(files / "in.png"), mask=str(files / "mask.png"),
                              **{**api, "iterations": 2})
    assert result.settings.feather == default_feather((32, 32)) == 1 and result.settings.mask == str(files / "mask.png")
    assert result.image.tobytes() == Image.open(out).convert("RGB").tobytes()


# ---------------------------------------------------------------- feature: upscaling

def test_upscale_doubles_the_size_and_keeps_progress_saves(tiny_models, files):
    out, frames, video = files / "big.png", files / "frames", files / "progress.gif"
    r = invoke(["generate", "a red circle", "-s", "32", "32", "-i", "2", "--upscale", "2", "--upscale-steps", "1",
                "--save-every", "1", "--frames-dir", frames, "--video", video, "-o", out, *model_args(tiny_models)])
    assert r.exit_code == 0, r.output
    assert Image.open(out).size == (64, 64)
    # frames count on across both runs (none overwritten); the last one is the refinement's
    assert sorted(p.name for p in frames.iterdir()) == ["00001.png", "00002.png", "00003.png"]
    assert Image.open(frames / "00002.png").size == (32, 32) and Image.open(frames / "00003.png").size == (64, 64)
    from clipgan.video import read_video_info

    assert read_video_info(video)[0] == 3  # the larger frame is shrunk to the video's size
    data = settings_of(out)
    assert data["upscale"] == 2 and data["upscale_steps"] == 1 and data["size"] == [32, 32]


def test_upscale_defaults_are_the_configs(tiny_settings):
    assert Settings().upscale is None and Settings().upscale_steps == UPSCALE_STEPS
    assert Settings().feather is None  # by the picture's size: config.default_feather
    steps = []
    result = clipgan.generate("a red circle", upscale=2, callback=steps.append, **{**tiny_settings, "iterations": 1,
                                                                                    "upscale_steps": 1})
    assert result.image.size == (64, 64) and len(steps) == len(result.losses) == 2


def test_mask_and_upscale_together(tiny_models, files):
    out = files / "both.png"
    r = invoke(["generate", "a red circle", "--init-image", files / "in.png", "--mask", files / "mask.png", "-i", "1",
                "--upscale", "2", "--upscale-steps", "1", "-o", out, *model_args(tiny_models)])
    assert r.exit_code == 0, r.output
    assert Image.open(out).size == (64, 64)


# ---------------------------------------------------------------- exceptions

@pytest.mark.parametrize("extra, message", [
    (["--mask", "{d}/mask.png"], "--mask needs --init-image"),
    (["--init-image", "{d}/in.png", "--mask", "{d}/text.png"], "text.png is not a readable image"),
    (["--init-image", "{d}/in.png", "--mask", "{d}/missing.png"], "image not found"),
    (["--init-image", "{d}/in.png", "--mask", "{d}/black.png"], "all black"),
    (["--init-image", "{d}/in.png", "--mask", "{d}/mask.png", "--feather", "-1"], "feather must be 0 or more"),
    (["--upscale", "1"], "upscale must be more than 1"),
    (["--upscale", "0.5"], "upscale must be more than 1"),
    (["--upscale", "2", "--upscale-steps", "0"], "upscale-steps must be at least 1"),
])
def test_bad_input_exits_2_with_one_line_and_no_file(tiny_models, files, extra, message):
    out = files / "never.png"
    r = invoke(["generate", "a red circle", *[a.format(d=files) for a in extra], "-i", "1", "-o", out,
                *model_args(tiny_models)])
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], r.output
    assert not out.exists()


def test_settings_validate_the_new_fields():
    for bad in (dict(mask="m.png"), dict(upscale=True), dict(upscale=float("inf")), dict(feather=1.5),
                dict(init_image="a.png", mask=Image.new("L", (2, 2)))):
        with pytest.raises(ClipganError):
            Settings().replace(**bad)
    assert Settings.from_dict({"prompts": ["x"]}).mask is None  # older pictures' settings still load


# ---------------------------------------------------------------- interrupt: masked runs resume, upscaled ones keep the image

def test_interrupted_masked_run_resumes_to_the_uninterrupted_picture(tiny_models, files, monkeypatch):
    import clipgan.io

    common = ["generate", "a red circle", "--init-image", files / "in.png", "--mask", files / "mask.png", "-i", "5",
              "--save-every", "1", *model_args(tiny_models)]
    whole = files / "whole.png"
    assert invoke([*common, "-o", whole]).exit_code == 0
    real, calls = clipgan.io.save_image, []

    def save_then_interrupt(*args, **kwargs):
        calls.append(args[1])
        if len(calls) == 2:  # the second step's save: as if Ctrl-C came then
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(clipgan.io, "save_image", save_then_interrupt)
    out = files / "cut.png"
    r = invoke([*common, "-o", out])
    monkeypatch.setattr(clipgan.io, "save_image", real)
    state = files / "cut.state.pt"
    assert r.exit_code == 130, r.output
    assert f"resume with: clipgan resume {state}" in r.output and out.exists() and state.exists()
    assert invoke(["resume", state]).exit_code == 0 and not state.exists()
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(whole)))


def test_resume_refuses_an_upscaled_state_that_does_not_fit_the_run(files):
    state = files / "x.state.pt"
    settings = Settings().replace(prompts=["a"], upscale=2.0)
    torch.save({"kind": "generate", "version": 1, "job": {"output": str(files / "x.png")}, "settings": settings.to_dict(),
                "z": torch.zeros(1, 4, 8, 8), "optimizer": {"state": {}, "param_groups": []}, "next_step": 0,
                "rng": torch.get_rng_state()}, state)
    r = invoke(["resume", str(state)])
    assert r.exit_code == 2 and "a state of another model or size" in r.output and not (files / "x.png").exists()


def test_upscale_without_a_size_starts_at_the_models_own(one_thread, tmp_path):
    """Found while making upscaled runs resumable: --upscale with no --size failed with a TypeError
    (the size is the model's own only once the models are known)."""
    out = tmp_path / "up.png"
    r = invoke(["generate", "a red circle on a blue background", "--upscale", "2", "--upscale-steps", "1", "-i", "1",
                "--cutn", "2", "--seed", "0", "-o", out, "-q"])
    assert r.exit_code == 0, r.output
    assert Image.open(out).size == (128, 128) and settings_of(out)["size"] == [64, 64]
