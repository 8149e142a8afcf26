"""Property tests: user text, hand-edited settings and PNG metadata never end in anything but a ClipganError."""

from __future__ import annotations

import json
import math

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from clipgan.config import Augment, InitNoise, Optimizer, Precision, Settings
from clipgan.errors import ClipganError
from clipgan.io import SETTINGS_KEY, read_settings, save_image
from clipgan.prompts import parse_prompt, parse_prompts, parse_story, split_prompts

PURE = settings(max_examples=200, deadline=None, database=None)
PNG = settings(max_examples=30, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# prompt syntax characters, often: arbitrary text seldom hits ':' '^' '|' '@' and numbers together
SYNTAX = st.sampled_from([":", "^", "|", "@", " ", "-", ".", "e", "1", "0", "9", "inf", "nan", "\\", "/", "http://", "\n"])
PROMPT_TEXT = st.one_of(st.text(), st.lists(st.one_of(SYNTAX, st.text(max_size=3)), max_size=12).map("".join))

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=8,
)
FIELDS = [name for name in Settings().to_dict()]


def only_clipgan_errors(fn, *args):
    try:
        return fn(*args)
    except ClipganError as e:
        assert str(e) and "\n" not in str(e).strip(), repr(str(e))
        return None


@PURE
@given(PROMPT_TEXT)
@example("@" + "9" * 5000 + " a")  # more digits than int() converts
@example("a:1e999")
def test_prompt_parsing_raises_only_clipgan_errors(text):
    prompt = only_clipgan_errors(parse_prompt, text)
    if prompt is not None:
        assert prompt.text and math.isfinite(prompt.weight) and prompt.text == prompt.text.strip()
    parts = split_prompts([text])
    assert all(p and "|" not in p for p in parts)
    only_clipgan_errors(parse_prompts, [text])
    only_clipgan_errors(parse_story, text, 100, 0)
    only_clipgan_errors(parse_story, text, 7, 3)


@PURE
@given(st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), JSON, max_size=6))
@example({"size": [1e400, 2]})
@example({"prompts": 5})
@example({"clip": 3, "augments": 1.5})
def test_settings_from_any_json_raises_only_clipgan_errors(data):
    only_clipgan_errors(Settings.from_dict, data)
    only_clipgan_errors(Settings.from_dict, json.loads(json.dumps(data)))


FINITE = st.floats(allow_nan=False, allow_infinity=False, width=64)
POSITIVE = st.floats(min_value=1e-6, max_value=1e6, allow_nan=False)
TEXTS = st.lists(st.text(min_size=1, max_size=20), max_size=3)


@st.composite
def valid_settings(draw) -> Settings:
    models = draw(st.none() | st.tuples(st.text(min_size=1, max_size=12), st.text(min_size=1, max_size=12)))
    return Settings().replace(
        prompts=draw(TEXTS),
        image_prompts=draw(TEXTS),
        iterations=draw(st.integers(1, 10**6)),
        change_prompt_every=draw(st.integers(0, 10**4)),
        size=draw(st.tuples(st.integers(1, 4096), st.integers(1, 4096))),
        init_image=draw(st.none() | st.text(max_size=20)),
        init_weight=draw(FINITE),
        init_noise=draw(st.sampled_from([e.value for e in InitNoise])),
        tv_weight=draw(FINITE),
        cutn=draw(st.integers(1, 256)),
        cut_pow=draw(POSITIVE),
        augments=tuple(draw(st.lists(st.sampled_from([e.value for e in Augment]), unique=True))),
        optimizer=draw(st.sampled_from([e.value for e in Optimizer])),
        lr=draw(POSITIVE),
        seed=draw(st.none() | st.integers(0, 2**63 - 1)),
        device=draw(st.sampled_from(["auto", "cpu", "cuda", "cuda:1", "mps"])),
        precision=draw(st.sampled_from([e.value for e in Precision])),
        low_memory=draw(st.booleans()),
        vqgan=draw(st.text(min_size=1, max_size=12)),
        vqgan_config=models and models[0],
        vqgan_checkpoint=models and models[1],
        clip=tuple(draw(st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=3))),
        trust_checkpoint=draw(st.booleans()),
    )


@PNG
@given(valid_settings())
def test_png_settings_round_trip(tmp_path, s):
    path = save_image(Image.new("RGB", (4, 3), "blue"), tmp_path / "s.png", s.to_dict())
    assert Settings.from_dict(read_settings(path)) == s.replace(trust_checkpoint=False)  # files never grant trust


@PNG
@given(st.one_of(st.text(), st.binary().map(lambda b: b.decode("latin-1")),
                 JSON.map(json.dumps), st.just("1" * 5000), st.just("[" * 100000)))
def test_png_with_a_garbage_settings_chunk_raises_only_clipgan_errors(tmp_path, text):
    info = PngInfo()
    info.add_text(SETTINGS_KEY, text)
    path = tmp_path / "g.png"
    Image.new("RGB", (2, 2)).save(path, pnginfo=info)
    data = only_clipgan_errors(read_settings, path)
    if data is not None:
        assert isinstance(data, dict)
        only_clipgan_errors(Settings.from_dict, data)
