"""Contrast: a prompt naming one of a set of words is also pushed away from itself with the others.

The words are the settings' own, or the bundled toy CLIP's shapes; the targets are built by the real
run setup from the real CLIPs (bundled, or tiny random ones in open_clip's format).
"""

import json

import pytest
import torch
from typer.testing import CliRunner

from clipgan.cli import app
from clipgan.config import Settings
from clipgan.io import read_settings
from clipgan.runsetup import build_guides

from conftest import tiny_cli_args

PROMPT = "a red circle on a blue background"


def targets(settings, models):
    """The first CLIP's targets (a contrast CLIP's guide, tests/test_contrast_clip.py, comes after)."""
    return [(t.label, t.weight) for t in build_guides(settings, models)[0].targets]


@pytest.fixture(scope="module")
def toy():
    from clipgan.pipeline import load_models

    settings = Settings(device="cpu", prompts=[PROMPT])
    return settings, load_models(settings)


def test_the_bundled_clip_sets_its_shapes_against_each_other_by_default(toy):
    settings, models = toy
    assert targets(settings, models) == [
        (PROMPT, 1.5),
        ("a red square on a blue background", -0.125),
        ("a red triangle on a blue background", -0.125),
        ("a red star on a blue background", -0.125),
        ("a red cross on a blue background", -0.125),
    ]
    guide = build_guides(settings, models)[0]
    star = guide.perceptor.encode_text(["a red star on a blue background"])
    assert torch.allclose(guide.targets[3].embeds, star, atol=1e-5)  # each contrast is the CLIP's reading of its text


@pytest.mark.parametrize("change", [dict(contrast=()), dict(contrast_weight=0.0), dict(prompts=["red on a blue background"])])
def test_no_contrast_when_turned_off_or_nothing_is_named(toy, change):
    settings, models = toy
    s = settings.replace(**change)
    assert targets(s, models) == [(s.prompts[0], 1.0)]


def test_other_clips_have_no_words_of_their_own_but_take_the_users(tiny_loaded):
    models, kw = tiny_loaded
    s = Settings(**kw).replace(prompts=["a cat on a sofa:2"])
    assert targets(s, models) == [("a cat on a sofa", 2.0)]
    assert targets(s.replace(contrast=("cat", "dog"), contrast_weight=1.0), models) == [
        ("a cat on a sofa", 4.0), ("a dog on a sofa", -2.0)]


def test_the_cli_records_the_contrast_in_the_picture(tiny_models, tiny_settings, tmp_path):
    out, off = tmp_path / "a.png", tmp_path / "b.png"
    args = ["generate", "a red star", *tiny_cli_args(tiny_settings), "-i", "2", "-q"]
    result = CliRunner().invoke(app, [*args, "-o", str(out), "--contrast", "star, circle", "--contrast-weight", "1"])
    assert result.exit_code == 0, result.output
    stored = read_settings(out)
    assert stored["contrast"] == ["star", "circle"] and stored["contrast_weight"] == 1.0
    assert Settings.from_dict(json.loads(json.dumps(stored))).contrast == ("star", "circle")
    result = CliRunner().invoke(app, [*args, "-o", str(off), "--contrast", "none"])
    assert result.exit_code == 0, result.output
    assert read_settings(off)["contrast"] == []


@pytest.mark.parametrize("flags, message", [
    (["--contrast", "circle"], "at least two words"),
    (["--contrast", "star,Star"], "names a word twice"),
    (["--contrast-weight", "-1"], "contrast-weight must be 0 or more"),
    (["--contrast-weight", "nan"], "contrast-weight must be a finite number"),
])
def test_a_bad_contrast_is_a_one_line_error(tiny_settings, tmp_path, flags, message):
    out = tmp_path / "a.png"
    result = CliRunner().invoke(app, ["generate", "a red star", *tiny_cli_args(tiny_settings), "-o", str(out), *flags])
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize("given, words", [
    ("circle, Square", ("circle", "Square")), (["star ", "cross"], ("star", "cross")),
    ("none", ()), ("None", ()), ("", ()), (None, None),
])
def test_the_words_as_any_caller_spells_them(given, words):
    """The CLI, the API, a batch file's --set and a PNG's settings all reach Settings with these."""
    assert Settings(contrast=given).replace().contrast == words
