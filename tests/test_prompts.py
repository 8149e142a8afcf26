"""The prompt-string table: "text:weight:stop", read from the right so URLs and Windows paths survive."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clipgan.errors import ClipganError
from clipgan.prompts import Prompt, parse_prompt, parse_prompts, split_prompts

INF = math.inf

TABLE = [
    # spec, text, weight, stop
    ("a lighthouse", "a lighthouse", 1.0, -INF),
    ("a lighthouse:2", "a lighthouse", 2.0, -INF),
    ("fog:-0.5", "fog", -0.5, -INF),
    ("cat:1:-0.2", "cat", 1.0, -0.2),
    ("cat:1e-1", "cat", 0.1, -INF),
    ("https://x/y.png:0.5", "https://x/y.png", 0.5, -INF),
    ("https://x/y.png", "https://x/y.png", 1.0, -INF),
    ("http://host:8080/y.png", "http://host:8080/y.png", 1.0, -INF),
    ("http://host:8080/y.png:2:0.1", "http://host:8080/y.png", 2.0, 0.1),
    ("C:\\art\\a.png:2", "C:\\art\\a.png", 2.0, -INF),
    ("C:\\art\\a.png", "C:\\art\\a.png", 1.0, -INF),
    ("C:/art/a.png:3", "C:/art/a.png", 3.0, -INF),
    ("/home/me/a b.png:0.25", "/home/me/a b.png", 0.25, -INF),
    # whitespace: the text is stripped; numbers may have spaces around them
    ("  a cat  ", "a cat", 1.0, -INF),
    ("  a cat :2 ", "a cat", 2.0, -INF),
    ("a cat: 2", "a cat", 2.0, -INF),
    ("a cat: 2 : -0.5", "a cat", 2.0, -0.5),
    # a colon that is part of the text stays text
    ("note: a sunset", "note: a sunset", 1.0, -INF),
    ("note: a sunset:3", "note: a sunset", 3.0, -INF),
    ("a cat: fluffy", "a cat: fluffy", 1.0, -INF),
    ("cat:", "cat:", 1.0, -INF),
    (":2", ":2", 1.0, -INF),  # nothing before the number: the whole thing is the text
]


@pytest.mark.parametrize("spec,text,weight,stop", TABLE, ids=[t[0] for t in TABLE])
def test_parse_prompt_table(spec, text, weight, stop):
    assert parse_prompt(spec) == Prompt(text, weight, stop)


@pytest.mark.parametrize("spec,names", [
    ("cat:abc", "'abc'"),
    ("cat:1:xyz", "'xyz'"),
    ("cat:1,5", "'1,5'"),
    ("cat:inf", "finite"),
    ("cat:-inf", "finite"),
    ("cat:nan", "finite"),
    ("cat:1:nan", "finite"),
    ("cat:1e999", "finite"),
    ("", "empty"),
    ("   ", "empty"),
])
def test_parse_prompt_exception(spec, names):
    with pytest.raises(ClipganError) as info:
        parse_prompt(spec)
    message = str(info.value)
    assert names in message
    assert "\n" not in message


def test_parse_prompt_exception_not_a_string():
    with pytest.raises(ClipganError):
        parse_prompt(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("args,expected", [
    (["a | b"], ["a", "b"]),
    (["a|b|c"], ["a", "b", "c"]),
    (["a:2 | b:-1", "c"], ["a:2", "b:-1", "c"]),
    (["  a  "], ["a"]),
    (["a || b", " | "], ["a", "b"]),  # empty parts are dropped
    ([], []),
])
def test_split_prompts(args, expected):
    assert split_prompts(args) == expected


def test_parse_prompts_splits_then_parses():
    assert parse_prompts(["a lighthouse:1 | fog:-0.5", "https://x/y.png:0.5"]) == [
        Prompt("a lighthouse", 1.0), Prompt("fog", -0.5), Prompt("https://x/y.png", 0.5)]


def test_parse_prompts_exception_names_the_bad_part():
    with pytest.raises(ClipganError, match="cat:abc"):
        parse_prompts(["a dog | cat:abc"])


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_parse_prompt_property_never_crashes(spec):
    """Any text gives a Prompt with finite numbers, or a ClipganError: never another exception."""
    try:
        prompt = parse_prompt(spec)
    except ClipganError as e:
        assert str(e)
        return
    assert isinstance(prompt, Prompt)
    assert prompt.text and prompt.text == prompt.text.strip()
    assert math.isfinite(prompt.weight)
    assert prompt.stop == -INF or math.isfinite(prompt.stop)


@settings(max_examples=200, deadline=None)
@given(st.text().filter(lambda s: ":" not in s))
def test_parse_prompt_property_no_colon_is_plain_text(spec):
    if not spec.strip():
        with pytest.raises(ClipganError):
            parse_prompt(spec)
    else:
        assert parse_prompt(spec) == Prompt(spec.strip(), 1.0, -INF)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters=":|"), min_size=1).filter(lambda s: s.strip()),
       st.floats(allow_nan=False, allow_infinity=False, width=32))
def test_parse_prompt_property_weight_roundtrip(text, weight):
    """'text:weight' for any text without colons gives back the text and the weight."""
    prompt = parse_prompt(f"{text}:{weight!r}")
    assert prompt.text == text.strip()
    assert prompt.weight == weight


def test_one_story_parser_for_steps_and_frames():
    """parse_story (a run's steps) and animate.prompt_schedule (frames) read a story the same way,
    and refuse an over-long '@k' with the same one-line error."""
    from clipgan.animate import prompt_schedule
    from clipgan.errors import ClipganError
    from clipgan.prompts import parse_story

    spec = "a forest ^ a city ^ @7 the sea"
    by_step = [(start, p.text) for start, p in parse_story(spec, 10)]
    schedule = prompt_schedule([spec], 10)
    for start, text in by_step:
        assert schedule(start) == (text,)
    assert by_step == [(0, "a forest"), (3, "a city"), (7, "the sea")]
    for parse in (lambda s: parse_story(s, 10), lambda s: prompt_schedule([s], 10)):
        with pytest.raises(ClipganError, match="number @99999999... in prompt is too large"):
            parse("a ^ @" + "9" * 30 + " b")


# ---------------------------------------------------------------- contrast (prompts.contrast_lanes)

SHAPE_WORDS = ("circle", "square", "triangle", "star", "cross")


def test_contrast_sets_the_named_word_against_each_other_one():
    from clipgan.prompts import contrast_lanes

    lanes = contrast_lanes([(0, Prompt("a red circle on a blue background", 2.0, 0.3))], SHAPE_WORDS, 0.5)
    # 2 * (1 + 0.5) = 3 for the prompt; 2 * 0.5 / 4 = 0.25 away from each other shape, with no stop
    assert [lane[0][1] for lane in lanes] == [
        Prompt("a red circle on a blue background", 3.0, 0.3),
        Prompt("a red square on a blue background", -0.25),
        Prompt("a red triangle on a blue background", -0.25),
        Prompt("a red star on a blue background", -0.25),
        Prompt("a red cross on a blue background", -0.25),
    ]


@pytest.mark.parametrize("text, weight", [
    ("a red blob on blue", 1.0),          # names none of the words
    ("a circle beside a square", 1.0),    # names two: which one to set against the others is unclear
    ("circles and crossings", 1.0),       # whole words only
    ("a red circle", -1.0),               # a negative prompt is left as it was given
])
def test_contrast_leaves_a_prompt_alone_where_it_has_nothing_to_set_against(text, weight):
    from clipgan.prompts import contrast_lanes

    assert contrast_lanes([(0, Prompt(text, weight))], SHAPE_WORDS, 0.5) == [[(0, Prompt(text, weight))]]


def test_contrast_follows_a_story_part_by_part_and_matches_any_case():
    from clipgan.prompts import contrast_lanes, parse_story

    story = parse_story("a Star at dusk ^ the sea ^ a red cross", 90)
    lanes = contrast_lanes(story, ("star", "cross"), 1.0)
    assert lanes == [
        [(0, Prompt("a Star at dusk", 2.0)), (30, Prompt("the sea")), (60, Prompt("a red cross", 2.0))],
        [(0, Prompt("a cross at dusk", -1.0)), (30, None), (60, Prompt("a red star", -1.0))],
    ]


@given(st.floats(0, 10), st.floats(0.01, 10), st.sampled_from(SHAPE_WORDS))
@settings(max_examples=50, deadline=None)
def test_contrast_keeps_the_sum_of_weights(contrast, weight, word):
    """What the texts share keeps its pull: the weights of a part's lanes sum to its own weight."""
    from clipgan.prompts import contrast_lanes

    lanes = contrast_lanes([(0, Prompt(f"a green {word} on white", weight))], SHAPE_WORDS, contrast)
    assert math.isclose(sum(lane[0][1].weight for lane in lanes), weight, rel_tol=1e-9)
    assert len(lanes) == (len(SHAPE_WORDS) if contrast > 0 else 1)
