"""fetch() and download_model() against a local HTTP server on 127.0.0.1 (never the internet)."""

from __future__ import annotations

import hashlib
import random
import socket
import subprocess
import sys
from http.server import BaseHTTPRequestHandler

import pytest
from conftest import local_server

from clipgan.download import download_model, fetch, part_path
from clipgan.errors import ClipganError
from clipgan.models import registry

PAYLOAD = random.Random(1234).randbytes(300_000)  # several read chunks' worth, replayable
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


class Handler(BaseHTTPRequestHandler):
    """Routes: /ok (honours Range), /drop (cuts off halfway unless resuming),
    /norange (always the whole file with 200), anything else 404."""

    def do_GET(self):
        self.server.seen.append((self.path, self.headers.get("Range")))
        route = self.path.split("?")[0]
        if route in ("/ok", "/ok.yaml", "/ok.ckpt"):
            self._send(honour_range=True)
        elif route == "/drop":
            if self.headers.get("Range"):
                self._send(honour_range=True)
            else:
                self._send_half()
        elif route == "/norange":
            self._send(honour_range=False)
        else:
            self.send_error(404)

    def _send(self, honour_range: bool):
        start = _range_start(self.headers.get("Range")) if honour_range else None
        if start is None:
            self._reply(200, PAYLOAD)
        elif start >= len(PAYLOAD):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(PAYLOAD)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            end = len(PAYLOAD) - 1
            self._reply(206, PAYLOAD[start:], {"Content-Range": f"bytes {start}-{end}/{len(PAYLOAD)}"})

    def _send_half(self):
        # Announce the full length, send half, hang up: a dropped connection.
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        self.wfile.write(PAYLOAD[: len(PAYLOAD) // 2])
        self.wfile.flush()
        self.close_connection = True

    def _reply(self, code: int, body: bytes, headers: dict | None = None):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # keep pytest output clean
        pass


def _range_start(value: str | None) -> int | None:
    if not value or not value.startswith("bytes="):
        return None
    return int(value[len("bytes="):].split("-")[0])


@pytest.fixture()
def server():
    with local_server(Handler, seen=[]) as httpd:
        yield httpd


def _fetch(url, dest, **kw):
    return fetch(url, dest, progress=False, timeout=5, **kw)


def test_feature_good_file_with_checksum(server, tmp_path):
    dest = tmp_path / "sub" / "model.ckpt"
    assert _fetch(f"{server.url}/ok", dest, sha256=PAYLOAD_SHA) == dest
    assert dest.read_bytes() == PAYLOAD
    assert not part_path(dest).exists()


def test_smoke_progress_bar(server, tmp_path):
    dest = tmp_path / "model.ckpt"
    fetch(f"{server.url}/ok", dest, progress=True, timeout=5)
    assert dest.read_bytes() == PAYLOAD


def test_exception_wrong_checksum_leaves_nothing(server, tmp_path):
    dest = tmp_path / "model.ckpt"
    with pytest.raises(ClipganError) as err:
        _fetch(f"{server.url}/ok", dest, sha256="0" * 64)
    message = str(err.value)
    assert "0" * 64 in message and PAYLOAD_SHA in message
    assert not dest.exists() and not part_path(dest).exists()


def test_feature_dropped_connection_then_resume(server, tmp_path):
    dest = tmp_path / "model.ckpt"
    with pytest.raises(ClipganError, match="interrupted.*rerun"):
        _fetch(f"{server.url}/drop", dest, sha256=PAYLOAD_SHA)
    assert not dest.exists()
    part = part_path(dest)
    assert part.read_bytes() == PAYLOAD[: len(PAYLOAD) // 2]

    _fetch(f"{server.url}/drop", dest, sha256=PAYLOAD_SHA)
    assert server.seen[-1] == ("/drop", f"bytes={len(PAYLOAD) // 2}-")
    assert dest.read_bytes() == PAYLOAD
    assert not part.exists()


def test_feature_server_ignoring_range_restarts(server, tmp_path):
    dest = tmp_path / "model.ckpt"
    part_path(dest).write_bytes(b"garbage that must not survive")
    _fetch(f"{server.url}/norange", dest, sha256=PAYLOAD_SHA)
    assert server.seen[-1][1] is not None  # we did ask to resume
    assert dest.read_bytes() == PAYLOAD


def test_feature_complete_part_answered_416(server, tmp_path):
    # Killed between the last byte and the rename: the .part is whole, nothing to fetch.
    dest = tmp_path / "model.ckpt"
    part_path(dest).write_bytes(PAYLOAD)
    _fetch(f"{server.url}/ok", dest, sha256=PAYLOAD_SHA)
    assert dest.read_bytes() == PAYLOAD and not part_path(dest).exists()


def test_exception_http_404(server, tmp_path):
    dest = tmp_path / "model.ckpt"
    with pytest.raises(ClipganError, match="404") as err:
        _fetch(f"{server.url}/missing", dest)
    assert "\n" not in str(err.value)
    assert not dest.exists() and not part_path(dest).exists()


def test_exception_connection_refused(tmp_path):
    with socket.socket() as sock:  # a port that was free a moment ago: nobody listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ClipganError, match="cannot reach 127.0.0.1"):
        _fetch(f"http://127.0.0.1:{port}/x", tmp_path / "model.ckpt")


def test_feature_existing_dest_not_overwritten(server, tmp_path):
    dest = tmp_path / "model.ckpt"
    dest.write_bytes(b"mine")
    assert _fetch(f"{server.url}/ok", dest) == dest
    assert dest.read_bytes() == b"mine"
    with pytest.raises(ClipganError, match="does not match"):
        _fetch(f"{server.url}/ok", dest, sha256=PAYLOAD_SHA)
    assert dest.read_bytes() == b"mine"
    assert server.seen == []  # never even asked the server


def test_feature_existing_dest_matching_checksum(server, tmp_path):
    dest = tmp_path / "model.ckpt"
    dest.write_bytes(PAYLOAD)
    assert _fetch(f"{server.url}/ok", dest, sha256=PAYLOAD_SHA.upper()) == dest
    assert server.seen == []


def test_feature_download_model(server, tmp_path, monkeypatch):
    entry = registry.VQGANEntry(
        name="testnet",
        description="test only",
        config_url=f"{server.url}/ok.yaml",
        checkpoint_url=f"{server.url}/ok.ckpt",
        checkpoint_sha256=PAYLOAD_SHA,
    )
    monkeypatch.setitem(registry.VQGAN_MODELS, "testnet", entry)
    paths = download_model("testnet", root=tmp_path, progress=False)
    assert paths == [tmp_path / "testnet.yaml", tmp_path / "testnet.ckpt"]
    assert all(p.read_bytes() == PAYLOAD for p in paths)
    assert registry.resolve_vqgan("testnet", tmp_path) == tuple(paths)
    # A second call finds both files and downloads nothing.
    seen = len(server.seen)
    download_model("testnet", root=tmp_path, progress=False)
    assert len(server.seen) == seen


def test_exception_download_unknown_model(tmp_path):
    with pytest.raises(ClipganError, match="unknown VQGAN model"):
        download_model("no-such-model", root=tmp_path, progress=False)


def test_smoke_no_torch_at_import():
    code = (
        "import sys, clipgan.download, clipgan.models.registry; "
        "sys.exit('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_exception_dest_is_directory(tmp_path):
    with pytest.raises(ClipganError, match="directory"):
        _fetch("http://127.0.0.1:1/x", tmp_path)


def test_feature_download_bundled_model_fetches_nothing(monkeypatch, tmp_path):
    monkeypatch.setattr(registry, "bundled_dir", lambda: tmp_path)
    (tmp_path / "toy-vqgan.yaml").write_text("model: {}")
    (tmp_path / "toy-vqgan.ckpt").write_bytes(b"weights")
    paths = download_model("toy", root=tmp_path / "elsewhere", progress=False)
    assert paths == [tmp_path / "toy-vqgan.yaml", tmp_path / "toy-vqgan.ckpt"]
    assert not (tmp_path / "elsewhere").exists()
