"""The model registry: data sanity, where files live, and the errors users see."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from clipgan.errors import ClipganError
from clipgan.models import registry
from clipgan.models.registry import (
    CLIP_ALIASES,
    DEFAULT_CLIP,
    DEFAULT_VQGAN,
    VQGAN_MODELS,
    VQGANEntry,
    checkpoints_dir,
    list_models,
    resolve_clip_alias,
    resolve_vqgan,
)

SHA_CHARS = set("0123456789abcdef")


def _touch(*paths: Path) -> None:
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def test_cardinality_names_unique_and_keys_match():
    assert len({e.name for e in VQGAN_MODELS.values()}) == len(VQGAN_MODELS)
    assert all(key == entry.name for key, entry in VQGAN_MODELS.items())
    files = [f for e in VQGAN_MODELS.values() for f in (e.config_file, e.checkpoint_file)]
    assert len(set(files)) == len(files)


@pytest.mark.parametrize("entry", [e for e in VQGAN_MODELS.values() if not e.bundled], ids=str)
def test_feature_downloadable_entries_have_urls(entry):
    for url in (entry.config_url, entry.checkpoint_url):
        parts = urlsplit(url)
        assert parts.scheme in ("http", "https") and parts.netloc, url
    for sha in (entry.config_sha256, entry.checkpoint_sha256):
        assert sha is None or (len(sha) == 64 and set(sha) <= SHA_CHARS)
    assert entry.config_file == f"{entry.name}.yaml"
    assert entry.checkpoint_file == f"{entry.name}.ckpt"


def test_feature_well_known_models_registered():
    for name in ("vqgan_imagenet_f16_1024", "vqgan_imagenet_f16_16384", "vqgan_gumbel_f8_8192",
                 "wikiart_16384", "coco", "sflckr", "faceshq"):
        assert name in VQGAN_MODELS


def test_feature_defaults_are_bundled():
    toy = VQGAN_MODELS[DEFAULT_VQGAN]
    assert toy.bundled and toy.config_url is None and toy.checkpoint_url is None
    assert (toy.config_file, toy.checkpoint_file) == ("toy-vqgan.yaml", "toy-vqgan.ckpt")
    assert DEFAULT_CLIP in CLIP_ALIASES


def test_feature_checkpoints_dir_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("CLIPGAN_CHECKPOINTS", str(tmp_path / "ck"))
    assert checkpoints_dir() == tmp_path / "ck"


def test_feature_checkpoints_dir_fallbacks(monkeypatch, tmp_path):
    monkeypatch.delenv("CLIPGAN_CHECKPOINTS", raising=False)
    monkeypatch.setattr(registry, "_repo_checkpoints", lambda: tmp_path / "repo" / "checkpoints")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert checkpoints_dir() == tmp_path / "cache" / "clipgan" / "checkpoints"
    (tmp_path / "repo" / "checkpoints").mkdir(parents=True)
    assert checkpoints_dir() == tmp_path / "repo" / "checkpoints"


def test_feature_bundled_dir_is_repo_checkpoints():
    # in a checkout, the package's checkpoints/ is a link to the top-level folder git keeps them in
    package_link = Path(registry.__file__).resolve().parents[1] / "checkpoints"
    assert package_link.is_symlink()
    assert registry.bundled_dir() == Path(registry.__file__).resolve().parents[2] / "checkpoints"
    assert (registry.bundled_dir() / "toy-vqgan.ckpt").is_file()


def test_feature_list_models_marks_presence(tmp_path):
    _touch(tmp_path / "vqgan_imagenet_f16_16384.yaml", tmp_path / "vqgan_imagenet_f16_16384.ckpt")
    _touch(tmp_path / "coco.yaml")  # half a model is not a model
    status = {s.name: s for s in list_models(tmp_path)}
    assert set(status) == set(VQGAN_MODELS)
    assert status["vqgan_imagenet_f16_16384"].present
    assert status["vqgan_imagenet_f16_16384"].checkpoint_path == tmp_path / "vqgan_imagenet_f16_16384.ckpt"
    assert not status["coco"].present
    assert not status["wikiart_16384"].present


def test_feature_list_models_uses_env_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("CLIPGAN_CHECKPOINTS", str(tmp_path))
    _touch(tmp_path / "sflckr.yaml", tmp_path / "sflckr.ckpt")
    assert {s.name for s in list_models() if s.present and not s.entry.bundled} == {"sflckr"}


def test_feature_bundled_files_come_from_repo(monkeypatch, tmp_path):
    monkeypatch.setenv("CLIPGAN_CHECKPOINTS", str(tmp_path / "elsewhere"))
    bundled = tmp_path / "repo"
    monkeypatch.setattr(registry, "bundled_dir", lambda: bundled)
    _touch(bundled / "toy-vqgan.yaml", bundled / "toy-vqgan.ckpt")
    assert resolve_vqgan("toy") == (bundled / "toy-vqgan.yaml", bundled / "toy-vqgan.ckpt")
    assert resolve_vqgan("toy", root=tmp_path / "other")[0].parent == bundled


def test_feature_resolve_vqgan_present(tmp_path):
    _touch(tmp_path / "coco.yaml", tmp_path / "coco.ckpt")
    assert resolve_vqgan("coco", tmp_path) == (tmp_path / "coco.yaml", tmp_path / "coco.ckpt")


def test_exception_resolve_vqgan_unknown_lists_known(tmp_path):
    with pytest.raises(ClipganError) as err:
        resolve_vqgan("imagenet_typo", tmp_path)
    message = str(err.value)
    assert "imagenet_typo" in message
    assert "vqgan_imagenet_f16_16384" in message and "toy" in message


def test_exception_resolve_vqgan_missing_says_download(tmp_path):
    _touch(tmp_path / "wikiart_16384.yaml")
    with pytest.raises(ClipganError, match="run: clipgan download wikiart_16384") as err:
        resolve_vqgan("wikiart_16384", tmp_path)
    assert "wikiart_16384.ckpt" in str(err.value)
    assert "\n" not in str(err.value)


def test_exception_resolve_bundled_missing(monkeypatch, tmp_path):
    monkeypatch.setattr(registry, "bundled_dir", lambda: tmp_path)
    with pytest.raises(ClipganError, match="bundled model 'toy'.*toy-vqgan.yaml"):
        resolve_vqgan("toy")


def test_feature_resolve_clip_alias(monkeypatch, tmp_path):
    monkeypatch.setattr(registry, "bundled_dir", lambda: tmp_path)
    assert resolve_clip_alias("ViT-B-32") is None  # not an alias: an open_clip name
    with pytest.raises(ClipganError, match="toy-clip.safetensors"):
        resolve_clip_alias("toy")
    _touch(tmp_path / "toy-clip.json", tmp_path / "toy-clip.safetensors")
    assert resolve_clip_alias("toy") == (tmp_path / "toy-clip.json", tmp_path / "toy-clip.safetensors")
    other = tmp_path / "other"
    _touch(other / "toy-clip.json", other / "toy-clip.safetensors")
    assert resolve_clip_alias("toy", root=other)[0] == other / "toy-clip.json"


def test_feature_entry_file_names_default_from_name():
    entry = VQGANEntry(name="mine", description="", config_url="http://h/c", checkpoint_url="http://h/k")
    assert (entry.config_file, entry.checkpoint_file) == ("mine.yaml", "mine.ckpt")
    with pytest.raises(AttributeError):
        entry.name = "other"  # frozen
