"""The VQGAN path pinned to its output before the image-model redesign (issue 15).

Tiny random models written by this file (not the bundled ones, which get retrained), a fixed
seed, a few steps at 32x32: generate (with init and TV terms), a story prompt, inpainting,
a guided morph and a zoom. The expected pixels in tests/data/pin/ were written by the code
before the redesign (commit 12ff235) on a 2-core x86-64 with AVX-512 BF16, torch 2.x CPU, one
thread; the test asserts the same bytes now. Float results can differ on another CPU
(other SIMD paths): there the message gives the largest pixel difference.

CLIPGAN_PIN_WRITE=1 rewrites the expected files (only ever with the pre-redesign code).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_clip, write_vqgan
from PIL import Image

DATA = Path(__file__).parent / "data" / "pin"
WRITE = os.environ.get("CLIPGAN_PIN_WRITE") == "1"

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def pinned(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pin")
    yaml_path, ckpt_path = write_vqgan(folder, "vq", seed=3)
    config, weights = write_clip(folder / "clip", name="pin-clip", seed=4)
    kw = dict(vqgan_config=str(yaml_path), vqgan_checkpoint=str(ckpt_path), clip=(f"{config}:{weights}",),
              size=(32, 32), iterations=4, cutn=4, device="cpu", seed=11)
    from clipgan.config import Settings
    from clipgan.pipeline import load_models

    return load_models(Settings(**kw)), kw, folder


def check(name: str, image: Image.Image) -> None:
    got = np.asarray(image.convert("RGB"))
    path = DATA / f"{name}.png"
    if WRITE:
        DATA.mkdir(parents=True, exist_ok=True)
        Image.fromarray(got).save(path)
    want = np.asarray(Image.open(path).convert("RGB"))
    assert got.shape == want.shape
    diff = np.abs(got.astype(int) - want.astype(int))
    assert diff.max() == 0, f"{name}: {np.count_nonzero(diff)} values differ, by up to {diff.max()}"


def test_generate_pinned(pinned):
    from clipgan.pipeline import generate

    models, kw, _ = pinned
    result = generate("a red circle", models=models, init_weight=0.5, tv_weight=0.2, **kw)
    check("generate", result.image)


def test_generate_story_and_init_noise_pinned(pinned):
    from clipgan.pipeline import generate

    models, kw, _ = pinned
    result = generate("a red circle ^ a blue square", models=models, init_noise="gradient", **kw)
    check("story", result.image)


def test_inpaint_pinned(pinned):
    from clipgan.pipeline import generate

    models, kw, folder = pinned
    g = torch.Generator().manual_seed(0)
    picture = (torch.rand(32, 32, 3, generator=g) * 255).byte().numpy()
    Image.fromarray(picture).save(folder / "in.png")
    mask = np.zeros((32, 32), np.uint8)
    mask[8:24, 4:20] = 255
    Image.fromarray(mask).save(folder / "mask.png")
    result = generate("a green square", models=models, init_image=str(folder / "in.png"),
                      mask=str(folder / "mask.png"), **kw)
    check("inpaint", result.image)


def test_morph_pinned(pinned):
    from clipgan.animate import morph

    models, kw, _ = pinned
    kw = {k: v for k, v in kw.items() if k != "iterations"}
    frames = list(morph(["a red circle", "a blue square"], models=models, frames_per_transition=2,
                        keyframe_steps=3, steps_per_frame=2, **kw))
    assert len(frames) == 3
    for f in frames:
        check(f"morph{f.index}", f.pil())


def test_zoom_pinned(pinned):
    from clipgan.animate import zoom

    models, kw, _ = pinned
    kw = {k: v for k, v in kw.items() if k != "iterations"}
    frames = list(zoom(["a red circle"], models=models, frames=2, first_steps=3, steps_per_frame=2, zoom=1.1, **kw))
    for f in frames:
        check(f"zoom{f.index}", f.pil())
