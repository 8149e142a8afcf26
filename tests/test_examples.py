"""Every script in examples/ runs and writes real pictures and videos of the size and length asked for.

With the tiny random models (always), and as `python examples/NAME.py` with the bundled
default models once they are in checkpoints/. Small sizes and few steps: the file takes
well under two minutes on two cores.
"""

from __future__ import annotations

import importlib.util
import math
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image


ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

SIZE = 32  # tiny models (factor 2); the bundled ones get BUNDLED_SIZE
BUNDLED_SIZE = 64
MORPH_FRAMES = 3  # per transition; 3 prompts -> 7 frames
ITERATIONS, EVERY = 4, 2  # api_callback keeps steps 0, 2 and 3 (the last)


def argv(name: str, out: Path, size: int) -> list[str]:
    """Arguments for a small, fast run of one example."""
    common = ["--out", str(out), "--size", str(size)]
    if name == "morph_video":
        return common + ["--frames", str(MORPH_FRAMES), "--keyframe-steps", "2", "--steps-per-frame", "1"]
    if name == "api_callback":
        return common + ["--iterations", str(ITERATIONS), "--every", str(EVERY)]
    return common + ["--iterations", str(ITERATIONS if name == "sketch_to_image" else 3)]


def video_frames(path: Path) -> list[Image.Image]:
    from clipgan.video import iter_frames

    return list(iter_frames(path))


def check_outputs(name: str, out: Path, size: int) -> None:
    """The files each example promises, opened and measured."""
    from clipgan.animate import morph_frame_count
    from clipgan.io import read_settings

    def picture(file: str, settings: bool = True) -> None:
        path = out / file
        assert path.is_file(), f"{name} did not write {file}"
        with Image.open(path) as image:
            image.load()
            assert image.size == (size, size) and image.mode == "RGB"
        if settings:
            assert read_settings(path)["size"] == [size, size]  # rerunnable with --from-png

    if name == "basic_generation":
        picture("basic.png")
    elif name == "weighted_prompts":
        picture("weighted.png")
        picture("negative.png")
        assert read_settings(out / "negative.png")["prompts"][-1].endswith(":-0.5")
    elif name == "image_prompt":
        picture("reference.png", settings=False)
        picture("start.png", settings=False)
        picture("image-prompt.png")
        assert read_settings(out / "image-prompt.png")["image_prompts"]
    elif name == "morph_video":
        frames = video_frames(out / "morph.mp4")
        assert len(frames) == morph_frame_count(3, MORPH_FRAMES) == 7
        assert {f.size for f in frames} == {(size, size)}
        picture("morph-last.png", settings=False)
    elif name == "api_callback":
        picture("callback.png")
        frames = video_frames(out / "progress.gif")
        assert len(frames) == math.ceil(ITERATIONS / EVERY) + ((ITERATIONS - 1) % EVERY != 0) == 3
        assert {f.size for f in frames} == {(size, size)}
    elif name == "sketch_to_image":
        picture("sketch.png", settings=False)
        picture("result.png", settings=False)
    else:
        raise AssertionError(f"no output check for {name}")


NAMES = sorted(p.stem for p in EXAMPLES.glob("*.py") if not p.stem.startswith("_") and p.stem != "gallery")


def test_every_example_is_covered():
    assert set(NAMES) >= {"basic_generation", "weighted_prompts", "image_prompt", "morph_video", "api_callback",
                          "sketch_to_image"}


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", NAMES)
def test_example_with_tiny_models(name, tiny_settings, tmp_path):
    models = {k: v for k, v in tiny_settings.items() if k in ("vqgan_config", "vqgan_checkpoint", "clip", "device")}
    load(name).main(argv(name, tmp_path, SIZE), cutn=4, **models)
    check_outputs(name, tmp_path, SIZE)


@pytest.mark.parametrize("name", NAMES)
def test_example_as_script_with_bundled_models(name, tmp_path, monkeypatch, capsys):
    """Run as `python examples/NAME.py ...` would (__main__, sys.argv), in this process to save the imports."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(EXAMPLES / f"{name}.py"), *argv(name, tmp_path / "out", BUNDLED_SIZE)])
    runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name="__main__")
    check_outputs(name, tmp_path / "out", BUNDLED_SIZE)
    assert str(tmp_path / "out") in capsys.readouterr().out  # it says where its files went


def test_example_subprocess_writes_into_env_folder(tmp_path):
    """A real `python examples/basic_generation.py`: the folder from $CLIPGAN_EXAMPLES_OUT, the repo untouched."""
    out = tmp_path / "from-env"
    env = {**os.environ, "CLIPGAN_EXAMPLES_OUT": str(out)}
    before = set(ROOT.iterdir())
    r = subprocess.run([sys.executable, str(EXAMPLES / "basic_generation.py"), "--iterations", "2",
                        "--size", str(BUNDLED_SIZE)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    check_outputs("basic_generation", out, BUNDLED_SIZE)
    assert set(ROOT.iterdir()) == before


# ---------------------------------------------------------------- the README's gallery

def test_gallery_script_with_tiny_models(tiny_settings, tmp_path):
    from clipgan.animate import morph_frame_count

    gallery = load("gallery")
    models = {k: v for k, v in tiny_settings.items() if k in ("vqgan_config", "vqgan_checkpoint", "clip", "device")}
    written = gallery.main(["--out", str(tmp_path), "--size", str(SIZE), "--iterations", "2", "--frames", "2"],
                           cutn=4, **models)
    assert sorted(p.name for p in written) == sorted([*gallery.PICTURES, gallery.VIDEO])
    for name in gallery.PICTURES:
        assert Image.open(tmp_path / name).size == (SIZE, SIZE)
    frames = video_frames(tmp_path / gallery.VIDEO)
    assert len(frames) == morph_frame_count(len(gallery.MORPH), 2, loop=True)


def test_readme_shows_the_gallery():
    """Every file the gallery script makes is shown in the README; the committed ones stay small."""
    gallery = load("gallery")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in [*gallery.PICTURES, gallery.VIDEO]:
        assert f"docs/gallery/{name}" in readme
    if gallery.DOCS.is_dir():  # present once `make gallery` has run with the bundled models
        files = [gallery.DOCS / name for name in [*gallery.PICTURES, gallery.VIDEO]]
        assert all(f.is_file() for f in files)
        assert sum(f.stat().st_size for f in gallery.DOCS.iterdir()) < 1_000_000


def test_the_committed_gallery_shows_clipgans_defaults():
    """The README's pictures are what a new user gets: each PNG's settings carry the bundled toy's
    own recipe (coarse to fine), not a size or step count chosen for the gallery."""
    from clipgan.config import Settings, model_recipe
    from clipgan.io import read_settings

    gallery = load("gallery")
    for name, prompt in gallery.PICTURES.items():
        used = Settings.from_dict(read_settings(gallery.DOCS / name))
        default = model_recipe(Settings(prompts=[prompt]))
        assert used.prompts == [prompt]
        assert (used.size, used.upscale, used.iterations) == (default.size, default.upscale, default.iterations)
