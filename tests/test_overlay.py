"""CLIP overlays (clipgan.models.overlay): a CLIP stored as its differences from another, applied by
the loader; tiny random CLIPs in open_clip's format, and the bundled toy-contrast on the bundled toy."""

import pytest
import torch
from safetensors.torch import load_file, save_file

from clipgan.errors import ClipganError
from clipgan.models import registry
from clipgan.models.clip import load_named
from clipgan.models.overlay import KIND, apply_overlay, file_sha256
from clipgan.toyworld import overlay as tool

from conftest import write_clip

ROWS = [3, 7, 11]


@pytest.fixture
def pair(tmp_path):
    """A tiny CLIP (base) and a copy with three token-embedding rows and one other tensor changed."""
    config, base = write_clip(tmp_path, "tiny-ov")
    full = load_file(str(base))
    full["token_embedding.weight"][ROWS] += 1.0
    full["ln_final.bias"] = full["ln_final.bias"] + 0.5
    save_file(full, str(tmp_path / "full.safetensors"))
    return tmp_path, config, base, full


def test_the_overlay_holds_only_what_changed_and_rebuilds_the_model_bit_for_bit(pair, monkeypatch):
    folder, config, base, full = pair
    out = folder / "tiny-ov-o.safetensors"
    assert tool.main([str(folder / "full.safetensors"), str(base), str(out)]) == 0
    held = load_file(str(out))
    assert sorted(held) == ["ln_final.bias", "token_embedding.weight.rows", "token_embedding.weight.values"]
    assert held["token_embedding.weight.rows"].tolist() == ROWS
    assert out.stat().st_size < base.stat().st_size / 10
    monkeypatch.setitem(registry.CLIP_ALIASES, "tiny-ov", (config.name, base.name))
    monkeypatch.setitem(registry.CLIP_OVERLAYS, "tiny-ov-o", ("tiny-ov", out.name))
    perceptor = load_named("tiny-ov-o", root=folder)
    state = perceptor.model.state_dict()
    assert perceptor.name == "tiny-ov-o"
    assert all(torch.equal(state[k], v) for k, v in full.items())
    plain = load_named("tiny-ov", root=folder)
    assert not torch.allclose(plain.encode_text(["a red star"]), perceptor.encode_text(["a red star"]))


def _write(path, tensors, base):
    save_file(tensors, str(path), metadata={"kind": KIND, "base_sha256": file_sha256(base)})


@pytest.mark.parametrize("case, message", [
    ("other base", "was made for another"),
    ("no kind", "is not a clipgan overlay"),
    ("not safetensors", "is not a readable safetensors file"),
    ("row out of range", "do not fit that table"),
    ("rows without values", "do not fit that table"),
    ("unknown tensor", "does not fit this model"),
    ("wrong shape", "does not fit this model"),
])
def test_an_overlay_that_does_not_fit_is_refused_in_one_line(pair, case, message):
    folder, _, base, full = pair
    state, path = load_file(str(base)), folder / "bad.safetensors"
    if case == "other base":
        other = folder / "other.safetensors"
        save_file({**full, "ln_final.weight": full["ln_final.weight"] + 1}, str(other))
        _write(path, {"ln_final.weight": full["ln_final.weight"]}, other)
    elif case == "no kind":
        save_file({"ln_final.weight": full["ln_final.weight"]}, str(path))
    elif case == "not safetensors":
        path.write_bytes(b"\x80\x04 not a tensor file")
    elif case == "row out of range":
        _write(path, {"token_embedding.weight.rows": torch.tensor([10**6]),
                      "token_embedding.weight.values": torch.zeros(1, 64)}, base)
    elif case == "rows without values":
        _write(path, {"token_embedding.weight.rows": torch.tensor([1])}, base)
    elif case == "unknown tensor":
        _write(path, {"no.such.tensor": torch.zeros(2)}, base)
    else:
        _write(path, {"ln_final.weight": torch.zeros(3)}, base)
    with pytest.raises(ClipganError, match=message) as e:
        apply_overlay(state, path, base)
    assert "\n" not in str(e.value)


def test_the_tool_overwrites_nothing_and_refuses_unreadable_weights(pair, capsys):
    folder, _, base, _ = pair
    out = folder / "kept.safetensors"
    out.write_bytes(b"mine")
    assert tool.main([str(folder / "full.safetensors"), str(base), str(out)]) == 2
    assert out.read_bytes() == b"mine"
    (folder / "junk.safetensors").write_bytes(b"junk")
    assert tool.main([str(folder / "junk.safetensors"), str(base), str(folder / "new.safetensors")]) == 2
    assert not (folder / "new.safetensors").exists() and not list(folder.glob("*.partial"))
    assert capsys.readouterr().err.count("error:") == 2


def test_the_bundled_contrast_clip_is_a_small_overlay_on_the_bundled_toy():
    """toy-contrast: the toy CLIP's first training stage, a different reader of the same texts."""
    path = registry.bundled_dir() / registry.CLIP_OVERLAYS["toy-contrast"][1]
    assert path.stat().st_size < 1_000_000
    toy, other = load_named("toy"), load_named("toy-contrast")
    text = ["a red star on a blue background"]
    assert not torch.equal(toy.encode_text(text), other.encode_text(text))
    rows = load_file(str(path))["token_embedding.weight.rows"]  # the fine-tunes left most of the vocabulary alone
    assert 0 < len(rows) < 100
