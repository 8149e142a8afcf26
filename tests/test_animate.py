"""Morph, zoom and restyle: frame counts, keyframes, reproducibility, safe expressions, the CLI.

Tiny random models for the mechanics; the bundled toy models (when present) for what the
frames show.
"""

import math

import pytest
import torch
from conftest import tiny_cli_args, iterate_vqgan
from typer.testing import CliRunner

import clipgan.cli_animate  # noqa: F401  registers morph, zoom and restyle on the app
from clipgan import animate
from clipgan.animate import Expr, morph_frame_count, prompt_schedule, slerp, warp
from clipgan.cli import app
from clipgan.config import Settings
from clipgan.errors import ClipganError
from clipgan.models import registry
from clipgan.image_models.vqgan import synth
from clipgan.pipeline import build_guides, initial_z, load_models
from clipgan.video import VideoWriter, read_video_info

A, B, C = "a red circle on a blue background", "a green square on a yellow background", "a purple star on a white background"


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: the small steps run on one thread


# ---------------------------------------------------------------- expressions


@pytest.mark.parametrize("text, t, value", [
    ("1.02", 5, 1.02),
    ("t", 7, 7.0),
    ("1 + t/10", 5, 1.5),
    ("-2**2", 0, -4.0),
    ("2**-1", 0, 0.5),
    ("0.5*sin(t/10)", 5, 0.5 * math.sin(0.5)),
    ("max(1, min(t, 3)) % 2", 7, 1.0),
    ("cos(pi*t) + exp(0) + sqrt(4) + abs(-e) + floor(1.7) + ceil(0.2) + log(e) + tan(0)", 1, -1 + 1 + 2 + math.e + 1 + 1 + 1),
])
def test_expressions_compute_by_hand_values(text, t, value):
    assert Expr(text)(t) == pytest.approx(value)


def test_numbers_are_constant_expressions():
    assert Expr(1.5)(100) == 1.5 and Expr(2)(0) == 2.0


@pytest.mark.parametrize("text", [
    "__import__('os')",
    "__import__('os').system('true')",
    "t.real",
    "(1).__class__",
    "x + 1",
    "open",
    "[t]",
    "t if t else 1",
    "t > 1",
    "lambda: 1",
    "sin(x=1)",
    "'a' * 3",
    "True + 1",
    "eval('1')",
])
def test_expressions_refuse_anything_but_arithmetic(text):
    with pytest.raises(ClipganError, match="not allowed|not a valid"):
        Expr(text, "angle")


@pytest.mark.parametrize("text, match", [
    ("1/t", "cannot be computed at t=0"),
    ("10**10**10", "cannot be computed|not finite"),
    ("sqrt(-1)", "cannot be computed"),
    ("exp(1000)", "cannot be computed|not finite"),
    ("sin", "cannot be computed"),
])
def test_expressions_that_fail_at_some_t_are_clipgan_errors(text, match):
    with pytest.raises(ClipganError, match=match):
        Expr(text)(0)


def test_expressions_have_limits():
    for bad in ("", "1 +", "(" * 200 + "1" + ")" * 200, "1+" * 200 + "1"):
        with pytest.raises(ClipganError):
            Expr(bad)
    with pytest.raises(ClipganError):
        Expr(None)


# ---------------------------------------------------------------- schedules and helpers


def test_prompt_schedule_spreads_stories_and_keeps_timed_prompts():
    s = prompt_schedule(["a forest ^ a city ^ the sea", "style"], 9)
    assert [s(t)[0] for t in range(9)] == ["a forest"] * 3 + ["a city"] * 3 + ["the sea"] * 3
    assert all(s(t)[1] == "style" for t in range(9))
    s = prompt_schedule(["a ^ @7 b"], 10)
    assert [s(t) for t in (0, 6, 7, 9)] == [("a",), ("a",), ("b",), ("b",)]
    s = prompt_schedule([(0, "a"), (4, "b")], 10)
    assert [s(t) for t in (3, 4)] == [("a",), ("b",)]
    with pytest.raises(ClipganError):
        prompt_schedule([" ^ "], 4)
    with pytest.raises(ClipganError):
        prompt_schedule([(-1, "a")], 4)


def test_morph_frame_count_rule():
    assert morph_frame_count(2, 5) == 6  # A + 4 in-betweens + B
    assert morph_frame_count(3, 5) == 11
    assert morph_frame_count(2, 5, loop=True) == 10  # A..B..back towards A; the video wraps onto frame 0
    assert morph_frame_count(3, 1) == 3  # keyframes only


def test_slerp_is_exact_at_the_ends_and_keeps_the_norm():
    torch.manual_seed(0)
    a, b = torch.randn(1, 4, 3, 3), torch.randn(1, 4, 3, 3)
    assert torch.equal(slerp(a, b, 0.0), a) and torch.equal(slerp(a, b, 1.0), b)
    b = b / b.norm() * a.norm()
    assert slerp(a, b, 0.5).norm().item() == pytest.approx(a.norm().item(), rel=1e-5)
    assert torch.allclose(slerp(a, a, 0.3), a)


def test_warp_identity_and_zoom():
    image = torch.rand(1, 3, 20, 30)
    assert warp(image) is image
    out = warp(image, zoom=2.0, angle=10.0, shift_x=1.5, shift_y=-2)
    assert out.shape == image.shape and 0 <= out.min() and out.max() <= 1
    centre = torch.zeros(1, 3, 21, 21)
    centre[..., 10, 10] = 1
    assert warp(centre, zoom=3.0)[0, 0].gt(0.5).sum() > 1  # the centre pixel grows


@pytest.mark.parametrize("options, match", [
    (dict(frames_per_transition=0), "frames-per-transition"),
    (dict(mode="fast"), "unknown mode"),
    (dict(easing="bounce"), "unknown easing"),
    (dict(anchor=2), "anchor"),
    (dict(keyframe_steps=0), "keyframe-steps"),
])
def test_bad_morph_options(tiny_loaded, options, match):
    models, kw = tiny_loaded
    with pytest.raises(ClipganError, match=match):
        animate.morph([A, B], models=models, **kw, **options)


def test_morph_input_errors(tiny_loaded):
    models, kw = tiny_loaded
    with pytest.raises(ClipganError, match="at least two"):
        animate.morph([A], models=models, **kw)
    with pytest.raises(ClipganError, match="not a number"):
        animate.morph([A, "cat:abc"], models=models, **kw)
    with pytest.raises(TypeError, match="frames_per_transitions"):
        animate.morph([A, B], models=models, frames_per_transitions=3, **kw)


def test_zoom_rejects_a_zoom_that_reaches_zero(tiny_loaded):
    models, kw = tiny_loaded
    with pytest.raises(ClipganError, match="zoom must stay within 0.01 to 100"):
        animate.zoom([A], frames=5, zoom="1 - t/4", models=models, **kw)


# ---------------------------------------------------------------- morph


def test_latent_morph_frames_are_keyframes_and_slerps(tiny_loaded):
    models, kw = tiny_loaded
    n = 4
    frames = list(animate.morph([A, B, C], frames_per_transition=n, mode="latent", keyframe_steps=3, models=models, **kw))
    assert len(frames) == morph_frame_count(3, n) == 9
    assert [f.index for f in frames] == list(range(9))
    assert [f.keyframe for f in frames] == [0, None, None, None, 1, None, None, None, 2]

    # keyframe A is exactly a plain 3-step run from the seeded start
    s = Settings(**kw)
    torch.manual_seed(s.seed)
    z = initial_z(s, models)
    *_, last = iterate_vqgan(models.vqgan, build_guides(s.replace(prompts=[A]), models), z, steps=3, lr=s.lr)
    assert torch.equal(frames[0].image, last.image)
    assert torch.equal(frames[0].image, synth(models.vqgan, frames[0].z))
    assert torch.equal(frames[-1].image, synth(models.vqgan, frames[-1].z))

    za, zb = frames[0].z, frames[n].z
    for j in range(1, n):
        w = animate.EASINGS["smoothstep"](j / n)
        assert frames[j].mix == pytest.approx(w)
        assert torch.allclose(frames[j].z, slerp(za, zb, w))
        assert torch.equal(frames[j].image, synth(models.vqgan, frames[j].z))


def test_latent_loop_wraps_back_to_the_first_keyframe(tiny_loaded):
    models, kw = tiny_loaded
    frames = list(animate.morph([A, B], frames_per_transition=3, mode="latent", loop=True, keyframe_steps=2,
                                easing="linear", models=models, **kw))
    assert len(frames) == morph_frame_count(2, 3, loop=True) == 6
    assert [f.keyframe for f in frames] == [0, None, None, 1, None, None]
    assert frames[-1].prompts == (B, A) and frames[-1].mix == pytest.approx(2 / 3)
    assert torch.allclose(frames[-1].z, slerp(frames[3].z, frames[0].z, 2 / 3))


def test_guided_morph_is_reproducible_with_a_seed(tiny_loaded):
    models, kw = tiny_loaded
    opts = dict(frames_per_transition=3, keyframe_steps=2, steps_per_frame=2, models=models)
    runs = [list(animate.morph([A, B], **opts, **kw)) for _ in range(2)]
    other = list(animate.morph([A, B], **opts, **{**kw, "seed": kw["seed"] + 1}))
    assert len(runs[0]) == morph_frame_count(2, 3) == 4
    assert all(torch.equal(x.image, y.image) for x, y in zip(*runs))
    assert not all(torch.equal(x.image, y.image) for x, y in zip(runs[0], other))
    mixes = [f.mix for f in runs[0][1:-1]]
    assert mixes == sorted(mixes) and 0 < mixes[0] and mixes[-1] < 1
    assert all(f.loss is not None and f.image.shape == (1, 3, 32, 32) for f in runs[0])


def test_morph_callback_sees_every_step(tiny_loaded):
    models, kw = tiny_loaded
    seen = []
    list(animate.morph([A, B], frames_per_transition=2, keyframe_steps=3, steps_per_frame=2, models=models,
                       callback=seen.append, **kw))
    assert len(seen) == 3 + 3 + 2  # two keyframes and one in-between


# ---------------------------------------------------------------- zoom and restyle


def test_zoom_without_motion_keeps_the_frame_size(tiny_loaded):
    models, kw = tiny_loaded
    frames = list(animate.zoom([A], frames=3, zoom=1, angle=0, shift_x=0, shift_y=0, first_steps=2,
                               steps_per_frame=1, models=models, **{**kw, "size": (48, 32)}))
    assert len(frames) == 3
    assert all(f.image.shape == (1, 3, 32, 48) for f in frames)


def test_zoom_with_motion_and_a_story(tiny_loaded):
    models, kw = tiny_loaded
    frames = list(animate.zoom([f"{A} ^ {B}"], frames=4, zoom="1 + 0.05*t", angle="2*sin(t)", shift_x=1,
                               first_steps=2, steps_per_frame=2, models=models, **kw))
    assert [f.prompts for f in frames] == [(A,), (A,), (B,), (B,)]
    assert all(f.image.shape == (1, 3, 32, 32) for f in frames)


@pytest.fixture(scope="module")
def source_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("src") / "source.mp4"
    with VideoWriter(path, fps=12.5) as video:
        for i in range(5):
            frame = torch.zeros(1, 3, 24, 48)
            frame[:, 0, :, : 8 * (i + 1)] = 1  # a red bar growing across
            video.append(frame)
    return path


def test_restyle_keeps_count_and_aspect_and_starts_from_the_source(tiny_loaded, source_video, tmp_path):
    models, kw = tiny_loaded
    frames = list(animate.restyle(str(source_video), [A], steps_per_frame=1, blend=0.0, models=models,
                                  **{**kw, "size": (64, 64)}))
    assert len(frames) == 5
    assert all(f.image.shape == (1, 3, 32, 64) for f in frames)  # 2:1 like the source, inside 64x64
    assert len(list(animate.restyle(str(source_video), [A], steps_per_frame=1, max_frames=2, models=models, **kw))) == 2


def test_restyle_errors(tiny_loaded, tmp_path):
    models, kw = tiny_loaded
    with pytest.raises(ClipganError, match="not found"):
        animate.restyle(str(tmp_path / "nope.mp4"), [A], models=models, **kw)
    with pytest.raises(ClipganError, match="blend"):
        animate.restyle(str(tmp_path / "nope.mp4"), [A], blend=1.5, models=models, **kw)


# ---------------------------------------------------------------- CLI


def tiny_args(kw):
    return [*tiny_cli_args(kw), "-q"]


def test_cli_morph_writes_the_documented_frame_count(tiny_loaded, tmp_path):
    _, kw = tiny_loaded
    out = tmp_path / "morph.gif"
    result = CliRunner().invoke(app, ["morph", A, B, "-o", str(out), "--frames-per-transition", "3", "--mode", "latent",
                                      "--loop", "--keyframe-steps", "2", "--fps", "10", *tiny_args(kw)])
    assert result.exit_code == 0, result.output
    count, fps, duration = read_video_info(out)
    assert (count, fps, duration) == (morph_frame_count(2, 3, loop=True), pytest.approx(10), pytest.approx(0.6, abs=0.02))


def test_cli_restyle_keeps_the_source_fps_and_count(tiny_loaded, source_video, tmp_path):
    _, kw = tiny_loaded
    out = tmp_path / "restyled.mp4"
    result = CliRunner().invoke(app, ["restyle", str(source_video), A, "-o", str(out), "--steps-per-frame", "1",
                                      "--contrast", "red, blue", "--contrast-weight", "1", *tiny_args(kw)])
    assert result.exit_code == 0, result.output
    count, fps, _ = read_video_info(out)
    assert count == 5 and fps == pytest.approx(12.5)


@pytest.mark.parametrize("args, message", [
    (["zoom", A, "--angle", "__import__('os')"], "is not allowed"),
    (["zoom", A, "--zoom", "1/t"], "cannot be computed at t=0"),
    (["morph", A], "at least two prompts"),
    (["morph", A, B, "--frames-per-transition", "0"], "frames-per-transition"),
    (["morph", A, B, "--fps", "0"], "fps"),
    (["restyle", "missing.mp4", A], "video not found"),
    (["morph", A, "cat:abc", "--vqgan", "no-such-model"], "not a number|unknown VQGAN"),
    (["morph", A, B, "--contrast", "circle"], "contrast needs at least two words"),
    (["zoom", A, "--contrast-weight", "-1"], "contrast-weight must be 0 or more"),
    (["zoom", A, "--image-model", "diffusion"], "zoom is not made with --image-model diffusion"),
])
def test_cli_bad_input_is_one_line_and_leaves_the_old_file(tmp_path, args, message):
    out = tmp_path / "old.mp4"
    out.write_bytes(b"keep me")
    result = CliRunner().invoke(app, [*args, "-o", str(out)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and __import__("re").search(message, lines[0])
    assert out.read_bytes() == b"keep me"


def test_cli_bad_extension_fails_before_anything(tmp_path):
    result = CliRunner().invoke(app, ["morph", A, B, "-o", str(tmp_path / "out.avi")])
    assert result.exit_code == 2 and "unsupported output extension" in result.output


# ---------------------------------------------------------------- with the bundled toy models




def colour_fractions(frame, names):
    """Fraction of pixels whose nearest toy-world colour is one of `names`."""
    from clipgan.toyworld.render import nearest_color_fractions

    fractions = nearest_color_fractions(frame.image[0].float())
    return sum(float(fractions[n]) for n in names)


@pytest.fixture(scope="module")
def toy_morph():
    from clipgan.models.clip import load_clip

    settings = Settings(size=(64, 64), cutn=16, device="cpu", seed=0)
    models = load_models(settings)
    frames = list(animate.morph([A, B], frames_per_transition=4, mode="guided", keyframe_steps=60, steps_per_frame=6,
                                models=models, settings=settings))
    config, weights = registry.resolve_clip_alias("toy")
    judge = load_clip(f"{config}:{weights}")  # a fresh copy, so the judge is not the guide object itself
    return frames, judge


def test_toy_morph_starts_at_prompt_a_and_ends_at_prompt_b_by_clip(toy_morph):
    frames, judge = toy_morph
    texts = judge.encode_text([A, B])

    def sims(frame):
        image = torch.nn.functional.interpolate(frame.image, size=judge.input_size, mode="bilinear", antialias=True)
        with torch.no_grad():
            return (judge.encode_image(image) @ texts.T)[0].tolist()

    first, last = sims(frames[0]), sims(frames[-1])
    assert first[0] > first[1], f"first frame: sim A {first[0]:.3f} vs B {first[1]:.3f}"
    assert last[1] > last[0], f"last frame: sim A {last[0]:.3f} vs B {last[1]:.3f}"


def test_toy_morph_starts_red_blue_and_ends_green_yellow(toy_morph):
    frames, _ = toy_morph
    ab, cd = ("red", "blue"), ("green", "yellow")
    assert colour_fractions(frames[0], ab) > colour_fractions(frames[0], cd)
    assert colour_fractions(frames[-1], cd) > colour_fractions(frames[-1], ab)
