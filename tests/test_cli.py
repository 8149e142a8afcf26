"""`clipgan` on the command line: through typer's CliRunner and as a real subprocess, with tiny
random models written by the fixtures and loaded through the real loaders."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from clipgan.cli import app
from clipgan.config import Settings
from clipgan.io import SETTINGS_KEY, read_settings
from clipgan.models.registry import list_models

SETTING_NAMES = {f.name for f in dataclasses.fields(Settings)}
PANELS = ("Prompts", "Output", "Start image", "Cutouts", "Optimizer", "Models", "Run")
runner = CliRunner()


@pytest.fixture(scope="module")
def model_args(tiny_models) -> list[str]:
    """Flags selecting the tiny models, on CPU, small and quick (one step: most tests need no more)."""
    yaml_path, ckpt_path = tiny_models["vq"]
    config, weights = tiny_models["clip"]
    return ["--vqgan-config", str(yaml_path), "--vqgan-checkpoint", str(ckpt_path),
            "--clip", f"{config}:{weights}", "--device", "cpu", "-s", "16", "16", "-i", "1", "--cutn", "2"]


def invoke(args: list[str]):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def ok(args: list[str]):
    result = invoke(args)
    assert result.exit_code == 0, result.output
    return result


def env() -> dict:
    return {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb", "PYTHONIOENCODING": "utf-8"}


def run(cmd: list[str], cwd: Path, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout)


def png_settings(path: Path) -> dict:
    with Image.open(path) as image:
        assert image.format == "PNG"
        return json.loads(image.info[SETTINGS_KEY])


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


# --- real subprocesses -------------------------------------------------------------------------

def test_subprocess_generate_draws_records_and_prints_seed(tmp_path, model_args):
    """`python -m clipgan generate` end to end, without --seed, at a size the factor does not divide."""
    out = tmp_path / "out.png"
    args = [a for a in model_args]
    args[args.index("-s") + 1: args.index("-s") + 3] = ["17", "17"]
    p = run([sys.executable, "-m", "clipgan", "generate", "a red circle | a blue square", *args, "-o", out], tmp_path)
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    seed = int(re.search(r"seed: (\d+)", p.stderr).group(1))
    assert f"saved {out} (seed {seed})" in p.stdout
    notes = [line for line in p.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "17x17" in notes[0], p.stderr
    with Image.open(out) as image:
        assert image.size in ((16, 16), (18, 18))
        size = image.size
    data = png_settings(out)
    assert set(data) == SETTING_NAMES
    assert data["seed"] == seed
    assert tuple(data["size"]) == size  # recorded as run, after rounding
    assert data["prompts"] == ["a red circle | a blue square"]
    assert data["iterations"] == 1 and data["cutn"] == 2 and data["device"] == "cpu"
    assert Settings.from_dict(data).seed == seed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]  # no temporary files left


def test_subprocess_help_does_not_import_torch(tmp_path):
    code = (
        "import sys\n"
        "from clipgan.cli import main\n"
        "codes = []\n"
        "for argv in (['--help'], ['generate', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit as e:\n"
        "        codes.append(e.code)\n"
        "heavy = sorted(m for m in ('torch', 'open_clip', 'kornia', 'taming', 'torchvision') if m in sys.modules)\n"
        "print('CODES', codes, 'HEAVY', heavy)\n"
    )
    p = run([sys.executable, "-c", code], tmp_path)
    assert p.returncode == 0, p.stderr
    assert "CODES [0, 0] HEAVY []" in p.stdout, p.stdout[-2000:]
    for command in ("generate", "models", "download"):
        assert command in p.stdout
    for panel in PANELS:
        assert panel in p.stdout, panel
    for option in ("--iterations", "--size", "--output", "--save-every", "--frames-dir", "--image-prompt",
                   "--init-image", "--init-weight", "--init-noise", "--cutn", "--cut-pow", "--augments",
                   "--optimizer", "--lr", "--seed", "--device", "--precision", "--vqgan-config",
                   "--vqgan-checkpoint", "--clip", "--trust-checkpoint", "--quiet", "--from-png"):
        assert option in p.stdout, option


def test_console_script(tmp_path):
    script = Path(sys.executable).parent / "clipgan"
    if not script.exists():
        pytest.skip("no console script beside this interpreter")
    p = run([script, "generate", "--help"], tmp_path)
    assert p.returncode == 0, p.stderr
    assert "--iterations" in p.stdout and "Models" in p.stdout
    p = run([script, "download", "toy"], tmp_path)
    assert p.returncode == 0, p.stderr
    assert "bundled" in p.stdout


# --- CliRunner ---------------------------------------------------------------------------------

def test_help_lists_panels_and_options():
    result = ok(["generate", "--help"])
    for panel in PANELS:
        assert panel in result.stdout
    assert "--trust-checkpoint" in result.stdout
    top = ok(["--help"])
    assert "generate" in top.stdout and "models" in top.stdout


def test_generate_with_seed_is_byte_identical(tmp_path, model_args):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    ra = ok(["generate", "a lighthouse", *model_args, "--seed", 7, "-o", a])
    ok(["generate", "a lighthouse", *model_args, "--seed", 7, "-o", b])
    assert a.read_bytes() == b.read_bytes()
    assert "seed 7" in ra.stdout
    assert "seed:" not in ra.stderr  # given, not drawn
    data = png_settings(a)
    assert set(data) == SETTING_NAMES and data["seed"] == 7
    with Image.open(a) as image:
        assert image.size == (16, 16)

    # --from-png reruns the recorded settings: same seed -> the same picture
    c = tmp_path / "c.png"
    ok(["generate", "--from-png", a, "-o", c])
    assert c.read_bytes() == a.read_bytes()

    # ... and flags given on the command line override them
    d = tmp_path / "d.png"
    ok(["generate", "--from-png", a, "-i", 2, "--cutn", 3, "-o", d])
    changed = png_settings(d)
    assert changed["iterations"] == 2 and changed["cutn"] == 3
    same = {k for k in data if k not in ("iterations", "cutn")}
    assert {k: changed[k] for k in same} == {k: data[k] for k in same}


def test_save_every_writes_numbered_frames(tmp_path, model_args):
    out, frames = tmp_path / "out.png", tmp_path / "frames"
    ok(["generate", "a cat", *model_args, "-i", 2, "--seed", 1, "--save-every", 1, "--frames-dir", frames, "-o", out])
    names = sorted(p.name for p in frames.iterdir())
    assert names == ["00001.png", "00002.png"]
    for name in names:
        with Image.open(frames / name) as image:
            assert image.size == (16, 16)
    assert png_settings(out)["iterations"] == 2
    assert np.array_equal(pixels(frames / "00002.png"), pixels(out))  # the last frame is the result
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames", "out.png"]


@pytest.mark.parametrize("suffix,fmt", [(".jpg", "JPEG"), (".webp", "WEBP")])
def test_output_formats(tmp_path, model_args, suffix, fmt):
    out = tmp_path / f"out{suffix}"
    ok(["generate", "a cat", *model_args, "--seed", 3, "-o", out])
    with Image.open(out) as image:
        assert image.format == fmt and image.size == (16, 16)
    data = read_settings(out)  # carried in EXIF
    assert set(data) == SETTING_NAMES and data["seed"] == 3
    assert Settings.from_dict(data).seed == 3  # good for --from-png


def test_size_rounded_with_note(tmp_path, model_args):
    out = tmp_path / "out.png"
    result = ok(["generate", "a cat", *model_args, "--seed", 1, "-s", 19, 13, "-o", out])
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "19x13" in notes[0]
    with Image.open(out) as image:
        w, h = image.size
    assert w % 2 == 0 and h % 2 == 0 and abs(w - 19) <= 1 and abs(h - 13) <= 1
    assert tuple(png_settings(out)["size"]) == (w, h)


def test_pipe_splits_one_argument_into_two_prompts(tmp_path, model_args):
    """'a | b' in one argument steers exactly like two arguments, and unlike 'a' alone."""
    one, two, single = tmp_path / "one.png", tmp_path / "two.png", tmp_path / "single.png"
    # the last step only scores, so two steps make one update: large enough to move the latent to other codes
    big_steps = ["-i", 2, "--lr", 5]
    ok(["generate", "a red circle | a blue square", *model_args, *big_steps, "--seed", 5, "-o", one])
    ok(["generate", "a red circle", "a blue square", *model_args, *big_steps, "--seed", 5, "-o", two])
    ok(["generate", "a red circle", *model_args, *big_steps, "--seed", 5, "-o", single])
    assert np.array_equal(pixels(one), pixels(two))
    assert not np.array_equal(pixels(one), pixels(single))


def test_image_prompt_and_init_image(tmp_path, model_args):
    rng = np.random.default_rng(0)
    picture = tmp_path / "picture.png"
    Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(picture)
    out = tmp_path / "out.png"
    ok(["generate", *model_args, "--seed", 2, "--image-prompt", f"{picture}:0.5", "-o", out])
    assert png_settings(out)["image_prompts"] == [f"{picture}:0.5"]

    init = tmp_path / "init.png"
    ok(["generate", "a cat", *model_args, "--seed", 2, "--init-image", picture, "--init-weight", 0.5, "-o", init])
    data = png_settings(init)
    assert data["init_image"] == str(picture) and data["init_weight"] == 0.5
    with Image.open(init) as image:
        assert image.size == (16, 16)


def test_quiet_prints_nothing(tmp_path, model_args):
    out = tmp_path / "out.png"
    result = ok(["generate", "a cat", *model_args, "-s", 17, 17, "-q", "-o", out])
    assert result.stdout == ""
    assert "note:" not in result.stderr and "seed:" not in result.stderr and "step" not in result.stderr
    assert out.exists() and png_settings(out)["seed"] is not None


def test_models_lists_toy_and_published_names():
    result = ok(["models"])
    names = [status.name for status in list_models()]
    assert "toy" in names and len(names) > 1
    for name in names:
        assert name in result.stdout
    assert "vqgan_imagenet_f16_16384" in result.stdout
    assert re.search(r"^toy\s+bundled", result.stdout, re.M)


def test_download_toy_says_bundled():
    result = ok(["download", "toy"])
    assert "bundled" in result.stdout
