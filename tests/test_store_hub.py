"""Pushing a model folder to the Hub, against a local stand-in for the Hub's HTTP API.

The stand-in (a threading ``http.server``) answers the four endpoints
``HfApi.create_repo``, ``create_branch`` and ``upload_folder`` call (repo
creation, branch, preupload, commit), records every request and stores the
committed files, so the tests check what huggingface_hub really sent.
Nothing leaves the machine.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from medviz.errors import ModelError, OfflineError
from medviz.store import (
    check_card_metadata,
    hub_token,
    load_bundle,
    parse_hub_source,
    push_to_hub,
)

TOKEN = "hf_testtoken0123456789abcd"


@dataclass
class FakeHub:
    """What the local Hub received."""

    url: str
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # method, path, auth
    repos: dict[str, dict] = field(default_factory=dict)
    files: dict[tuple[str, str], dict[str, bytes]] = field(default_factory=dict)  # (repo, rev)
    commits: list[dict] = field(default_factory=list)
    validated: list[str] = field(default_factory=list)  # READMEs sent to /api/validate-yaml


def _handler(hub: FakeHub):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest output clean
            pass

        def _reply(self, status: int, payload: dict) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            hub.requests.append(("GET", self.path, self.headers.get("authorization", "")))
            self._reply(404, {"error": "not found"})

        def do_POST(self):
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            hub.requests.append(("POST", self.path, self.headers.get("authorization", "")))
            if self.headers.get("authorization") != f"Bearer {TOKEN}":
                self._reply(401, {"error": "Invalid credentials in Authorization header"})
                return
            parts = self.path.split("?")[0].strip("/").split("/")
            if parts[:2] == ["api", "validate-yaml"]:  # the Hub checks README metadata
                hub.validated.append(json.loads(body)["content"])
                self._reply(200, {"errors": [], "warnings": []})
            elif parts[:3] == ["api", "repos", "create"]:
                request = json.loads(body)
                repo = f"{request.get('organization') or 'user'}/{request['name']}"
                repo = request.get("name") if "/" in request.get("name", "") else repo
                hub.repos[repo] = request
                self._reply(200, {"url": f"{hub.url}/{repo}", "name": repo})
            elif parts[:2] == ["api", "models"] and parts[4] == "branch":
                self._reply(200, {})
            elif parts[:2] == ["api", "models"] and parts[4] == "preupload":
                files = json.loads(body)["files"]
                self._reply(
                    200,
                    {
                        "files": [
                            {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                            for f in files
                        ]
                    },
                )
            elif parts[:2] == ["api", "models"] and parts[4] == "commit":
                repo, revision = f"{parts[2]}/{parts[3]}", "/".join(parts[5:])
                stored = hub.files.setdefault((repo, revision), {})
                header = {}
                for line in body.decode().splitlines():
                    item = json.loads(line)
                    if item["key"] == "header":
                        header = item["value"]
                    elif item["key"] == "file":
                        value = item["value"]
                        stored[value["path"]] = base64.b64decode(value["content"])
                hub.commits.append({"repo": repo, "revision": revision, **header})
                oid = f"{len(hub.commits):040x}"
                self._reply(200, {"commitUrl": f"{hub.url}/{repo}/commit/{oid}", "commitOid": oid})
            else:
                self._reply(404, {"error": f"no route {self.path}"})

    return Handler


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    """A model folder without training: a 2-class dense model and a card with metrics."""
    import keras

    from medviz.store import ModelCard, save_bundle

    inputs = keras.Input((8, 8, 1))
    outputs = keras.layers.Dense(2, activation="softmax", name="predictions")(
        keras.layers.Flatten()(inputs)
    )
    card = ModelCard(
        name="tiny",
        class_names=("normal", "lesion"),
        image_size=8,
        channels=1,
        licence="CC BY 4.0",
        training={"dataset": "synthetic-microcalc"},
        metrics={"val": {"accuracy": 0.75, "auc": 0.8}, "test": {"accuracy": 0.7, "auc": 0.79}},
    )
    folder = tmp_path_factory.mktemp("hub") / "tiny"
    return save_bundle(keras.Model(inputs, outputs), card, folder)


@pytest.fixture
def fake_hub(monkeypatch):
    """A local Hub on a free port; huggingface_hub pointed at it, online, with a token."""
    import huggingface_hub.constants as constants

    server = ThreadingHTTPServer(("127.0.0.1", 0), None)
    hub = FakeHub(url=f"http://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = _handler(hub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(constants, "ENDPOINT", hub.url)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    yield hub
    server.shutdown()
    server.server_close()


def test_push_uploads_the_model_folder_with_the_token(fake_hub, tiny_model_dir):
    result = push_to_hub(tiny_model_dir, "someone/tiny-model", private=True)
    assert result.repo_id == "someone/tiny-model" and result.revision == "main"
    assert result.files == ("README.md", "card.json", "model.keras")
    assert result.commit_url.endswith(f"/someone/tiny-model/commit/{result.commit_oid}")
    assert fake_hub.repos["someone/tiny-model"]["visibility"] == "private"
    stored = fake_hub.files[("someone/tiny-model", "main")]
    assert set(stored) == {"model.keras", "card.json", "README.md"}
    for name, data in stored.items():
        assert data == (tiny_model_dir / name).read_bytes(), f"{name} arrived altered"
    assert fake_hub.commits[0]["summary"].startswith("Upload tiny with MedViz")
    # every write carries the token (huggingface_hub also GETs an anonymous info endpoint)
    assert all(auth == f"Bearer {TOKEN}" for m, _, auth in fake_hub.requests if m == "POST")
    # the uploaded card is one the Hub renders with its metrics widget
    meta = check_card_metadata(stored["README.md"].decode())
    assert meta["library_name"] == "keras" and meta["model-index"][0]["results"]
    assert meta["datasets"] == ["synthetic-microcalc"] and meta["license"] == "cc-by-4.0"
    assert fake_hub.validated == [stored["README.md"].decode()], "the Hub's YAML check was asked"


def test_push_to_a_branch_with_a_message(fake_hub, tiny_model_dir):
    result = push_to_hub(
        tiny_model_dir, "someone/tiny-model", revision="v2", commit_message="Retrained"
    )
    assert result.revision == "v2"
    assert "visibility" not in fake_hub.repos["someone/tiny-model"], "the Hub's default applies"
    paths = [path for _, path, _ in fake_hub.requests]
    assert any(path.startswith("/api/models/someone/tiny-model/branch/v2") for path in paths)
    assert ("someone/tiny-model", "v2") in fake_hub.files
    assert fake_hub.commits[0]["summary"] == "Retrained"


def test_only_model_files_are_uploaded(fake_hub, tiny_model_dir, tmp_path):
    import shutil

    folder = tmp_path / "m"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "notes.txt").write_text("private notes")
    (folder / "checkpoint").mkdir()
    (folder / "checkpoint" / "best.weights.h5").write_bytes(b"x")
    push_to_hub(folder, "someone/m")
    assert set(fake_hub.files[("someone/m", "main")]) == {"model.keras", "card.json", "README.md"}


def test_a_refused_token_is_one_line(fake_hub, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_wrongtoken000000000000")
    with pytest.raises(ModelError) as info:
        push_to_hub(tiny_model_dir, "someone/tiny-model")
    assert "the Hub refused the push" in str(info.value) and "\n" not in str(info.value)


def test_offline_push_fails_in_one_line(tiny_model_dir, monkeypatch):
    import huggingface_hub.constants as constants

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(OfflineError, match="offline mode is on"):
        push_to_hub(tiny_model_dir, "someone/tiny-model")
    # online, but nothing listens: a refused connection is "cannot reach", not a traceback
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(OfflineError, match="cannot reach the Hugging Face Hub"):
        push_to_hub(tiny_model_dir, "someone/tiny-model")


def test_push_refuses_non_model_folders_and_bad_ids(fake_hub, tmp_path, tiny_model_dir):
    with pytest.raises(ModelError, match="not a model folder"):
        push_to_hub(tmp_path, "someone/x")
    with pytest.raises(ModelError, match="invalid Hugging Face repo id"):
        push_to_hub(tiny_model_dir, "../x")
    assert not fake_hub.requests, "nothing is sent for a refused push"


def test_token_source_is_reported_masked(monkeypatch, tmp_path):
    import huggingface_hub.constants as constants

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    found = hub_token()
    assert found.found and found.source == "HF_TOKEN environment variable"
    assert found.masked == "hf_…abcd" and TOKEN not in repr(found)
    monkeypatch.delenv("HF_TOKEN")
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(token_file))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "stored"))
    cached = hub_token()
    assert cached.found and cached.source.startswith("huggingface_hub login cache")
    token_file.unlink()
    missing = hub_token()
    assert not missing.found and "HF_TOKEN" in missing.source and missing.masked == ""


def test_card_metadata_checks_fail_on_incomplete_cards():
    with pytest.raises(ModelError, match="no YAML front matter"):
        check_card_metadata("# just a title")
    with pytest.raises(ModelError, match="license 'other' without license_name"):
        check_card_metadata(
            "---\nlibrary_name: keras\nlicense: other\npipeline_tag: image-classification\n---\n"
        )
    with pytest.raises(ModelError, match="no license"):
        check_card_metadata("---\nlibrary_name: keras\npipeline_tag: image-classification\n---\n")


def test_shipped_model_cards_pass_the_hub_checks():
    root = Path(__file__).resolve().parents[1] / "models"
    # Model bundles (card.json beside the README); the backbone folder holds weights only.
    readmes = sorted(card.parent / "README.md" for card in root.glob("*/card.json"))
    assert readmes
    for readme in readmes:
        meta = check_card_metadata(readme.read_text(encoding="utf-8"))
        assert meta["datasets"], readme
        results = meta["model-index"][0]["results"]
        assert {m["type"] for r in results for m in r["metrics"]} == {"accuracy", "roc_auc"}


def test_hub_source_with_revision(tiny_model_dir, tmp_path, monkeypatch):
    import shutil

    import huggingface_hub.constants as constants

    assert parse_hub_source("hf://user/repo") == ("user/repo", None)
    assert parse_hub_source("hf://user/repo@v1.0") == ("user/repo", "v1.0")
    with pytest.raises(ModelError, match="invalid Hub revision"):
        parse_hub_source("hf://user/repo@../x")
    cache = tmp_path / "hub"
    commit = "b" * 40
    snapshot = cache / "models--medviz--tiny" / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for name in ("model.keras", "card.json", "README.md"):
        shutil.copy(tiny_model_dir / name, snapshot / name)
    (cache / "models--medviz--tiny" / "refs").mkdir()
    (cache / "models--medviz--tiny" / "refs" / "v1").write_text(commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert load_bundle("hf://medviz/tiny@v1").card.name == "tiny"
    assert load_bundle("hf://medviz/tiny", revision="v1").card.name == "tiny"
    with pytest.raises(OfflineError, match="at revision 'main'"):
        load_bundle("hf://medviz/tiny@main")


def test_cli_push_json_and_offline_exit_code(fake_hub, tiny_model_dir, monkeypatch, capsys):
    import huggingface_hub.constants as constants

    from medviz.cli import main

    argv = ["push", "--model", str(tiny_model_dir), "--repo", "someone/cli-model"]
    assert main([*argv, "--revision", "dev", "--commit-message", "From the CLI", "--json"]) == 0
    captured = capsys.readouterr()
    payload = json.loads(captured.out)
    assert payload["repo_id"] == "someone/cli-model" and payload["revision"] == "dev"
    assert payload["files"] == ["README.md", "card.json", "model.keras"]
    assert fake_hub.commits[-1]["summary"] == "From the CLI"
    assert "hf_…abcd from HF_TOKEN environment variable" in captured.err
    assert TOKEN not in captured.err + captured.out
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: cannot push to the Hugging Face Hub: offline mode is on")
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tiny_model_dir / "no-token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tiny_model_dir / "no-tokens"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    assert main(argv) == 2
    assert "no token: set HF_TOKEN or run `hf auth login`" in capsys.readouterr().err
