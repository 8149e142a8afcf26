"""The loop and the Python API on tiny random models: properties, determinism, gradients."""

import pytest
import torch
from conftest import iterate_vqgan

import clipgan
from clipgan.cutouts import CutoutConfig, Cutouts
from clipgan.models.clip import load_clip
from clipgan.models.vqgan import load_vqgan
from clipgan.image_models.vqgan import synth
from clipgan.optimize import Guide, Target


@pytest.fixture(scope="module")
def parts(tiny_models):
    vqgan = load_vqgan(*tiny_models["vq"])
    config, weights = tiny_models["clip"]
    clip = load_clip(f"{config}:{weights}")
    target = Target("x", clip.encode_text(["a red circle"]))
    guide = Guide(clip, Cutouts(clip.input_size, CutoutConfig(cutn=4)), [target])
    torch.manual_seed(0)
    z = vqgan.codebook[torch.randint(16, (8, 8))].movedim(-1, 0)[None]
    return vqgan, guide, z


def test_iterate_yields_complete_steps(parts):
    vqgan, guide, z = parts
    steps = list(iterate_vqgan(vqgan, [guide], z, steps=4, lr=0.1))
    assert [s.index for s in steps] == [0, 1, 2, 3]
    for s in steps:
        assert s.image.shape == (1, 3, 16, 16) and 0 <= s.image.min() and s.image.max() <= 1
        assert torch.equal(s.image, synth(vqgan, s.z))  # the frame is the decode of the recorded z
        assert set(s.losses) == {"x"} and s.loss == pytest.approx(s.losses["x"])
    assert not torch.equal(steps[0].z, steps[-1].z)


def test_z_stays_inside_the_codebook_range(parts):
    vqgan, guide, z = parts
    lo, hi = vqgan.codebook.min(0).values, vqgan.codebook.max(0).values
    for s in iterate_vqgan(vqgan, [guide], z, steps=5, lr=5.0):
        cells = s.z.movedim(1, -1).reshape(-1, 4)
        assert (cells >= lo - 1e-6).all() and (cells <= hi + 1e-6).all()


def test_loss_falls(parts):
    vqgan, guide, z = parts
    torch.manual_seed(0)
    guide = Guide(guide.perceptor, Cutouts(guide.perceptor.input_size, CutoutConfig(cutn=8, augments=())), guide.targets)
    losses = [s.loss for s in iterate_vqgan(vqgan, [guide], z, steps=25, lr=0.2)]
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5


def test_same_seed_same_steps(parts):
    vqgan, guide, z = parts
    runs = []
    for _ in range(2):
        torch.manual_seed(7)
        runs.append([s.image for s in iterate_vqgan(vqgan, [guide], z, steps=3)])
    assert all(torch.equal(a, b) for a, b in zip(*runs))


def test_init_weight_keeps_z_near_start(parts):
    vqgan, guide, z = parts

    def drift(weight):
        torch.manual_seed(1)
        *_, last = iterate_vqgan(vqgan, [guide], z, steps=8, lr=0.3, init_weight=weight)
        return (last.z - z).pow(2).mean().item()

    assert drift(1000.0) < drift(0.0)


def test_guides_may_change_over_time(parts):
    vqgan, guide, z = parts
    other = Guide(guide.perceptor, guide.cutouts, [Target("y", guide.targets[0].embeds)])
    steps = list(iterate_vqgan(vqgan, lambda i: [guide] if i < 2 else [other], z, steps=4))
    assert [set(s.losses) for s in steps] == [{"x"}, {"x"}, {"y"}, {"y"}]


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "adagrad", "adamax", "radam", "rmsprop", "sgd"])
def test_every_optimizer_moves_z(parts, optimizer):
    vqgan, guide, z = parts
    steps = list(iterate_vqgan(vqgan, [guide], z, steps=2, optimizer=optimizer, lr=0.5))
    assert not torch.equal(steps[0].z, steps[1].z)


def test_bf16_autocast_close_to_fp32(parts):
    vqgan, guide, z = parts
    losses = {}
    for dtype in (None, torch.bfloat16):
        torch.manual_seed(2)
        losses[dtype] = next(iterate_vqgan(vqgan, [guide], z, steps=1, dtype=dtype)).loss
    assert losses[torch.bfloat16] == pytest.approx(losses[None], rel=0.05)


def test_generate_api(tiny_settings):
    seen = []
    result = clipgan.generate(["a red circle:1", "fog:-0.5"], callback=seen.append, **tiny_settings)
    assert result.image.size == (32, 32) and result.seed == 1
    assert len(seen) == len(result.losses) == 3
    assert set(seen[0].losses) == {"a red circle", "fog"}
    assert result.settings.prompts == ["a red circle:1", "fog:-0.5"]


def test_generate_is_reproducible_and_seed_matters(tiny_settings):
    a = clipgan.generate("a red circle", **tiny_settings)
    b = clipgan.generate("a red circle", **tiny_settings)
    c = clipgan.generate("a red circle", **{**tiny_settings, "seed": 2})
    assert a.image.tobytes() == b.image.tobytes()
    assert a.image.tobytes() != c.image.tobytes()


def test_generate_draws_and_records_a_seed(tiny_settings):
    result = clipgan.generate("a red circle", **{**tiny_settings, "seed": None, "iterations": 1})
    assert isinstance(result.seed, int) and result.settings.seed == result.seed


@pytest.mark.parametrize("noise", ["codes", "pixels", "gradient"])
def test_init_noise_modes(tiny_settings, noise):
    result = clipgan.generate("a red circle", **{**tiny_settings, "init_noise": noise, "iterations": 1})
    assert result.z.shape == (1, 4, 16, 16)


def test_clip_ensemble(tiny_settings, tiny_models, tmp_path):
    from conftest import write_clip

    config, weights = write_clip(tmp_path, name="tiny-clip-b", seed=3)
    seen = []
    clips = (*tiny_settings["clip"], f"{config}:{weights}")
    clipgan.generate("a red circle", callback=seen.append, **{**tiny_settings, "clip": clips, "iterations": 1})
    assert len(seen) == 1 and seen[0].loss > 0


def test_models_can_be_reused(tiny_settings):
    from clipgan.config import Settings
    from clipgan.pipeline import load_models

    models = load_models(Settings().replace(**tiny_settings))
    a = clipgan.generate("a red circle", models=models, **tiny_settings)
    b = clipgan.generate("a red circle", **tiny_settings)
    assert a.image.tobytes() == b.image.tobytes()


class _Broken(torch.nn.Module):
    """A perceptor whose embeddings go bad from a given call on (as an fp16 overflow would)."""

    def __init__(self, inner, bad_from):
        super().__init__()
        self.inner, self.bad_from, self.calls, self.input_size = inner, bad_from, 0, inner.input_size

    def encode_image(self, x):
        self.calls += 1
        out = self.inner.encode_image(x)
        return out * float("nan") if self.calls > self.bad_from else out


def test_nan_stops_the_run_after_the_last_good_step(parts):
    from clipgan.errors import NumericError

    vqgan, guide, z = parts
    broken = Guide(_Broken(guide.perceptor, bad_from=2), guide.cutouts, guide.targets)
    good = []
    with pytest.raises(NumericError, match="step 2"):
        for step in iterate_vqgan(vqgan, [broken], z, steps=5):
            good.append(step)
    assert len(good) == 2 and torch.isfinite(good[-1].image).all()


@pytest.mark.parametrize("schedules", [{}, {"lr_schedule": "cosine", "cut_schedule": "ramp"}])
def test_resume_gives_the_uninterrupted_result(tiny_settings, schedules):
    from clipgan.config import Settings
    from clipgan.pipeline import resume_state, rng_state

    settings = {**tiny_settings, "iterations": 5, "init_weight": 0.5, **schedules}
    whole = clipgan.generate("a red circle", **settings)
    saved = {}

    class Stop(Exception):
        pass

    def interrupt_after_two(step):
        saved["losses"] = saved.get("losses", []) + [step.loss]
        if step.index == 1:
            saved["state"] = resume_state(step, Settings().replace(prompts=["a red circle"], **settings),
                                          saved["losses"], rng_state())
            raise Stop

    with pytest.raises(Stop):
        clipgan.generate("a red circle", callback=interrupt_after_two, **settings)
    state = saved["state"]
    assert state["next_step"] == 2
    resumed = clipgan.generate(resume=state, settings=Settings.from_dict(state["settings"]))
    assert resumed.image.tobytes() == whole.image.tobytes()
    assert resumed.losses == pytest.approx(whole.losses)


def test_z_mask_changes_only_masked_cells(parts):
    vqgan, guide, z = parts
    mask = torch.zeros(1, 1, 8, 8, dtype=torch.bool)
    mask[..., :4, :] = True
    *_, last = iterate_vqgan(vqgan, [guide], z, steps=4, lr=0.5, z_mask=mask)
    assert torch.equal(last.z[..., 4:, :], z[..., 4:, :])
    assert not torch.equal(last.z[..., :4, :], z[..., :4, :])


def test_words_outside_the_toy_world_get_a_notice():
    from clipgan.config import Settings
    from clipgan.errors import ClipganNotice
    from clipgan.pipeline import _vocabulary_notice

    with pytest.warns(ClipganNotice, match="not: lighthouse"):
        _vocabulary_notice(Settings(), ["a red lighthouse"])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _vocabulary_notice(Settings(), ["a red circle on a blue background"])
        _vocabulary_notice(Settings(clip=("ViT-B-32:openai",)), ["a red lighthouse"])


def test_cut_pow_on_a_picture_no_larger_than_clip_gets_a_notice(tiny_settings):
    import warnings

    from clipgan.errors import ClipganNotice

    # tiny CLIP input 32 px: at 32x32 every crop is the whole picture, at 48x48 crops vary in size
    with pytest.warns(ClipganNotice, match="cut-pow has no effect.*32 px"):
        clipgan.generate("a red circle", **{**tiny_settings, "cut_pow": 2.0, "iterations": 1})
    with warnings.catch_warnings():
        warnings.simplefilter("error", ClipganNotice)
        clipgan.generate("a red circle", **{**tiny_settings, "cut_pow": 2.0, "iterations": 1, "size": (48, 48)})
        clipgan.generate("a red circle", **{**tiny_settings, "iterations": 1})
