"""Untrusted models, Hub ids, typed server paths and demo mode.

Uploaded and Hub models load with Keras ``safe_mode=True``; Lambda layers and
unregistered classes are refused with a clear message; a model that cannot fit
the data is refused before it runs; Hub ids are validated and nothing from a
repo is executed; typed paths stay inside the data roots; demo mode shows no
server path.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from app_helpers import app_state, assert_clean, goto, make_app, texts
from corpus import encode

from medviz.data.paths import allowed_roots, confine_path
from medviz.errors import DataError, MedvizError, ModelError, OfflineError
from medviz.store import load_bundle, validate_repo_id
from medviz.ui.pages import KEYS

ROOT = Path(__file__).resolve().parents[2]
MARKER_ENV = "MEDVIZ_TEST_PWNED_MARKER"


# --- model files ---------------------------------------------------------------------------------


def _tiny(layer_factory=None, shape=(8, 8, 1), units: int = 2):
    import keras

    inputs = keras.Input(shape)
    x = inputs if layer_factory is None else layer_factory()(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x) if None in shape else keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(units, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="module")
def hostile_models(tmp_path_factory) -> dict[str, Path]:
    """``.keras`` files that must be refused (or refused to run), by name."""
    import keras

    folder = tmp_path_factory.mktemp("hostile")
    marker = folder / "pwned"
    os.environ[MARKER_ENV] = str(marker)

    def lambda_layer():
        return keras.layers.Lambda(lambda t: t * 2.0)

    _tiny(lambda_layer).save(folder / "lambda.keras")

    @keras.saving.register_keras_serializable(package="attacker")
    class Sneaky(keras.layers.Layer):
        def call(self, inputs):
            return inputs

    _tiny(Sneaky).save(folder / "custom-class.keras")
    keras.saving.get_custom_objects().pop("attacker>Sneaky", None)  # a server never has it
    _tiny(shape=(None, None, 1)).save(folder / "any-size.keras")
    _tiny(shape=(8, 8, 5)).save(folder / "five-channels.keras")
    _tiny().save(folder / "h5-renamed.h5")
    saved = folder / "saved_model_dir"
    saved.mkdir()
    (saved / "saved_model.pb").write_bytes(b"\x08\x01")
    return {p.name: p for p in folder.iterdir()} | {"marker": marker}


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("lambda.keras", "Lambda layer"),
        ("custom-class.keras", "custom layer"),
        ("any-size.keras", "fixed size"),
        ("five-channels.keras", "1 or 3 channels"),
        ("h5-renamed.h5", "convert"),
        ("saved_model_dir", "Convert it"),
    ],
)
def test_hostile_model_files_are_refused(hostile_models, name, fragment):
    with pytest.raises(ModelError) as info:
        load_bundle(hostile_models[name])
    message = str(info.value)
    assert fragment.lower() in message.lower(), message
    assert Path(name).name.split(".")[0] in message or name in message, message
    assert not hostile_models["marker"].exists()


def test_safe_mode_is_what_refuses_lambda(hostile_models):
    """The refusal comes from Keras safe mode, not from a name check we could forget."""
    import keras

    with pytest.raises(ValueError, match=r"(?i)safe"):
        keras.saving.load_model(hostile_models["lambda.keras"], safe_mode=True)


def test_model_that_cannot_fit_the_data_is_refused_before_running(tiny_model_dir, tmp_path):
    import zipfile

    from PIL import Image

    from medviz.cli import load_for_model

    archive = tmp_path / "pets.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for label in ("cat", "dog", "bird"):
            for i in range(4):
                pixels = np.full((10, 10), 40 * i + 1, np.uint8)
                out.writestr(f"{label}/{i}.png", encode(Image.fromarray(pixels), "PNG"))
    card = load_bundle(tiny_model_dir).card
    with pytest.raises(MedvizError) as info:
        load_for_model(str(archive), card)
    message = str(info.value)
    assert "normal" in message and "cat" in message, message


def _models_page_with_the_default_active():
    app = make_app()
    goto(app, "classify")
    app.button(key="use_default").click()
    app.run()
    assert_clean(app)
    goto(app, "models")
    return app


@pytest.fixture
def model_app():
    return _models_page_with_the_default_active()


@pytest.fixture(scope="module")
def refusing_app():
    """One session for the refused uploads: each test asserts it is left as it was found."""
    return _models_page_with_the_default_active()


@pytest.mark.parametrize(
    ("name", "fragment"),
    [("lambda.keras", "arbitrary code"), ("custom-class.keras", "custom layer")],
)
def test_models_page_refuses_unsafe_upload_and_keeps_the_active_model(
    refusing_app, hostile_models, name, fragment
):
    app = refusing_app
    app.file_uploader(key="models_upload").set_value(
        (name, hostile_models[name].read_bytes(), "application/octet-stream")
    )
    app.run()
    app.button(key="models_upload_load").click()
    app.run()
    assert not app.exception
    assert len(app.error) == 1 and fragment in app.error[0].value, app.error[0].value
    assert "Traceback" not in texts(app)
    assert app_state(app).active_model == "shipped:microcalc-synthetic"
    assert list(app_state(app).models) == ["shipped:microcalc-synthetic"]
    assert not hostile_models["marker"].exists()


def test_model_uploads_leave_no_temporary_files(model_app, monkeypatch, tmp_path):
    import tempfile

    from medviz.ui import settings

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    model_file = settings.models_dir() / settings.DEFAULT_MODEL / "model.keras"
    app = model_app
    app.file_uploader(key="models_upload").set_value(
        ("mine.keras", model_file.read_bytes(), "application/octet-stream")
    )
    app.run()
    app.button(key="models_upload_load").click()
    app.run()
    assert_clean(app, errors_allowed=True)
    assert app_state(app).models[app_state(app).active_model].origin == "uploaded"
    assert list(tmp_path.iterdir()) == [], "the private upload folder was removed"


# --- Hugging Face Hub ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "repo",
    [
        "../etc",
        "user/../../etc",
        "user/..",
        "..",
        "https://huggingface.co/user/repo",
        "hf://user/repo",
        "user/repo?revision=main",
        "user/repo#x",
        "user/repo\n",
        " user/repo",
        "user/re po",
        "user/repo/extra",
        "-user/repo",
        "user/.hidden",
        "C:\\models\\x",
        "~/models",
        "",
        "user/" + "x" * 200,
    ],
)
def test_hub_repo_ids_are_validated(repo):
    with pytest.raises(ModelError, match="invalid Hugging Face repo id"):
        validate_repo_id(repo)
    with pytest.raises(ModelError):
        load_bundle(f"hf://{repo}")


@pytest.mark.parametrize("repo", ["medviz/pneumonia-xray", "User_1/model.v2", "a/b"])
def test_valid_repo_ids_pass(repo):
    assert validate_repo_id(repo) == repo


def test_hub_fetches_no_code_and_runs_nothing(tiny_model_dir, tmp_path, monkeypatch):
    """The snapshot asks for model + card files only; code in the repo is never imported."""
    import shutil

    import huggingface_hub

    snapshot = tmp_path / "snapshot"
    shutil.copytree(tiny_model_dir, snapshot)
    marker = tmp_path / "pwned"
    for evil in ("modeling.py", "__init__.py", "custom_layers.py"):
        (snapshot / evil).write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    asked: dict = {}

    def fake_snapshot(repo_id, **kwargs):
        asked.update(kwargs, repo_id=repo_id)
        return str(snapshot)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    bundle = load_bundle("hf://someone/tiny", safe_mode=True)
    assert bundle.card.name == "tiny"
    patterns = asked["allow_patterns"]
    assert all(not p.endswith(".py") and p not in ("*", "**") for p in patterns), patterns
    assert not marker.exists(), "code from the repo ran"


def test_hub_offline_is_a_clear_message(monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(OfflineError) as info:
        load_bundle("hf://medviz/not-cached")
    message = str(info.value)
    assert "offline" in message and "medviz/not-cached" in message


# --- typed server paths --------------------------------------------------------------------------


@pytest.fixture
def data_roots(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "data"
    for label in ("normal", "microcalcification"):
        for i in range(5):
            path = root / "set" / label / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(encode(_image(i + 10 * len(label)), "PNG"))
    outside = tmp_path / "private"
    (outside / "a").mkdir(parents=True)
    (outside / "b").mkdir()
    (root / "escape").symlink_to(outside, target_is_directory=True)
    (root / "inside-link").symlink_to(root / "set", target_is_directory=True)
    monkeypatch.setenv("MEDVIZ_DATA_ROOTS", str(root))
    return root


def _image(value: int):
    from PIL import Image

    pixels = np.full((12, 12), value, np.uint8)
    pixels[0, 0] = 255 - value
    return Image.fromarray(pixels)


@pytest.mark.parametrize(
    ("typed", "fragment"),
    [
        ("../private", "'..'"),
        ("set/../../private", "'..'"),
        ("{root}/../private", "'..'"),
        ("/etc", "outside the allowed data folders"),
        ("/", "outside the allowed data folders"),
        ("escape", "outside the allowed data folders"),
        ("{root}/escape/a", "outside the allowed data folders"),
        ("~", "outside the allowed data folders"),
        ("", "not a usable path"),
        ("set\x00", "not a usable path"),
    ],
)
def test_typed_paths_cannot_escape_the_data_roots(data_roots, typed, fragment):
    text = typed.replace("{root}", str(data_roots))
    with pytest.raises(DataError) as info:
        confine_path(text)
    assert fragment in str(info.value)
    assert str(data_roots.parent / "private") not in str(info.value), "no resolved server path"


def test_typed_paths_inside_the_roots_resolve(data_roots):
    assert allowed_roots() == (data_roots.resolve(),)
    assert confine_path("set") == (data_roots / "set").resolve()
    assert confine_path(str(data_roots / "set" / "normal")) == (data_roots / "set/normal").resolve()
    assert confine_path("inside-link") == (data_roots / "set").resolve(), "links inside are fine"


def test_data_page_folder_path_is_confined(data_roots):
    app = make_app()
    goto(app, "data")
    app.segmented_control(key="data_source").set_value("folder")
    app.run()
    for typed, fragment in (
        ("../private", "'..'"),
        ("/etc", "outside the allowed data folders"),
        ("escape", "outside the allowed data folders"),
    ):
        app.text_input(key="data_path").set_value(typed)
        app.button(key="data_load").click()
        app.run()
        assert not app.exception
        assert len(app.error) == 1 and fragment in app.error[0].value, app.error[0].value
        assert app_state(app).dataset is None
    app.text_input(key="data_path").set_value("set")
    app.button(key="data_load").click()
    app.run()
    assert_clean(app)
    assert app_state(app).dataset is not None and app_state(app).dataset.label == "set"


# --- demo mode -----------------------------------------------------------------------------------


def test_demo_mode_error_messages_hide_server_paths(monkeypatch):
    from medviz.ui.components import error_message

    message = f"{ROOT}/models/x/model.keras: could not load; see /srv/data/brain-mri/Training"
    monkeypatch.delenv("MEDVIZ_DEMO", raising=False)
    assert str(ROOT) in error_message(ModelError(message)), "outside demo mode paths help"
    monkeypatch.setenv("MEDVIZ_DEMO", "1")
    shown = error_message(ModelError(message))
    assert str(ROOT) not in shown and "/srv/data" not in shown
    assert shown.startswith("model.keras: could not load") and "Training" in shown


def test_demo_mode_pages_show_no_server_path(monkeypatch):
    from medviz.data.registry import data_root

    monkeypatch.setenv("MEDVIZ_DEMO", "1")
    app = make_app()
    secrets = [str(ROOT), str(data_root()), str(Path.home()), str(ROOT.parent)]
    for page in KEYS:
        goto(app, page)
        assert not app.exception, page
        shown = texts(app)
        leaked = [s for s in secrets if s in shown]
        assert not leaked, (page, leaked)
