"""The time-to-a-right-picture benchmark (clipgan.bench.right): its judge, its clock, its median."""

import json

import pytest

from clipgan.bench import right
from clipgan.toyworld import render as rw


def test_values_median_counts_never_right_as_infinitely_slow():
    assert right.median_or_none([3.0, 1.0, None]) == 3.0
    assert right.median_or_none([1.0, 5.0]) == 3.0
    assert right.median_or_none([1.0, None, None]) is None
    assert right.median_or_none([None]) is None


def test_values_clock_counts_only_between_resume_and_pause():
    ticks = iter([0.0, 5.0, 9.0, 10.0, 30.0, 31.5])  # a hand-driven clock
    clock = right.Clock(now=lambda: next(ticks))  # starts at 0
    assert clock.pause() == 5.0  # steps 0 -> 5
    clock.resume()  # judging 5 -> 9 not counted
    assert clock.pause() == 6.0  # steps 9 -> 10
    clock.resume()  # 30
    assert clock.pause() == 7.5


@pytest.fixture(scope="module")
def classifier():
    from clipgan.toyworld.classifier import bundled

    return bundled()


@pytest.mark.parametrize("drawn, asked, expected", [
    (("star", "red", "blue"), ("red", "star", "blue"), True),
    (("circle", "red", "blue"), ("red", "star", "blue"), False),  # wrong shape
    (("star", "green", "blue"), ("red", "star", "blue"), False),  # wrong foreground
    (("star", "red", "white"), ("red", "star", "blue"), False),  # wrong background
])
def test_values_judge_needs_shape_and_both_colours(classifier, drawn, asked, expected):
    image = rw.render_batch([rw.Spec(*drawn)])
    assert right.judge(image, asked, classifier) is expected


def test_a_small_draft_is_judged_at_the_classifiers_size(classifier):
    image = rw.render_batch([rw.Spec("star", "red", "blue")], 64)
    small = image[..., ::2, ::2]  # every other pixel: the colour fractions stay about the same
    assert right.judge(small, ("red", "star", "blue"), classifier)
    assert not right.judge(small, ("red", "circle", "blue"), classifier)
    assert not right.judge(small, ("green", "star", "blue"), classifier)


def test_values_variant_parsing():
    assert right.parse_variant("fast: lr=0.2, lr_schedule=cosine") == ("fast", {"lr": 0.2, "lr_schedule": "cosine"})
    assert right.parse_variant("c2f:size=[32,32],upscale=2") == ("c2f", {"size": [32, 32], "upscale": 2})
    for bad in ("no colon", ": lr=1", "x: lr"):
        with pytest.raises(ValueError):
            right.parse_variant(bad)


def test_a_wrong_variant_fails_before_any_run():
    from clipgan.errors import ClipganError

    with pytest.raises(ClipganError, match="lr-schedule"):
        right.run(n=1, max_steps=1, variants={"bad": {"lr_schedule": "linear"}})


def test_smoke_run_reports_every_recipe(one_thread, tmp_path, capsys):
    out = tmp_path / "right.json"
    right.main(["--n", "1", "--max-steps", "2", "--every", "1", "--json", str(out),
                "--variant", "sched: lr_schedule=cosine, cut_schedule=ramp"])
    report = json.loads(out.read_text())
    row = report["rows"][0]
    assert report["prompts"] == 1 and set(report["median_seconds"]) == {"classic", "clipgan", "sched"}
    assert report["variants"] == {"sched": {"lr_schedule": "cosine", "cut_schedule": "ramp"}}
    assert set(report["ratios"]) == {"clipgan", "sched"}
    for name in ("classic", "clipgan", "sched"):
        assert row[name] is None or row[name] > 0
        assert report["reached"][name] == (row[name] is not None)
    assert "cpu" in json.dumps(report["machine"]).lower() or report["machine"]
    assert "classic: median" in capsys.readouterr().out


@pytest.mark.parametrize("flags", [["--n", "0"], ["--every", "0"], ["--max-steps", "-1"], ["--n", "two"]])
def test_bad_counts_are_one_line_and_exit_2(flags, capsys):
    from clipgan.bench import right

    with pytest.raises(SystemExit) as refused:
        right.main(flags)
    assert refused.value.code == 2
    assert ": error: " in capsys.readouterr().err.strip().splitlines()[-1]


def test_a_variant_that_names_iterations_runs_that_long(one_thread, classifier, monkeypatch):
    """`"default: iterations=100"` judges a default-length run (its refinement included), not max-steps."""
    from clipgan.config import UPSCALE_STEPS, Settings
    from clipgan.pipeline import load_models

    judged = []
    monkeypatch.setattr(right, "judge", lambda image, triple, clf: judged.append(image.shape[-1]) or False)
    triple = ("red", "circle", "blue")
    text = rw.caption(rw.Spec("circle", "red", "blue"))
    models = load_models(Settings(device="cpu"))
    assert right.clipgan_time(models, text, triple, 0, classifier, 50, 1, {"iterations": 2}) is None
    assert judged == [32, 32] + [64] * UPSCALE_STEPS  # 2 steps at 32 px, then the refinement at 64
    judged.clear()
    right.clipgan_time(models, text, triple, 0, classifier, 3, 1, {"size": [32, 32]})
    assert judged == [32, 32, 32]  # without iterations: max-steps, one size
