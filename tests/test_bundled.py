"""The bundled toy models, end to end with default settings: the picture shows what the prompt says."""

import pytest

import clipgan
from clipgan.io import to_tensor
from clipgan.pipeline import load_models
from clipgan.score import score
from clipgan.toyworld.bench import BG_MIN, FG_MIN
from clipgan.toyworld.render import COLORS, nearest_color_fractions

# (foreground, shape, background); the mismatched prompt swaps in other colours
CASES = [("red", "circle", "blue"), ("yellow", "square", "purple"), ("green", "star", "orange")]


def prompt(fg, shape, bg):
    return f"a {fg} {shape} on a {bg} background"


@pytest.fixture(scope="module")
def pictures():
    settings = clipgan.Settings(seed=0, device="cpu")
    models = load_models(settings)
    return models, {case: clipgan.generate(prompt(*case), models=models, settings=settings).image for case in CASES}


@pytest.mark.parametrize("case", CASES)
def test_picture_has_the_named_colours(pictures, case):
    fg, _, bg = case
    fractions = {k: float(v) for k, v in nearest_color_fractions(to_tensor(pictures[1][case])[0]).items()}
    # the bench's colour hit: a shape on a background leaves the foreground a minority
    assert fractions[fg] >= FG_MIN and fractions[bg] >= BG_MIN, fractions
    top_two = sorted(fractions, key=fractions.get, reverse=True)[:2]
    assert set(top_two) == {fg, bg}, fractions  # the named colours beat every colour not asked for


@pytest.mark.parametrize("case", CASES)
def test_clip_prefers_the_own_prompt_to_a_mismatched_one(pictures, case):
    models, images = pictures
    fg, shape, bg = case
    other = [c for c in COLORS if c not in (fg, bg)]
    wrong = prompt(other[0], shape, other[1])
    rows = score([images[case]], [prompt(*case), wrong], perceptors=models.perceptors)
    assert rows[0].prompt == prompt(*case), rows
