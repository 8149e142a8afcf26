"""`clipgan score`: mechanics on a tiny random CLIP, ranking with the bundled toy CLIP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

import clipgan.cli_edit  # noqa: F401  registers outpaint, upscale, score
from clipgan.cli import app
from clipgan.errors import ClipganError
from clipgan.score import Score, score, table, views

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.fixture(scope="module")
def clip_spec(tiny_models) -> str:
    config, weights = tiny_models["clip"]
    return f"{config}:{weights}"


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("score")
    paths = []
    for name, color in (("red", (220, 30, 30)), ("blue", (30, 70, 220))):
        Image.new("RGB", (40, 30), color).save(folder / f"{name}.png")
        paths.append(folder / f"{name}.png")
    return paths


def test_every_pair_best_first(clip_spec, images):
    rows = score([str(p) for p in images], ["a", "b", "c"], clip=[clip_spec], device="cpu")
    assert len(rows) == 6 and {(r.image, r.prompt) for r in rows} == {(str(p), t) for p in images for t in "abc"}
    assert [r.score for r in rows] == sorted((r.score for r in rows), reverse=True)
    assert all(-1 <= r.score <= 1 for r in rows)
    assert score([str(images[0])], ["a"], clip=[clip_spec], device="cpu") == \
        score([str(images[0])], ["a"], clip=[clip_spec], device="cpu")  # deterministic


def test_crops_and_ensemble(clip_spec, images):
    assert views(Image.open(images[0]), 32, crops=True).shape == (6, 3, 32, 32)
    one = score([str(images[0])], ["a"], clip=[clip_spec], device="cpu")[0].score
    two = score([str(images[0])], ["a"], clip=[clip_spec, clip_spec], device="cpu")[0].score
    assert two == pytest.approx(one)  # an ensemble averages
    cropped = score([Image.open(images[0])], ["a"], clip=[clip_spec], device="cpu", crops=True)
    assert cropped[0].image == "image-0"


def test_bad_input(clip_spec, tmp_path):
    (tmp_path / "x.png").write_text("nope")
    with pytest.raises(ClipganError, match="not a readable image"):
        score([str(tmp_path / "x.png")], ["a"], clip=[clip_spec])
    with pytest.raises(ClipganError, match="prompt"):
        score([str(tmp_path / "x.png")], [], clip=[clip_spec])


def test_table():
    text = table([Score("a.png", "cat", 0.31234), Score("bb.png", "dog", 0.2)])
    assert text.splitlines()[1].split() == ["0.3123", "a.png", "cat"]


def test_cli_json_and_table(clip_spec, images):
    args = [*map(str, images), "-p", "a red thing", "--prompt", "a blue thing", "--clip", clip_spec, "--device", "cpu"]
    r = runner.invoke(app, ["score", *args, "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert isinstance(data, list) and len(data) == 4
    assert all(set(d) == {"image", "prompt", "score"} and isinstance(d["score"], float) for d in data)
    assert [d["score"] for d in data] == sorted((d["score"] for d in data), reverse=True)
    r = runner.invoke(app, ["score", *args])
    assert r.exit_code == 0 and r.stdout.splitlines()[0].split() == ["score", "image", "prompt"]
    assert len(r.stdout.splitlines()) == 5


def test_cli_errors(clip_spec, images, tmp_path):
    r = runner.invoke(app, ["score", str(images[0]), "--clip", clip_spec])
    assert r.exit_code == 2 and "--prompt" in r.output
    r = runner.invoke(app, ["score", str(tmp_path / "missing.png"), "-p", "x", "--clip", clip_spec])
    assert r.exit_code == 2 and "not found" in r.output


def test_bundled_clip_ranks_the_matching_render_first():
    from clipgan.io import to_pil
    from clipgan.toyworld.render import Spec, render

    specs = [Spec("circle", "red", "blue"), Spec("circle", "blue", "red"), Spec("square", "green", "yellow"),
             Spec("star", "yellow", "purple"), Spec("circle", "green", "white")]
    pictures = [to_pil(render(s, 64)) for s in specs]
    rows = score(pictures, ["a red circle on a blue background"], device="cpu")  # default CLIP: the bundled one
    assert rows[0].image == "image-0"
