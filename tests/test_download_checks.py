"""Downloaded models are checked at every use: against a published sha256, else against the sha256
and size of their first download (trust on first use). Served from 127.0.0.1, never the internet."""

from __future__ import annotations

import hashlib
import json
from http.server import BaseHTTPRequestHandler

import pytest
from conftest import local_server
from typer.testing import CliRunner

from clipgan.cli import app
from clipgan.download import download_model
from clipgan.errors import ClipganError, ClipganNotice
from clipgan.models import checksums, registry

YAML, CKPT = b"model: {}\n", bytes(range(256)) * 40


class Files(BaseHTTPRequestHandler):
    def do_GET(self):
        body = self.server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    with local_server(Files, files={}) as httpd:
        yield httpd


def register(monkeypatch, server, yaml: bytes, ckpt: bytes, **published) -> registry.VQGANEntry:
    server.files.update({"/m.yaml": yaml, "/m.ckpt": ckpt})
    entry = registry.VQGANEntry(name="testnet", description="test only", config_url=f"{server.url}/m.yaml",
                                checkpoint_url=f"{server.url}/m.ckpt", **published)
    monkeypatch.setitem(registry.VQGAN_MODELS, "testnet", entry)
    return entry


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_feature_first_download_records_sha256_and_size(server, tmp_path, monkeypatch):
    register(monkeypatch, server, YAML, CKPT)
    download_model("testnet", root=tmp_path, progress=False)
    record = json.loads((tmp_path / checksums.RECORD).read_text())
    assert record == {
        "testnet.yaml": {"sha256": sha(YAML), "size": len(YAML), "url": f"{server.url}/m.yaml"},
        "testnet.ckpt": {"sha256": sha(CKPT), "size": len(CKPT), "url": f"{server.url}/m.ckpt"},
    }


def test_exception_a_changed_or_cut_file_is_refused_at_use(server, tmp_path, monkeypatch):
    entry = register(monkeypatch, server, YAML, CKPT)
    config, ckpt = download_model("testnet", root=tmp_path, progress=False)
    checksums.verify_entry(entry, config, ckpt)  # as downloaded: fine
    ckpt.write_bytes(CKPT[:-1] + b"\x00")  # same size, one byte changed
    with pytest.raises(ClipganError, match="changed since its first download") as err:
        checksums.verify_entry(entry, config, ckpt)
    assert "clipgan download testnet" in str(err.value) and "\n" not in str(err.value)
    ckpt.write_bytes(CKPT[:100])
    with pytest.raises(ClipganError, match=f"100 bytes, but its first download was {len(CKPT)}"):
        checksums.verify_entry(entry, config, ckpt)
    # download again finds the file there and refuses it too, instead of trusting it
    with pytest.raises(ClipganError, match="first download"):
        download_model("testnet", root=tmp_path, progress=False)


def test_feature_published_hash_wins_over_any_record(server, tmp_path, monkeypatch):
    entry = register(monkeypatch, server, YAML, CKPT, config_sha256=sha(YAML), checkpoint_sha256=sha(CKPT))
    config, ckpt = download_model("testnet", root=tmp_path, progress=False)
    assert not (tmp_path / checksums.RECORD).exists()  # nothing to trust on first use
    checksums.verify_entry(entry, config, ckpt)
    ckpt.write_bytes(b"x" * len(CKPT))
    with pytest.raises(ClipganError, match="does not match the published sha256"):
        checksums.verify_entry(entry, config, ckpt)


def test_feature_a_file_put_there_by_hand_is_recorded_on_first_use(tmp_path):
    path = tmp_path / "mine.ckpt"
    path.write_bytes(CKPT)
    with pytest.warns(ClipganNotice, match="trust on first use"):
        assert checksums.verify(path, None, "mine") == sha(CKPT)
    assert checksums.load_record(tmp_path)["mine.ckpt"]["size"] == len(CKPT)
    path.write_bytes(CKPT[::-1])
    with pytest.raises(ClipganError, match="changed"):
        checksums.verify(path, None, "mine")


def test_exception_unreadable_record_is_one_line(tmp_path):
    (tmp_path / "m.ckpt").write_bytes(CKPT)
    (tmp_path / checksums.RECORD).write_text("[1, 2")
    with pytest.raises(ClipganError, match="delete it to record the files again"):
        checksums.verify(tmp_path / "m.ckpt", None, "m")


def test_smoke_cli_download_generate_then_refuse_a_changed_checkpoint(server, tmp_path, monkeypatch, tiny_models):
    from conftest import TINY_DD  # noqa: F401  (the tiny VQGAN the server hands out)

    yaml_path, ckpt_path = tiny_models["vq"]
    clip_config, clip_weights = tiny_models["clip"]
    register(monkeypatch, server, yaml_path.read_bytes(), ckpt_path.read_bytes())
    monkeypatch.setenv("CLIPGAN_CHECKPOINTS", str(tmp_path / "ck"))
    runner = CliRunner()
    result = runner.invoke(app, ["download", "testnet"])
    assert result.exit_code == 0, result.output
    run = ["generate", "a red circle", "--vqgan", "testnet", "--clip", f"{clip_config}:{clip_weights}", "-s", "32", "32",
           "-i", "1", "--cutn", "1", "--device", "cpu", "--seed", "0", "-q"]
    result = runner.invoke(app, [*run, "-o", str(tmp_path / "a.png")])
    assert result.exit_code == 0, result.output
    ckpt = tmp_path / "ck" / "testnet.ckpt"
    data = bytearray(ckpt.read_bytes())
    data[-1] ^= 1
    ckpt.write_bytes(bytes(data))
    result = runner.invoke(app, [*run, "-o", str(tmp_path / "b.png")])
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert "changed since its first download" in result.output and not (tmp_path / "b.png").exists()
