"""Hostile input by class, with hypothesis: numeric options, every field of PNG settings and of
state files, image files (modes, bit depths, header sizes, truncation), VQGAN yaml configs and
zoom expressions. Each property: a clean error (ClipganError, or one line and exit 2) or a valid
result; never a traceback; never a changed existing file.

Library functions are called where a full run is not what is tested; the CLI runs use the tiny
models of conftest for one or a few steps.
"""

from __future__ import annotations

import io
import json
import math
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from clipgan.animate import Expr, ZoomOptions
from clipgan.cli import main
from clipgan.config import MAX_SIDE, Settings
from clipgan.errors import ClipganError
from clipgan.interrupt import load_state, save_state
from clipgan.io import SETTINGS_KEY, grey, open_image, read_settings, rgb, to_tensor

from conftest import TINY_DD, tiny_cli_args

PRECIOUS = b"an existing file that must survive\n"
FAST = settings(max_examples=60, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
RUNS = settings(max_examples=15, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

ANY_NUMBER = st.one_of(st.floats(), st.integers(-10**30, 10**30), st.sampled_from([0, -1, 1e-300, 1e308, 2**63]))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3),
    max_leaves=6,
)


def assert_valid(s: Settings) -> None:
    """What every accepted Settings holds, whatever it was built from."""
    def whole(v):
        return isinstance(v, int) and not isinstance(v, bool)

    assert all(isinstance(p, str) for p in [*s.prompts, *s.image_prompts, *s.clip, *s.augments])
    assert whole(s.iterations) and s.iterations >= 1 and whole(s.cutn) and s.cutn >= 1
    assert whole(s.change_prompt_every) and s.change_prompt_every >= 0 and whole(s.upscale_steps)
    assert s.feather is None or (whole(s.feather) and s.feather >= 0)  # None: from the picture's size
    assert s.size is None or (len(s.size) == 2 and all(whole(v) and 1 <= v <= MAX_SIDE for v in s.size))
    assert all(whole(v) for v in s.noise_prompt_seeds)
    assert all(not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v) for v in s.noise_prompt_weights)
    for v in (s.lr, s.cut_pow, s.init_weight, s.tv_weight):
        assert not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)
    assert s.lr > 0 and s.cut_pow > 0
    assert s.contrast is None or all(isinstance(w, str) and w.strip() for w in s.contrast)
    assert not isinstance(s.contrast_weight, bool) and math.isfinite(s.contrast_weight) and s.contrast_weight >= 0
    assert s.upscale is None or (math.isfinite(s.upscale) and s.upscale > 1)
    assert s.seed is None or (whole(s.seed) and 0 <= s.seed < 2**63)
    assert isinstance(s.low_memory, bool) and isinstance(s.trust_checkpoint, bool)
    for v in (s.init_image, s.mask, s.vqgan_config, s.vqgan_checkpoint):
        assert v is None or isinstance(v, str)
    json.dumps(s.to_dict(), allow_nan=False)  # what a PNG carries is strict JSON


def clean(fn, *args, **kwargs):
    """fn's result, or None for a one-line ClipganError; anything else fails the test."""
    try:
        return fn(*args, **kwargs)
    except ClipganError as e:
        assert str(e).strip() and "\n" not in str(e).strip(), repr(str(e))
        return None


def cli(capsys, argv) -> tuple[int, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    if info.value.code != 0:
        assert info.value.code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    return info.value.code, err


def resume_edited(capsys, state: dict, path: Path) -> tuple[int, str, bytes]:
    """Writes an edited state file and resumes it: (exit code, stderr, the file's bytes before)."""
    try:
        save_state(state, path)
    except Exception:
        assume(False)  # torch cannot save it: no such file can exist
    before = path.read_bytes()
    code, err = cli(capsys, ["resume", path, "-q"])
    return code, err, before


# ---------------------------------------------------------------- numeric options

NUMERIC = ["iterations", "change_prompt_every", "init_weight", "feather", "tv_weight", "upscale", "upscale_steps",
           "cutn", "cut_pow", "lr", "seed"]


@settings(max_examples=300, deadline=None, database=None)
@given(st.sampled_from(NUMERIC + ["size"]), st.one_of(ANY_NUMBER, st.tuples(ANY_NUMBER, ANY_NUMBER), JSON))
@example("lr", float("nan"))
@example("lr", float("inf"))
@example("cut_pow", float("nan"))
@example("size", (32.5, 32))
def test_numeric_settings_are_valid_or_refused(name, value):
    s = clean(Settings().replace, **{name: value})
    if s is not None:
        assert_valid(s)


@pytest.mark.parametrize("flag,value,named", [("--lr", "nan", "lr"), ("--lr", "inf", "lr"), ("--cut-pow", "nan", "cut-pow"),
                                              ("--init-weight", "nan", "init-weight"), ("--tv-weight", "-inf", "tv-weight"),
                                              ("--upscale", "nan", "upscale"), ("--feather", "99999", "feather")])
def test_cli_non_finite_numbers_blame_their_own_flag(tmp_path, tiny_settings, capsys, flag, value, named):
    (tmp_path / "x.png").write_bytes(PRECIOUS)
    code, err = cli(capsys, ["generate", "a red circle", *tiny_cli_args(tiny_settings), "-i", "1", flag, value,
                             "-o", tmp_path / "x.png"])
    assert code == 2 and f"error: {named} " in err, err
    assert (tmp_path / "x.png").read_bytes() == PRECIOUS and sorted(p.name for p in tmp_path.iterdir()) == ["x.png"]


# ---------------------------------------------------------------- PNG settings, field by field

FIELDS = list(Settings().to_dict())


@FAST
@given(field=st.sampled_from(FIELDS), value=JSON)
@example(field="prompts", value=[1, 2])
@example(field="init_image", value=5)
@example(field="size", value=[32.5, 32])
@example(field="low_memory", value="no")
@example(field="trust_checkpoint", value=True)
def test_every_png_settings_field_is_valid_or_refused(tmp_path, field, value):
    data = {**Settings(prompts=["a red circle"]).to_dict(), field: value}
    info = PngInfo()
    info.add_text(SETTINGS_KEY, json.dumps(data))
    path = tmp_path / "s.png"
    Image.new("RGB", (4, 4)).save(path, pnginfo=info)
    s = clean(Settings.from_dict, read_settings(path))
    if s is not None:
        assert_valid(s)
        assert s.trust_checkpoint is False  # a file never grants trust


def test_from_png_with_wrong_types_is_one_line(tmp_path, tiny_settings, capsys):
    for field, value in [("prompts", [1, 2]), ("vqgan_checkpoint", 7), ("size", [32.5, 32]), ("low_memory", "no")]:
        data = {**Settings(**tiny_settings).to_dict(), "prompts": ["a red circle"], field: value}
        info = PngInfo()
        info.add_text(SETTINGS_KEY, json.dumps(data))
        Image.new("RGB", (4, 4)).save(tmp_path / "in.png", pnginfo=info)
        code, err = cli(capsys, ["generate", "--from-png", tmp_path / "in.png", "-o", tmp_path / "out.png"])
        assert code == 2 and not (tmp_path / "out.png").exists(), (field, err)


# ---------------------------------------------------------------- image files


def png_header_only(width: int, height: int, mode_bits: tuple[int, int] = (8, 2)) -> bytes:
    """A PNG whose header claims width x height, with almost no data after it."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, *mode_bits, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


MODES = ["1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16", "F", "CMYK", "YCbCr", "LAB", "HSV"]
FORMATS = ["PNG", "JPEG", "WEBP", "TIFF", "BMP", "GIF"]


@FAST
@given(mode=st.sampled_from(MODES), fmt=st.sampled_from(FORMATS), w=st.integers(1, 24), h=st.integers(1, 24),
       keep=st.one_of(st.none(), st.floats(0, 1)), seed=st.integers(0, 2**16))
def test_image_files_any_mode_depth_or_truncation(tmp_path, mode, fmt, w, h, keep, seed):
    rng = np.random.default_rng(seed)
    base = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")
    try:
        picture = Image.fromarray(rng.integers(0, 65536, (h, w), dtype=np.uint16)) if mode == "I;16" else base.convert(mode)
        buffer = io.BytesIO()
        picture.save(buffer, format=fmt)
    except (OSError, ValueError, KeyError):
        assume(False)  # PIL cannot write this mode in this format: nothing to read
    data = buffer.getvalue()
    if keep is not None:
        data = data[: int(len(data) * keep)]
    path = tmp_path / f"x.{fmt.lower()}"
    path.write_bytes(data)
    image = clean(open_image, path)
    if image is None:
        return
    assert image.size == (w, h)
    for convert in (rgb, grey):
        out = clean(convert, image)
        assert out is None or (out.size == (w, h) and out.mode in ("RGB", "L"))
    t = clean(to_tensor, image, (8, 8))
    assert t is None or (t.shape == (1, 3, 8, 8) and bool(torch.isfinite(t).all()) and 0 <= t.min() <= t.max() <= 1)


@FAST
@given(value=st.integers(0, 65535), big_endian=st.booleans())
def test_sixteen_bit_greyscale_is_scaled_not_clipped(tmp_path, value, big_endian):
    path = tmp_path / "g16.png"
    Image.fromarray(np.full((3, 5), value, dtype=">u2" if big_endian else "<u2")).save(path)
    got = np.asarray(rgb(open_image(path)))
    assert got.shape == (3, 5, 3) and np.all(got == round(value * 255 / 65535))


@FAST
@given(w=st.integers(1, 2**31 - 1), h=st.integers(1, 2**31 - 1), bits=st.sampled_from([(8, 2), (16, 0), (8, 6), (1, 0)]))
@example(w=100_000, h=100_000, bits=(8, 2))
@example(w=9_000, h=9_000, bits=(8, 2))
def test_any_header_size_is_refused_or_read(tmp_path, w, h, bits):
    path = tmp_path / "h.png"
    path.write_bytes(png_header_only(w, h, bits))
    image = clean(open_image, path)
    assert image is None or image.size == (w, h)


@pytest.mark.parametrize("where", ["init-image", "mask", "image-prompt", "from-png", "score"])
def test_huge_header_on_every_image_input_is_one_line(tmp_path, tiny_settings, capsys, where):
    huge = tmp_path / "huge.png"
    huge.write_bytes(png_header_only(100_000, 100_000))
    Image.new("RGB", (32, 32), "red").save(tmp_path / "in.png")
    (tmp_path / "out.png").write_bytes(PRECIOUS)
    model = tiny_cli_args(tiny_settings)
    argv = {
        "init-image": ["generate", "a red circle", *model, "--init-image", huge],
        "mask": ["generate", "a red circle", *model, "--init-image", tmp_path / "in.png", "--mask", huge],
        "image-prompt": ["generate", *model, "--image-prompt", huge],
        "from-png": ["generate", "--from-png", huge],
        "score": ["score", huge, "-p", "a red circle", "--clip", tiny_settings["clip"][0], "--device", "cpu"],
    }[where]
    if where != "score":
        argv += ["-o", tmp_path / "out.png"]
    code, err = cli(capsys, argv)
    assert code == 2 and "huge.png" in err and "Mpx" in err, err
    assert (tmp_path / "out.png").read_bytes() == PRECIOUS


def test_mask_of_another_size_is_refused_before_work(tmp_path, tiny_settings, capsys):
    Image.new("RGB", (32, 32), "red").save(tmp_path / "in.png")
    Image.new("L", (16, 16), 255).save(tmp_path / "mask.png")
    code, err = cli(capsys, ["generate", "a red circle", *tiny_cli_args(tiny_settings), "--init-image",
                             tmp_path / "in.png", "--mask", tmp_path / "mask.png", "-o", tmp_path / "out.png"])
    assert code == 2 and "16x16" in err and "32x32" in err and not (tmp_path / "out.png").exists()


# ---------------------------------------------------------------- VQGAN yaml configs

DD_VALUES = st.one_of(st.sampled_from([-3, -1, 0, 1, 2, 3, 4, 1.5, "8", None, True, [], [0], [1, 2], [2, -1], {}]),
                      st.integers(-10, 64))


@FAST
@given(changes=st.dictionaries(st.sampled_from(["ch", "out_ch", "ch_mult", "num_res_blocks", "attn_resolutions",
                                                "in_channels", "resolution", "z_channels", "dropout", "double_z"]),
                               DD_VALUES, min_size=1, max_size=3),
       n_embed=st.sampled_from([16, 0, -5, 2.5, "16", None]), embed_dim=st.sampled_from([4, 0, -1, 4.0, None]))
@example(changes={"ch_mult": []}, n_embed=16, embed_dim=4)
@example(changes={"ch": -32}, n_embed=16, embed_dim=4)
@example(changes={"ch": 32}, n_embed=0, embed_dim=4)
def test_vqgan_yaml_values_are_refused_or_built(tmp_path, tiny_models, changes, n_embed, embed_dim):
    from clipgan.models.vqgan import load_vqgan

    config = yaml.safe_load(tiny_models["vq"][0].read_text())
    params = config["model"]["params"]
    params["ddconfig"] = {**TINY_DD, **changes}
    params["n_embed"], params["embed_dim"] = n_embed, embed_dim
    path = tmp_path / "edited.yaml"
    path.write_text(yaml.safe_dump(config))
    model = clean(load_vqgan, path, tiny_models["vq"][1])
    if model is not None:  # only a config that fits the tiny checkpoint loads
        assert model.codebook.shape == (16, 4)


# ---------------------------------------------------------------- zoom expressions

TOKENS = st.sampled_from(["t", "pi", "e", "1", "0", "2", "1e308", "9" * 30, ".5", "-", "+", "*", "/", "%", "**", "(", ")",
                          "sin(", "exp(", "log(", "sqrt(", "floor(", "ceil(", "abs(", "min(", "max(", ",", " "])


@settings(max_examples=400, deadline=None, database=None)
@given(st.one_of(st.lists(TOKENS, max_size=14).map("".join), st.text(max_size=30)), st.integers(1, 30))
@example("floor(1e18)**floor(1e18)", 3)
@example("exp(t*1000)", 3)
@example("1e308*10", 1)
@example("ceil(1e300)**2", 1)
def test_zoom_expressions_are_refused_or_in_range(text, frames):
    opts = ZoomOptions(frames=frames, zoom=text)
    try:
        opts.validate()
    except ClipganError as e:
        assert "\n" not in str(e).strip()
        return
    for t in range(frames):
        assert 0.01 <= Expr(text, "zoom")(t) <= 100


# ---------------------------------------------------------------- state files, field by field


@pytest.fixture(scope="module")
def real_state(tiny_loaded, tmp_path_factory) -> dict:
    """A generate state after one step of a 2-step run, as `clipgan generate` writes it."""
    from clipgan.pipeline import generate, resume_state, rng_state

    models, kwargs = tiny_loaded
    settings_ = Settings(**kwargs).replace(prompts=["a red circle"], iterations=2)
    steps = []
    generate(models=models, settings=settings_, callback=lambda s: steps.append((s, rng_state())))
    step, rng = steps[0]
    state = resume_state(step, settings_, [step.loss], rng)
    out = tmp_path_factory.mktemp("state") / "out.png"
    return {**state, "job": {"output": str(out), "save_every": 0, "frames_dir": None, "video": None, "fps": 24.0},
            "frames": None}


STATE_VALUES = st.one_of(
    JSON,
    st.sampled_from(["drop"]),
    st.builds(lambda shape, dtype: torch.zeros(shape, dtype=dtype),
              st.lists(st.integers(0, 5), max_size=4).map(tuple), st.sampled_from([torch.float32, torch.uint8, torch.int64])),
)


@RUNS
@given(key=st.sampled_from(["kind", "version", "z", "optimizer", "next_step", "rng", "settings", "job", "losses", "frames"]),
       value=STATE_VALUES)
@example(key="next_step", value=-1)
@example(key="z", value=torch.zeros(1, 4, 4, 4))
@example(key="kind", value="zoom")
def test_every_state_file_field_is_refused_or_resumed(real_state, tmp_path, capsys, key, value):
    state = dict(real_state)
    if isinstance(value, str) and value == "drop":
        state.pop(key)
    else:
        state[key] = value
    out = Path(real_state["job"]["output"]).with_name(f"{tmp_path.name}.png")
    state["job"] = {**real_state["job"], "output": str(out)} if key != "job" else state.get("job")
    path = tmp_path / "edited.state.pt"
    code, err, before = resume_edited(capsys, state, path)
    if code == 0:
        assert out.exists()
        with Image.open(out) as image:
            json.loads(image.info[SETTINGS_KEY], parse_constant=lambda c: pytest.fail(f"{c} in PNG JSON"))
        out.unlink()
    else:
        assert path.read_bytes() == before and not out.exists()
    assert clean(load_state, path) is None or code == 0 or "error:" in err


def test_saved_frames_of_another_size_are_refused_not_shrunk(real_state, tmp_path, capsys):
    out, video = tmp_path / "out.png", tmp_path / "progress.mp4"
    state = {**real_state, "frames": torch.zeros(2, 16, 16, 3, dtype=torch.uint8),
             "job": {**real_state["job"], "output": str(out), "video": str(video)}}
    path = tmp_path / "out.state.pt"
    save_state(state, path)
    code, err = cli(capsys, ["resume", path, "-q"])
    assert code == 2 and "16x16" in err and "32x32" in err, err
    assert path.exists() and not out.exists() and not video.exists()


@pytest.fixture(scope="module")
def refine_state(tiny_loaded, tmp_path_factory) -> dict:
    """An upscaled generate's state after the refinement's first step, as `clipgan generate` writes it."""
    from clipgan.pipeline import generate, resume_state, rng_state

    models, kwargs = tiny_loaded
    settings_ = Settings(**kwargs).replace(prompts=["a red circle"], iterations=2, size=(16, 16), upscale=2.0,
                                           upscale_steps=2)
    steps = []
    generate(models=models, settings=settings_, callback=lambda s: steps.append((s, rng_state())))
    step, rng = steps[2]
    state = resume_state(step, settings_, [s.loss for s, _ in steps[:3]], rng)
    assert state["phase"] == "refine" and state["base"]["steps"] == 2
    out = tmp_path_factory.mktemp("refine") / "out.png"
    return {**state, "job": {"output": str(out), "save_every": 0, "frames_dir": None, "video": None, "fps": 24.0},
            "frames": None}


@RUNS
@given(key=st.sampled_from(["phase", "base", "base.settings", "base.size", "base.steps", "losses", "settings"]),
       value=STATE_VALUES)
@example(key="base.steps", value=99)
@example(key="base.size", value=[0, 16])
@example(key="base.size", value=[60000, 60000])  # refused before a picture that size is made
@example(key="phase", value="first")
@example(key="settings", value={"prompts": ["a red circle"]})  # a refinement of a run without upscale
def test_every_refinement_state_field_is_refused_or_resumed(refine_state, tmp_path, capsys, key, value):
    state = {**refine_state, "base": dict(refine_state["base"])}
    where, name = (state["base"], key[5:]) if key.startswith("base.") else (state, key)
    if isinstance(value, str) and value == "drop":
        where.pop(name)
    else:
        where[name] = value
    out = tmp_path / "out.png"
    state["job"] = {**refine_state["job"], "output": str(out)}
    code, err, _ = resume_edited(capsys, state, tmp_path / "edited.state.pt")
    if code == 0:
        with Image.open(out) as image:
            json.loads(image.info[SETTINGS_KEY], parse_constant=lambda c: pytest.fail(f"{c} in PNG JSON"))
    else:
        assert code == 2 and err.startswith("error:") and len(err.strip().splitlines()) == 1, err
        assert not out.exists()


@pytest.fixture(scope="module")
def zoom_state(tiny_loaded, tmp_path_factory) -> dict:
    """A zoom state after frame 0 of 2, as `clipgan zoom` writes it when interrupted."""
    from clipgan import animate
    from clipgan.cli_animate import _job
    from clipgan.interrupt import move

    models, kwargs = tiny_loaded
    options = ZoomOptions(frames=2, steps_per_frame=1, first_steps=1, zoom="1 + 0.01*t")
    s = Settings(**kwargs)
    first = next(animate.zoom(["a red circle"], models=models, settings=s, frames=2, steps_per_frame=1, first_steps=1,
                              zoom="1 + 0.01*t"))
    out = tmp_path_factory.mktemp("zoom") / "z.gif"
    frames = first.image.mul(255).round().byte()[0].permute(1, 2, 0)[None]
    return {"kind": "zoom", "version": 1, "job": _job("zoom", ["a red circle"], options, out, 8.0, 2),
            "settings": s.to_dict(), "carry": move(first.carry, "cpu"), "frames": frames}


@RUNS
@given(where=st.sampled_from(["carry", "job"]),
       key=st.sampled_from(["next", "image", "rng", "kind", "prompts", "options", "fps", "total", "output"]),
       value=STATE_VALUES)
@example(where="carry", key="image", value=torch.zeros(1, 3, 16, 16))
@example(where="carry", key="next", value=-1)
@example(where="carry", key="image", value=[])  # found by this test: a list where the frame's tensor belongs
@example(where="carry", key="image", value={})  # found by this test under load: a dict there was walked into, not refused
@example(where="job", key="options", value={"zoomm": 2})
@example(where="job", key="kind", value="morph")
def test_every_animation_state_field_is_refused_or_resumed(zoom_state, tmp_path, capsys, where, key, value):
    part = dict(zoom_state[where])
    if isinstance(value, str) and value == "drop":
        part.pop(key, None)
    else:
        part[key] = value
    state = {**zoom_state, where: part}
    out = tmp_path / "z.gif"
    if isinstance(state["job"], dict) and not (where == "job" and key == "output"):
        state["job"] = {**state["job"], "output": str(out)}
    path = tmp_path / "z.state.pt"
    code, err, before = resume_edited(capsys, state, path)
    if code == 0:
        assert out.exists()
        out.unlink()
    else:
        assert path.read_bytes() == before and not out.exists()


@FAST
@given(where=st.sampled_from(["model", "target", "params", "ddconfig", "first_stage_config"]), value=JSON)
@example(where="params", value=[1, 2])
@example(where="target", value=["a"])
def test_vqgan_yaml_structure_is_refused_or_read(tmp_path, tiny_models, where, value):
    from clipgan.models.vqgan import read_config

    config = yaml.safe_load(tiny_models["vq"][0].read_text())
    if where == "model":
        config["model"] = value
    elif where in ("target", "params"):
        config["model"][where] = value
    elif where == "ddconfig":
        config["model"]["params"]["ddconfig"] = value
    else:  # a Net2Net wrapper around anything
        config["model"] = {"target": "taming.models.cond_transformer.Net2NetTransformer", "params": {where: value}}
    path = tmp_path / "edited.yaml"
    path.write_text(yaml.safe_dump(config))
    clean(read_config, path)
