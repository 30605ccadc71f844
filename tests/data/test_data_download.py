"""MedMNIST download and cache, against a loopback HTTP server (never the internet)."""

from __future__ import annotations

import hashlib
import io
import socket
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import numpy as np
import pytest

from medviz.data import load_dataset
from medviz.data.download import MEDMNIST, cache_dir, download_medmnist
from medviz.errors import DataError, OfflineError


@pytest.fixture
def server(monkeypatch):
    """A loopback server: ``server.routes[path] = (status, body)``; ``server.hits`` lists paths."""
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    routes: dict[str, tuple[int, bytes]] = {}
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            status, body = routes.get(self.path, (404, b"not found"))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield SimpleNamespace(url=f"http://127.0.0.1:{httpd.server_port}", routes=routes, hits=hits)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _tiny_npz() -> bytes:
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    np.savez(
        buffer,
        train_images=rng.integers(0, 256, (12, 28, 28), dtype=np.uint8),
        train_labels=(np.arange(12) % 2).reshape(12, 1),
        test_images=rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
        test_labels=(np.arange(4) % 2).reshape(4, 1),
    )
    return buffer.getvalue()


@pytest.fixture
def tiny_breast(monkeypatch):
    """BreastMNIST's entry, pointed at a tiny generated file's MD5."""
    body = _tiny_npz()
    source = replace(MEDMNIST["breastmnist"], md5=hashlib.md5(body).hexdigest())
    monkeypatch.setitem(MEDMNIST, "breastmnist", source)
    return body


def test_download_verifies_caches_and_reports_progress(server, tmp_path, tiny_breast):
    server.routes["/breast.npz"] = (200, tiny_breast)
    calls = []
    path = download_medmnist(
        "breastmnist",
        cache_dir=tmp_path,
        url=server.url + "/breast.npz",
        progress=lambda done, total: calls.append((done, total)),
    )
    assert path == tmp_path / "breastmnist.npz"
    assert path.read_bytes() == tiny_breast
    assert calls[-1] == (len(tiny_breast), len(tiny_breast))
    assert list(tmp_path.glob(".*.part")) == []
    # Cached: a second call does not touch the network.
    assert download_medmnist("breastmnist", cache_dir=tmp_path, url=server.url + "/x") == path
    assert server.hits == ["/breast.npz"]


def test_wrong_md5_is_discarded(server, tmp_path):
    server.routes["/bad.npz"] = (200, b"not the real file")
    with pytest.raises(DataError, match=r"has MD5 [0-9a-f]{32}, expected 750601b1"):
        download_medmnist("breastmnist", cache_dir=tmp_path, url=server.url + "/bad.npz")
    assert list(tmp_path.iterdir()) == []


def test_http_error_is_offline_error(server, tmp_path):
    with pytest.raises(OfflineError, match=r"could not download breastmnist .*404"):
        download_medmnist("breastmnist", cache_dir=tmp_path, url=server.url + "/missing")
    assert list(tmp_path.iterdir()) == []


def test_unreachable_server_is_offline_error(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(OfflineError) as info:
        download_medmnist(
            "breastmnist", cache_dir=tmp_path, url=f"http://127.0.0.1:{port}/x", timeout=2
        )
    message = str(info.value)
    assert "(offline?)" in message and "MEDVIZ_CACHE" in message
    assert str(tmp_path / "breastmnist.npz") in message
    assert list(tmp_path.iterdir()) == []


def test_unknown_name():
    with pytest.raises(DataError, match=r"unknown MedMNIST dataset 'nomnist'; known: \["):
        download_medmnist("nomnist")


def test_cache_dir_location(monkeypatch, tmp_path):
    monkeypatch.setenv("MEDVIZ_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("MEDVIZ_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir() == tmp_path / ".cache" / "medviz"


def test_registry_of_sources():
    for name in ("pneumoniamnist", "breastmnist", "organamnist", "bloodmnist", "dermamnist"):
        source = MEDMNIST[name]
        assert source.name == name
        assert source.url.startswith("https://zenodo.org/") and name in source.url
        assert len(source.md5) == 32 and int(source.md5, 16) >= 0
        assert source.channels in (1, 3) and len(source.class_names) >= 2
    assert MEDMNIST["pneumoniamnist"].md5 == "28209eda62fecd6e6a2d98b1501bb15f"
    assert "chestmnist" not in MEDMNIST  # multi-label, not loadable


def test_load_dataset_through_the_cache(monkeypatch, tmp_path, tiny_breast):
    (tmp_path / "breastmnist.npz").write_bytes(tiny_breast)
    monkeypatch.setenv("MEDVIZ_CACHE", str(tmp_path))
    ds = load_dataset("medmnist:breastmnist", image_size=32)
    assert ds.name == "medmnist:breastmnist"
    assert ds.class_names == ("malignant", "normal, benign")
    assert ds.images.shape == (16, 32, 32, 1)
    assert ds.extras["split_source"] == {
        "train": "given",
        "val": "carved from train",
        "test": "given",
    }
