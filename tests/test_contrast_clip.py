"""Contrast CLIPs (Settings.contrast_clip): a CLIP beside the others that pulls only the contrast,
the named word against the others; by default the bundled toy's toy-contrast. Real bundled and
tiny random CLIPs; the weights below are worked out by hand from contrast_weight 0.5 and 5 shapes."""

import pytest
import torch
from typer.testing import CliRunner

from clipgan.cli import app
from clipgan.config import Settings
from clipgan.io import read_settings
from clipgan.run import model_key
from clipgan.runsetup import build_guides, contrast_clips

from conftest import tiny_cli_args

PROMPT = "a red circle on a blue background"
# lane 0 at w * 0.5, each of the 4 other shapes at -w * 0.5 / 4: the shared text pulls nothing
ONLY = [(PROMPT, 0.5), ("a red square on a blue background", -0.125), ("a red triangle on a blue background", -0.125),
        ("a red star on a blue background", -0.125), ("a red cross on a blue background", -0.125)]


@pytest.fixture(scope="module")
def toy():
    from clipgan.pipeline import load_models

    settings = Settings(device="cpu", prompts=[PROMPT])
    return settings, load_models(settings)


def weights(guide):
    return [(t.label, t.weight) for t in guide.targets]


def test_the_toy_pulls_the_contrast_alone_with_its_partner(toy):
    settings, models = toy
    assert [p.name for p in models.contrast] == ["toy-contrast"]
    full, only = build_guides(settings, models, contrast=True)
    assert only.perceptor is models.contrast[0] and full.perceptor is models.perceptors[0]
    assert weights(only) == ONLY
    assert weights(full)[0] == (PROMPT, 1.5)  # the toy's own pull is as without a partner
    star = models.contrast[0].encode_text(["a red star on a blue background"])
    assert torch.allclose(only.targets[3].embeds, star, atol=1e-5)  # the partner's own reading of the text
    assert not torch.allclose(full.targets[3].embeds, star, atol=1e-3)
    assert len(build_guides(settings, models)) == 1  # only the runs that ask for them have them
    assert len(build_guides(settings.replace(contrast_clip="none"), models, contrast=True)) == 1  # loaded, not wanted


def test_a_weighted_prompt_scales_the_contrast_and_a_prompt_naming_no_shape_has_none(toy):
    settings, models = toy
    _, only = build_guides(settings.replace(prompts=[f"{PROMPT}:2"]), models, contrast=True)
    assert weights(only) == [(label, 2 * w) for label, w in ONLY]
    assert len(build_guides(settings.replace(prompts=["red on a blue background"]), models, contrast=True)) == 1


def test_the_contrast_follows_a_story_and_a_step_schedule(toy):
    settings, models = toy
    s = settings.replace(prompts=[f"{PROMPT} ^ a green star on a white background"], iterations=10)
    at = build_guides(s, models, contrast=True)
    assert weights(at(0)[1])[0] == (PROMPT, 0.5)
    assert weights(at(9)[1])[0] == ("a green star on a white background", 0.5)
    early = build_guides(settings, models, contrast=lambda step: step < 3)
    assert [len(early(i)) for i in range(5)] == [2, 2, 2, 1, 1]


@pytest.mark.parametrize("changes, clips", [
    ({}, ("toy-contrast",)),
    ({"contrast_clip": "none"}, ()),
    ({"contrast_clip": ["toy"]}, ("toy",)),
    ({"contrast": ()}, ()),  # no contrast: nothing to pull
    ({"contrast": (), "contrast_clip": ["toy"]}, ()),
    ({"contrast_weight": 0.0}, ()),
    ({"clip": ("ViT-B-32:openai",)}, ()),  # other CLIPs have no partner of their own
    ({"clip": ("toy", "ViT-B-32:openai")}, ()),
    ({"clip": ("ViT-B-32:openai",), "contrast": "cat,dog", "contrast_clip": "RN50:openai"}, ("RN50:openai",)),
])
def test_which_clips_pull_the_contrast(changes, clips):
    s = Settings(prompts=[PROMPT]).replace(**changes)
    assert contrast_clips(s) == clips
    if clips != ("toy-contrast",):
        assert model_key(s) != model_key(Settings(prompts=[PROMPT]))  # runs that load other CLIPs share no models


def test_an_upscaled_run_has_the_partner_in_its_refinement_only(toy):
    """The layout's losses are the same with and without the partner, step for step; the refinement's
    are not. A run at one size from noise has none (there it cost foreground colours)."""
    from clipgan.pipeline import generate

    _, models = toy
    kw = dict(iterations=3, upscale=2, upscale_steps=2, size=(32, 32), cutn=4, seed=3, device="cpu")
    with_it = generate(PROMPT, models=models, **kw)
    without = generate(PROMPT, contrast_clip="none", models=models, **kw)
    assert with_it.losses[:3] == without.losses[:3]
    assert with_it.losses[3:] != without.losses[3:] and len(with_it.losses) == 5
    assert with_it.settings.contrast_clip is None and without.settings.contrast_clip == ()
    kw.update(upscale=None)
    assert generate(PROMPT, models=models, **kw).losses == generate(PROMPT, contrast_clip="none", models=models, **kw).losses


def test_the_cli_records_the_contrast_clip_and_refuses_a_bad_one(tiny_settings, tmp_path):
    args = ["generate", "a red star", *tiny_cli_args(tiny_settings), "-i", "1", "-q", "--contrast", "star,circle"]
    out = tmp_path / "a.png"
    result = CliRunner().invoke(app, [*args, "-o", str(out), "--contrast-clip", tiny_settings["clip"][0]])
    assert result.exit_code == 0, result.output
    assert read_settings(out)["contrast_clip"] == [tiny_settings["clip"][0]]
    assert Settings.from_dict(read_settings(out)).contrast_clip == (tiny_settings["clip"][0],)
    bad = tmp_path / "b.png"
    result = CliRunner().invoke(app, [*args, "-o", str(bad), "--contrast-clip", "no-such-clip"])
    assert result.exit_code == 2 and "unknown CLIP model 'no-such-clip'" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not bad.exists()


@pytest.mark.parametrize("given, clips", [
    ("none", ()), ("None", ()), ("", ()), (["none"], ()), ("toy", ("toy",)), (["toy", "x:y"], ("toy", "x:y")), (None, None),
])
def test_the_contrast_clip_as_any_caller_spells_it(given, clips):
    assert Settings(contrast_clip=given).replace().contrast_clip == clips


@pytest.mark.parametrize("given", [[""], [3], ["toy", " "]])
def test_a_contrast_clip_that_is_no_spec_is_refused(given):
    from clipgan.errors import ClipganError

    with pytest.raises(ClipganError, match="contrast-clip must be CLIP specs"):
        Settings(contrast_clip=given).validate()


def test_a_diffusion_run_has_the_partner_in_its_first_half():
    from clipgan.diffuse import contrast_steps, generate_diffusion, load_diffusion_models

    s = Settings(image_model="diffusion", iterations=30, device="cpu", prompts=[PROMPT])
    assert contrast_steps(s) == 15
    assert contrast_steps(s.replace(iterations=5)) == 3
    assert contrast_steps(s.replace(init_image="start.png", strength=0.6)) == 9  # 18 steps are run from a picture
    small = s.replace(iterations=4, candidates=1, cutn=4, seed=2)
    models = load_diffusion_models(small)
    assert [p.name for p in models.contrast] == ["toy-contrast"]
    with_it = generate_diffusion(small, models)
    without = generate_diffusion(small.replace(contrast_clip="none"), models)
    assert with_it.losses[0] != without.losses[0]  # the first step's pull has the partner's share
    assert with_it.image.tobytes() != without.image.tobytes()
