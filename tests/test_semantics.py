"""What the bundled toy models reliably show, judged on the picture (not on the guiding CLIP).

Only colour claims: the bundled models draw the named colours on every bench prompt but the
named shape on only some (docs/benchmarks.md), so no test here asks for a shape.
"""

import pytest

import clipgan
from clipgan import animate
from clipgan.io import to_tensor
from clipgan.pipeline import load_models
from clipgan.toyworld.render import nearest_color_fractions

FIRST = "a red circle on a green background"
SECOND = "a blue square on a yellow background"


def shares(image, names):
    """Fraction of pixels whose nearest toy-world colour is one of `names`."""
    fractions = nearest_color_fractions(image.float())
    return sum(float(fractions[n]) for n in names)


def top_two(image):
    fractions = {k: float(v) for k, v in nearest_color_fractions(image.float()).items()}
    return set(sorted(fractions, key=fractions.get, reverse=True)[:2])


@pytest.fixture(scope="module")
def toy():
    settings = clipgan.Settings(device="cpu", cutn=16)
    return settings, load_models(settings)


@pytest.mark.parametrize("seed", [0, 1])
def test_a_story_ends_on_its_second_prompt(toy, seed):
    settings, models = toy
    result = clipgan.generate(f"{FIRST} ^ {SECOND}", models=models, settings=settings.replace(iterations=80), seed=seed)
    image = to_tensor(result.image)[0]
    assert top_two(image) == {"blue", "yellow"}, nearest_color_fractions(image)
    assert shares(image, ("blue", "yellow")) > 3 * shares(image, ("red", "green"))


def test_a_zoom_keeps_its_colours(toy):
    settings, models = toy
    frames = list(animate.zoom([FIRST], frames=6, zoom=1.05, first_steps=60, steps_per_frame=6,
                               models=models, settings=settings.replace(seed=0)))
    for frame in (frames[0], frames[-1]):
        assert top_two(frame.image[0]) == {"red", "green"}, nearest_color_fractions(frame.image[0].float())
