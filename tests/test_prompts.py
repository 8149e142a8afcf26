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
