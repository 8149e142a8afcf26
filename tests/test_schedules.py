"""The lr and cutout schedules (clipgan.schedules): values by hand, what the loop does with them,
resume, the CLI and the refusals."""

import dataclasses
from functools import partial

import pytest
import torch
from typer.testing import CliRunner

import clipgan
from clipgan.cli import app
from clipgan.config import CUT_START, LR_FLOOR, Settings
from clipgan.errors import ClipganError
from clipgan.image_models import PixelsImage
from clipgan.io import read_settings
from clipgan.losses.terms import LossTerm
from clipgan.optimize import iterate
from clipgan.schedules import cutn_at, lr_factor


def test_values_lr_factor():
    assert [lr_factor("constant", i, 5) for i in range(5)] == [1.0] * 5
    cosine = [lr_factor("cosine", i, 3) for i in range(3)]
    assert cosine == pytest.approx([1.0, LR_FLOOR + (1 - LR_FLOOR) / 2, LR_FLOOR])
    assert lr_factor("cosine", 0, 1) == 1.0  # a one-step run has nothing to decay over
    falling = [lr_factor("cosine", i, 100) for i in range(100)]
    assert all(a > b for a, b in zip(falling, falling[1:]))


def test_values_cutn_at():
    assert [cutn_at("constant", 32, i, 100) for i in (0, 50, 99)] == [32, 32, 32]
    ramp = [cutn_at("ramp", 32, i, 100) for i in range(100)]
    assert ramp[0] == round(32 * CUT_START) == 8
    assert ramp[25] == 8 + round(24 * 25 / 50) == 20
    assert ramp[50:] == [32] * 50
    assert all(a <= b for a, b in zip(ramp, ramp[1:]))
    assert {cutn_at("ramp", 1, i, 10) for i in range(10)} == {1}  # never below one cutout
    assert [cutn_at("ramp", 8, i, 1) for i in range(1)] == [2]


class Sum(LossTerm):
    """The picture's sum: its gradient is 1 in every pixel, so SGD moves each pixel by exactly -lr."""

    def __call__(self, image, model, step):
        return {"sum": image.sum()}


def test_loop_steps_with_the_scheduled_lr():
    lr, steps = 0.01, 6
    model = PixelsImage(torch.full((1, 3, 4, 4), 0.5), (4, 4))
    schedule = partial(lr_factor, "cosine", steps=steps)
    zs = [s.z for s in iterate(model, [Sum()], steps=steps, lr=lr, optimizer="sgd", lr_schedule=schedule)]
    moves = [(a - b).mean().item() for a, b in zip(zs, zs[1:])]
    assert moves == pytest.approx([lr * lr_factor("cosine", i, steps) for i in range(steps - 1)], rel=1e-4)


class Counting:
    """A real perceptor that records how many cutouts each call scores."""

    def __init__(self, perceptor):
        self.inner, self.counts = perceptor, []

    def encode_image(self, images):
        self.counts.append(images.shape[0])
        return self.inner.encode_image(images)

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.mark.parametrize("schedule", ["constant", "ramp"])
def test_generate_scores_the_scheduled_number_of_cutouts(tiny_loaded, schedule):
    models, kw = tiny_loaded
    counting = Counting(models.perceptors[0])
    models = dataclasses.replace(models, perceptors=[counting])
    clipgan.generate("a red circle", models=models, **{**kw, "iterations": 8, "cutn": 8}, cut_schedule=schedule)
    assert counting.counts == [cutn_at(schedule, 8, i, 8) for i in range(8)]
    assert counting.counts[-1] == 8 and (schedule == "constant" or counting.counts[0] == 2)


def test_schedules_change_the_run(tiny_settings):
    """Resumed runs with schedules: tests/test_optimize.py::test_resume_gives_the_uninterrupted_result."""
    settings = {**tiny_settings, "iterations": 6}
    plain = clipgan.generate("a red circle", **settings)
    for change in ({"lr_schedule": "cosine"}, {"cut_schedule": "ramp"}):
        assert clipgan.generate("a red circle", **settings, **change).image.tobytes() != plain.image.tobytes(), change


def test_cli_flags_reach_the_run_and_the_png(tiny_settings, tmp_path):
    from conftest import tiny_cli_args

    out = tmp_path / "a.png"
    result = CliRunner().invoke(app, ["generate", "a red circle", *tiny_cli_args(tiny_settings),
                                      "-i", "3", "--lr-schedule", "cosine", "--cut-schedule", "ramp", "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    stored = read_settings(out)
    assert stored["lr_schedule"] == "cosine" and stored["cut_schedule"] == "ramp"


@pytest.mark.parametrize("field, value", [("lr_schedule", "linear"), ("cut_schedule", 3), ("lr_schedule", None)])
def test_unknown_schedules_are_refused_in_one_line(field, value):
    with pytest.raises(ClipganError, match=field.replace("_", "-")) as e:
        Settings.from_dict({field: value})
    assert "\n" not in str(e.value)


def test_cli_unknown_schedule_exits_2(tmp_path):
    result = CliRunner().invoke(app, ["generate", "a", "--lr-schedule", "linear", "-o", str(tmp_path / "x.png")])
    assert result.exit_code == 2 and not (tmp_path / "x.png").exists()


def test_diffusion_refuses_schedules_before_loading_anything():
    with pytest.raises(ClipganError, match="diffusion run"):
        clipgan.generate("a red circle", image_model="diffusion", diffusion="/nonexistent", cut_schedule="ramp")
