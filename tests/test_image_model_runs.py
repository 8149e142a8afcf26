"""Runs with each image model through the API and the CLI (tiny random CLIP, 16-32 px, a few steps):
generate, resume, morph, inpainting, the refusals where a model cannot start from a picture, SVG output."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from clipgan.errors import ClipganError

pytestmark = pytest.mark.usefixtures("one_thread")
OTHERS = ["pixels", "fft", "strokes"]


@pytest.fixture(scope="module")
def kw(tiny_settings):
    return {**tiny_settings, "size": (24, 16), "strokes": 6}


@pytest.fixture(scope="module")
def clip_only(kw):
    """Models for the non-VQGAN image models: CLIP only, no VQGAN loaded."""
    from clipgan.config import Settings
    from clipgan.runsetup import load_models

    models = load_models(Settings(**kw, image_model="pixels"))
    assert models.vqgan is None
    return models


@pytest.mark.parametrize("kind", OTHERS)
def test_generate_with_each_model(kind, kw, clip_only, tmp_path):
    from clipgan.io import read_settings, save_image
    from clipgan.pipeline import generate

    seen = []
    result = generate("a red circle", models=clip_only, image_model=kind, callback=seen.append, **kw)
    assert result.image.size == (24, 16) and len(seen) == 3
    assert result.settings.image_model == kind and set(seen[0].losses) == {"a red circle"}
    save_image(result.image, tmp_path / "x.png", result.settings.to_dict())
    assert read_settings(tmp_path / "x.png")["image_model"] == kind
    again = generate("a red circle", models=clip_only, image_model=kind, **kw)
    assert again.image.tobytes() == result.image.tobytes()  # same seed, same picture


@pytest.mark.parametrize("kind", OTHERS)
def test_resume_is_identical(kind, kw, clip_only):
    from clipgan.config import Settings
    from clipgan.pipeline import generate, resume_state, rng_state

    settings = {**kw, "iterations": 4, "init_weight": 0.3, "image_model": kind}
    whole = generate("a red circle", models=clip_only, **settings)
    saved = {}

    class Stop(Exception):
        pass

    def stop_after_one(step):
        saved.setdefault("losses", []).append(step.loss)
        if step.index == 1:
            saved["state"] = resume_state(step, Settings(prompts=["a red circle"], **settings), saved["losses"], rng_state())
            raise Stop

    with pytest.raises(Stop):
        generate("a red circle", models=clip_only, callback=stop_after_one, **settings)
    state = saved["state"]
    resumed = generate(models=clip_only, resume=state, settings=Settings.from_dict(state["settings"]))
    assert resumed.image.tobytes() == whole.image.tobytes()


def test_a_state_of_another_model_is_refused(kw, clip_only):
    from clipgan.config import Settings
    from clipgan.pipeline import generate, resume_state, rng_state

    steps = []
    generate("a red circle", models=clip_only, image_model="pixels", callback=steps.append, **kw)
    state = resume_state(steps[0], Settings(**kw), [], rng_state())
    with pytest.raises(ClipganError, match="a state of another model or size"):
        generate("a red circle", models=clip_only, image_model="strokes", resume=state, **kw)


def test_morph_with_strokes(kw, clip_only):
    from clipgan.animate import morph

    opts = {k: v for k, v in kw.items() if k != "iterations"}
    frames = list(morph(["a red circle", "a blue square"], models=clip_only, image_model="strokes", mode="latent",
                        frames_per_transition=2, keyframe_steps=2, **opts))
    assert len(frames) == 3 and frames[1].z.shape == (7, 13) and frames[1].image.shape == (1, 3, 16, 24)


@pytest.mark.parametrize("kind", ["pixels", "fft"])
def test_inpaint_keeps_outside_exactly(kind, kw, clip_only):
    from clipgan.edit import inpaint

    g = torch.Generator().manual_seed(0)
    picture = Image.fromarray((torch.rand(16, 24, 3, generator=g) * 255).byte().numpy())
    mask = torch.zeros(1, 1, 16, 24)
    mask[..., 4:12, 4:12] = 1
    result = inpaint("a red circle", picture, mask, models=clip_only, image_model=kind, feather_px=1, **kw)
    got, want = np.asarray(result.image), np.asarray(picture)
    far = np.ones((16, 24), bool)
    far[2:14, 2:14] = False  # the mask grown by the 1 px seam, and a margin
    assert (got[far] == want[far]).all()
    assert (got[6:10, 6:10] != want[6:10, 6:10]).any()


def test_strokes_refuse_what_needs_a_picture(kw, clip_only):
    from clipgan.animate import zoom
    from clipgan.edit import inpaint

    opts = {k: v for k, v in kw.items() if k != "iterations"}
    with pytest.raises(ClipganError, match="zoom needs an image model that can start from a picture; "
                                           "--image-model strokes cannot"):
        zoom(["a red circle"], models=clip_only, image_model="strokes", frames=2, **opts)
    with pytest.raises(ClipganError, match="inpainting needs"):
        inpaint("x", Image.new("RGB", (24, 16)), torch.ones(1, 1, 16, 24), models=clip_only, image_model="strokes", **kw)


def test_unknown_image_model_is_one_line():
    from clipgan.config import Settings

    with pytest.raises(ClipganError, match="unknown image-model 'voxels'; choose from vqgan, pixels, fft, strokes"):
        Settings(image_model="voxels").validate()


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "clipgan", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_cli_strokes_svg(tiny_settings, tmp_path):
    from clipgan.image_models.strokes import from_svg

    clip = tiny_settings["clip"][0]
    done = _cli("generate", "a red circle", "--image-model", "strokes", "--strokes", "5", "--clip", clip, "-s", "24", "16",
                "-i", "2", "--cutn", "2", "--seed", "3", "--device", "cpu", "-q", "-o", "out.svg", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "out.svg").read_text()
    z, size = from_svg(text)
    assert size == (24, 16) and z.shape == (6, 13)
    assert '"image_model": "strokes"' in text  # the settings ride along, as in a PNG

    bad = _cli("generate", "a red circle", "--clip", clip, "-s", "24", "16", "-o", "no.svg", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "add --image-model strokes" in bad.stderr
    assert not (tmp_path / "no.svg").exists()
