"""--early-stop: a run ends once its loss stalls. The rule by hand, then on real runs of the tiny
random models: it stops exactly where the rule first holds, never before a story's last part, not in
an animation frame's fixed steps, the same settings stop at the same step, and bad values are one line."""

from __future__ import annotations

import warnings

import pytest
from typer.testing import CliRunner

import clipgan
from clipgan.cli import app
from clipgan.config import EARLY_STOP_GAIN, Settings
from clipgan.errors import ClipganError, ClipganNotice
from clipgan.optimize import stalled


@pytest.mark.parametrize("losses, window, expected", [
    ([10, 10, 10, 10], 2, True),  # flat: mean 10 is not 1% below 10
    ([10, 10, 9.95, 9.95], 2, True),  # 0.5% lower: still a stall
    ([10, 10, 9.8, 9.8], 2, False),  # 2% lower: progress
    ([10, 10, 9.8], 2, False),  # fewer than two windows: too early to say
    ([10, 10, 10, 10], 0, False),  # off
    ([-1.0, -1.0, -1.005, -1.005], 2, True),  # negative losses (push-away prompts): relative to |mean|
    ([-1.0, -1.0, -1.02, -1.02], 2, False),
    ([5, 1, 1, 1, 1, 1], 2, True),  # only the last two windows count
])
def test_stalled_by_hand(losses, window, expected):
    assert EARLY_STOP_GAIN == 0.01  # the cases above are worked out for 1%
    assert stalled(losses, window, EARLY_STOP_GAIN) is expected


def _run(tiny_loaded, **changes):
    models, kw = tiny_loaded
    seen = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ClipganNotice)
        result = clipgan.generate(settings=Settings(**kw).replace(prompts=["a red circle"], **changes), models=models,
                                  callback=seen.append)
    notes = [str(w.message) for w in caught if issubclass(w.category, ClipganNotice)]
    return result, seen, notes


def test_a_still_run_stops_where_the_rule_first_holds(tiny_loaded, one_thread):
    """a tiny lr (1e-9) keeps the picture still, so only the cutouts' noise moves the loss: it stalls soon."""
    result, seen, notes = _run(tiny_loaded, iterations=60, lr=1e-9, early_stop=3)
    k = len(result.losses)
    assert 6 <= k < 60 and len(seen) == k
    assert stalled(result.losses, 3, EARLY_STOP_GAIN)
    assert not any(stalled(result.losses[:j], 3, EARLY_STOP_GAIN) for j in range(k))  # not a step later than due
    assert any(f"stopped early at step {k} of 60" in n for n in notes)
    assert result.settings.iterations == 60 and result.settings.early_stop == 3  # what a rerun needs
    again, _, _ = _run(tiny_loaded, iterations=60, lr=1e-9, early_stop=3)
    assert again.losses == result.losses and again.image.tobytes() == result.image.tobytes()


def test_off_runs_every_iteration(tiny_loaded, one_thread):
    result, _, notes = _run(tiny_loaded, iterations=12, lr=1e-9)
    assert len(result.losses) == 12 and not any("stopped early" in n for n in notes)


def test_a_story_runs_into_its_last_part_first(tiny_loaded, one_thread):
    from clipgan.runsetup import last_story_start

    story = Settings(prompts=["a red circle ^ a blue square ^ a green star"], iterations=30)
    assert last_story_start(story) == 20 and last_story_start(Settings(prompts=["a cat"])) == 0
    models, kw = tiny_loaded
    s = Settings(**kw).replace(prompts=story.prompts, iterations=30, lr=1e-9, early_stop=2)
    result = clipgan.generate(settings=s, models=models)
    assert len(result.losses) >= 20 + 2 * 2
    assert stalled(result.losses[20:], 2, EARLY_STOP_GAIN) or len(result.losses) == 30


def test_fixed_steps_ignore_it(tiny_loaded, one_thread):
    """An animation frame's run_loop(steps=...) makes all of its steps."""
    from clipgan.runsetup import build_guides, initial_model, prepare, run_loop

    models, kw = tiny_loaded
    s, models = prepare(Settings(**kw).replace(prompts=["a red circle"], iterations=50, lr=1e-9, early_stop=2), models)
    _, losses = run_loop(s, models, initial_model(s, models), build_guides(s, models), steps=15)
    assert len(losses) == 15


@pytest.mark.parametrize("value", [-1, 2.5, "3"])
def test_bad_values_are_one_line(value):
    with pytest.raises(ClipganError, match="early-stop"):
        Settings(early_stop=value).validate()


def test_cli_flag_bad_value_and_diffusion(tmp_path):
    runner = CliRunner()
    out = tmp_path / "a.png"
    result = runner.invoke(app, ["generate", "a red circle", "--early-stop", "-2", "-o", str(out)])
    assert result.exit_code == 2 and "early-stop" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["generate", "a red circle", "--image-model", "diffusion", "--early-stop", "5",
                                 "-o", str(out)])
    assert result.exit_code == 2 and "noise schedule" in result.output
    assert not out.exists()
