"""What the bundled toy models reliably show, judged on the picture by the independent shape
classifier (trained on renders, not the guiding CLIP) and by pixel colours.

With the contrast (the default for the toy CLIP) the bundled models draw squares and crosses on
nearly every bench prompt, triangles and circles on about half, stars rarely; toy-contrast in the
refinement (the default since 2026-11-30) lifts that to about three prompts in four (docs/benchmarks.md).
So the shape claims ask for squares and crosses. Every claim was checked at several seeds on the
machine these tests were written on (the count is beside each; the seed used is one of the right
ones, not the only one). One torch thread: the thread count changes float sums and so the picture.
A story ("a ^ b") ends on b's shape and foreground, but b's background is often missed, so it
is not claimed. The diffusion claims use the bench's own rules (clipgan.toyworld.bench).
"""

import pytest
import torch

import clipgan
from clipgan import animate
from clipgan.pipeline import load_models
from clipgan.toyworld.render import nearest_color_fractions

FIRST = "a red circle on a green background"


def top_two(image):
    fractions = {k: float(v) for k, v in nearest_color_fractions(image.float()).items()}
    return set(sorted(fractions, key=fractions.get, reverse=True)[:2])


@pytest.fixture(scope="module")
def toy():
    settings = clipgan.Settings(device="cpu", cutn=16)
    return settings, load_models(settings)


def test_a_zoom_keeps_its_colours(toy):
    settings, models = toy
    frames = list(animate.zoom([FIRST], frames=6, zoom=1.05, first_steps=60, steps_per_frame=6,
                               models=models, settings=settings.replace(seed=0)))
    for frame in (frames[0], frames[-1]):
        assert top_two(frame.image[0]) == {"red", "green"}, nearest_color_fractions(frame.image[0].float())


def judge(image, fg: str, shape: str, bg: str, classifier) -> dict:
    """The bench's rules: the classifier's shape, and each colour's share of the pixels."""
    from clipgan.toyworld.bench import score
    from clipgan.toyworld.classifier import predict

    return {**score(image.float(), fg, shape, bg, classifier), "seen": predict(classifier, image[None].float())[0]}


def all_right(*seen: dict) -> bool:
    return all(x["shape_hit"] and x["fg_hit"] and x["bg_hit"] for x in seen)


def generated(settings, models, classifier, fg: str, shape: str, bg: str, seed: int) -> dict:
    """The bench's prompt for (fg, shape, bg), generated with `settings` and judged."""
    from clipgan.io import to_tensor
    from clipgan.toyworld.render import Spec, caption

    result = clipgan.generate(caption(Spec(shape, fg, bg)), models=models, settings=settings, seed=seed)
    return judge(to_tensor(result.image)[0], fg, shape, bg, classifier)


@pytest.fixture(scope="module")
def classifier():
    from clipgan.toyworld.classifier import bundled

    return bundled()


@pytest.fixture(scope="module")
def defaults(toy):
    """clipgan's own settings (the toy's fixture has fewer cutouts), with the same loaded models."""
    return clipgan.Settings(device="cpu"), toy[1]


@pytest.mark.parametrize("image_model, fg, shape, bg, seed", [  # each right at seeds 0-3, or 3 of 4 where noted
    ("vqgan", "yellow", "square", "purple", 3),
    ("vqgan", "blue", "cross", "orange", 2),  # 3 of 4 (re-checked with toy-contrast, the default since 2026-11-30)
    ("diffusion", "white", "square", "green", 0),
    ("diffusion", "blue", "cross", "orange", 2),  # 4 of 4 with toy-contrast (3 of 4 before)
    ("diffusion", "red", "triangle", "white", 3),  # 3 of 4
])
def test_generate_draws_the_asked_shape(request, classifier, one_thread, image_model, fg, shape, bg, seed):
    """clipgan's defaults with the VQGAN; the diffusion fixture's shorter recipe (the bench rows')."""
    settings, models = request.getfixturevalue("defaults" if image_model == "vqgan" else "toy_diffusion")
    seen = generated(settings, models, classifier, fg, shape, bg, seed)
    assert all_right(seen), seen


def test_a_story_ends_on_its_last_part(defaults, classifier, one_thread):
    """Right shape and foreground at seeds 0-3 (4 of 4); the asked background at 1 of 4, so not claimed."""
    from clipgan.io import to_tensor

    settings, models = defaults
    result = clipgan.generate("a red circle on a green background ^ a blue square on a yellow background",
                              models=models, settings=settings, seed=1)
    seen = judge(to_tensor(result.image)[0], "blue", "square", "yellow", classifier)
    assert seen["shape_hit"] and seen["fg_hit"], seen


def test_inpainting_draws_a_star_in_the_mask_and_keeps_the_rest(defaults, classifier, one_thread):
    """A red circle on blue; the middle masked and asked for a yellow star: judged a star at seeds 0-3.
    Outside the mask the picture is only blue background, so the star the classifier sees is inside."""
    from clipgan import edit
    from clipgan.io import to_pil, to_tensor
    from clipgan.toyworld.render import Spec, render

    settings, models = defaults
    picture = to_pil(render(Spec("circle", "red", "blue"))[None])
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 12:52, 12:52] = 1
    result = edit.inpaint("a yellow star on a blue background", picture, mask, models=models, settings=settings, seed=1)
    out, before = to_tensor(result.image)[0], to_tensor(picture)[0]
    r = result.settings.feather  # the seam blends over r px outside the mask; beyond it nothing moves
    kept = torch.nn.functional.max_pool2d(mask, 2 * r + 1, stride=1, padding=r)[0, 0] == 0
    assert kept.sum() > 0 and torch.equal(out[:, kept], before[:, kept])
    assert float(nearest_color_fractions(before[:, mask[0, 0] == 0][:, None].float())["blue"]) == 1.0
    seen = judge(out, "yellow", "star", "blue", classifier)
    assert all_right(seen), seen


def test_outpainting_continues_the_background_colour(defaults, one_thread):
    """Both seeds tried (0, 1): the new strips are all green."""
    from clipgan import edit
    from clipgan.io import to_pil, to_tensor
    from clipgan.toyworld.render import Spec, render

    settings, models = defaults
    picture = to_pil(render(Spec("square", "red", "green"))[None])
    result = edit.outpaint(picture, "a red square on a green background", extend={"left": 16, "right": 16},
                           models=models, settings=settings, seed=0)
    out = to_tensor(result.image)[0]
    assert out.shape == (3, 64, 96)
    strips = torch.cat([out[:, :, :16], out[:, :, -16:]], dim=2).float()
    assert float(nearest_color_fractions(strips)["green"]) >= 0.9, nearest_color_fractions(strips)


def test_a_morph_from_a_circle_ends_on_a_star(defaults, classifier, one_thread):
    """Both ends right at seeds 1 and 2 of 0-4 (the first frame a circle at 3 of 5, the last a star
    at 2 of 5, else a cross): a star is the shape the bundled models draw least, so this pins a seed
    that works and checks that a morph can get there, not that it does at every seed."""
    settings, models = defaults
    frames = list(animate.morph(["a red circle on a blue background", "a yellow star on a black background"],
                                frames_per_transition=1, mode="latent", models=models, settings=settings.replace(seed=1)))
    assert len(frames) == 2
    first = judge(frames[0].image[0], "red", "circle", "blue", classifier)
    last = judge(frames[-1].image[0], "yellow", "star", "black", classifier)
    assert all_right(first, last), (first, last)


# ---------------------------------------------------------------- the bundled diffusion UNet

@pytest.fixture(scope="module")
def toy_diffusion():
    from clipgan.diffuse import load_diffusion_models

    settings = clipgan.Settings(device="cpu", image_model="diffusion", iterations=30, cutn=16)
    return settings, load_diffusion_models(settings)


def background_hit(image, bg) -> bool:
    """The bench's background rule. Only the background: the UNet's foreground is often small, so
    the foreground colour is missed on about 1 prompt in 5 (held-out bench, docs/benchmarks.md)."""
    from clipgan.toyworld.bench import BG_MIN

    return float(nearest_color_fractions(image.float())[bg]) >= BG_MIN


@pytest.mark.parametrize("fg, shape, bg, seed", [
    ("orange", "square", "purple", 11), ("white", "star", "green", 12), ("blue", "triangle", "yellow", 13),
])
def test_diffusion_draws_the_asked_background(toy_diffusion, one_thread, fg, shape, bg, seed):
    from clipgan.io import to_tensor

    settings, models = toy_diffusion
    article = "an" if fg[0] in "aeiou" else "a"
    result = clipgan.generate(f"{article} {fg} {shape} on a {bg} background", models=models, settings=settings, seed=seed)
    image = to_tensor(result.image)[0]
    assert background_hit(image, bg), nearest_color_fractions(image)


def test_diffusion_morph_ends_are_judged_right(toy_diffusion, classifier, one_thread):
    """White square on green -> blue cross on orange: both ends right at seeds 0-3 (4 of 4)."""
    from clipgan.diffuse import morph_frames

    settings, models = toy_diffusion
    frames = list(morph_frames(["a white square on a green background", "a blue cross on an orange background"],
                               1, models=models, settings=settings.replace(seed=0)))
    assert len(frames) == 2
    first = judge(frames[0].image[0], "white", "square", "green", classifier)
    last = judge(frames[-1].image[0], "blue", "cross", "orange", classifier)
    assert all_right(first, last), (first, last)
