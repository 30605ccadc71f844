"""MedViz installs as a package: the wheel, the ``medviz`` command, quiet start-up, and
shipped models found without a source checkout (:mod:`medviz.locations`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import medviz
from medviz import locations

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "models" / "microcalc-synthetic"
SOURCE_FILES = ("pyproject.toml", "README.md", "LICENSE", "NOTICE")
# Nothing is downloaded: no dependencies, no build environment, no index.
PIP_OFFLINE = ("--no-deps", "--no-build-isolation", "--no-index", "-q")
NEEDED_SETUPTOOLS = 77  # PEP 639 `license = "Apache-2.0"` and `license-files`


def _setuptools_major() -> int:
    try:
        return int(metadata.version("setuptools").split(".")[0])
    except metadata.PackageNotFoundError:
        return 0


needs_setuptools = pytest.mark.skipif(
    _setuptools_major() < NEEDED_SETUPTOOLS,
    reason=f"building the wheel needs setuptools>={NEEDED_SETUPTOOLS} in this environment "
    "(requirements-dev.txt pins it; `make test` installs it)",
)


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment without MedViz's and TensorFlow's switches (and the checkout's path)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MEDVIZ_", "TF_")) and k != "PYTHONPATH"
    }
    env.update(extra)
    return env


def _medviz(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "medviz", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def patch_png(tmp_path_factory) -> Path:
    """One 64×64 grey patch of the embedded synthetic data, as a PNG."""
    from medviz.data.synthetic import generate_microcalc

    image = generate_microcalc(4, seed=1).images[0, ..., 0]
    path = tmp_path_factory.mktemp("png") / "patch.png"
    Image.fromarray(np.asarray(image, np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of the sources (so no ``build/`` lands in the checkout)."""
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    src.mkdir()
    for name in SOURCE_FILES:
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "medviz", src / "medviz", ignore=shutil.ignore_patterns("__pycache__"))
    out = work / "dist"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", ".", "-w", str(out), *PIP_OFFLINE],
        cwd=src,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (found,) = out.glob("medviz-*.whl")
    return found


# --- the wheel ---------------------------------------------------------------------------------


@needs_setuptools
def test_wheel_holds_only_medviz_with_its_assets_licence_and_command(wheel):
    assert wheel.name == f"medviz-{medviz.__version__}-py3-none-any.whl", "version single-sourced"
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        info = f"medviz-{medviz.__version__}.dist-info"
        entry_points = zf.read(f"{info}/entry_points.txt").decode()
        meta = zf.read(f"{info}/METADATA").decode()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"medviz", info}, f"only the medviz package ships, got {sorted(tops)}"
    for asset in ("style.css", "logo.svg", "icon.svg"):
        assert f"medviz/ui/assets/{asset}" in names
    assert "medviz/__main__.py" in names and "medviz/explain/__init__.py" in names
    assert not [n for n in names if "/tests/" in n or n.endswith(".pyc")]
    assert f"{info}/licenses/LICENSE" in names and f"{info}/licenses/NOTICE" in names
    assert "[console_scripts]" in entry_points
    assert "medviz = medviz.cli:main" in entry_points
    assert "License-Expression: Apache-2.0" in meta
    requires = [line for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    runtime = [line for line in requires if "extra ==" not in line]
    assert any("tensorflow" in line for line in runtime)
    assert not [
        line for line in runtime if any(t in line for t in ("pytest", "ruff", "playwright"))
    ]
    for extra in ("dev", "e2e", "bench"):
        assert f"Provides-Extra: {extra}" in meta


def test_pinned_runtime_matches_the_declared_dependencies():
    """requirements.txt pins exactly the runtime packages pyproject.toml declares."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {d.split("~=")[0].split("==")[0].split(">=")[0] for d in project["dependencies"]}
    pinned = {
        line.split("==")[0]
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert pinned == declared
    dev = (ROOT / "requirements-dev.txt").read_text().splitlines()
    assert "-r requirements.txt" in dev
    assert project["scripts"] == {"medviz": "medviz.cli:main"}


# --- the command -------------------------------------------------------------------------------


def test_version_prints_the_package_version(tmp_path):
    done = _medviz("--version", cwd=tmp_path, env=_clean_env(PYTHONPATH=str(ROOT)))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"medviz {medviz.__version__}"


@pytest.mark.parametrize(
    "argv",
    [
        ["--verbose", "datasets"],
        ["datasets", "--verbose"],
        ["explain", "--verbose", "--model", "m", "--out", "o.png", "x.png"],
    ],
)
def test_verbose_is_accepted_before_and_after_every_command(argv):
    from medviz.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(argv).verbose is True
    assert parser.parse_args([a for a in argv if a != "--verbose"]).verbose is False


def test_predict_prints_no_tensorflow_noise_and_datasets_does_not_import_it(tmp_path, patch_png):
    env = _clean_env(PYTHONPATH=str(ROOT))
    done = _medviz("predict", "--model", str(SHIPPED), str(patch_png), cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{patch_png}: ")
    assert done.stderr == "", "TensorFlow's start-up lines (CUDA, absl, oneDNN) stay hidden"

    # Commands that need no TensorFlow do not pay for importing it.
    code = (
        "import sys, contextlib, io\n"
        "from medviz.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['datasets', '--json'])\n"
        "print('tensorflow' in sys.modules)\n"
    )
    probe = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert probe.stdout.strip() == "False", probe.stderr


def test_a_failed_tensorflow_import_still_says_why(tmp_path):
    """The silenced import re-prints what it captured when it fails."""
    fake = tmp_path / "fake" / "tensorflow"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        "import os\nos.write(2, b'native loader says: libfoo.so missing\\n')\n"
        "raise ImportError('broken tensorflow')\n"
    )
    code = (
        "from medviz.quiet import silence_tensorflow_startup\n"
        "silence_tensorflow_startup()\n"
        "import tensorflow\n"
    )
    env = _clean_env(PYTHONPATH=os.pathsep.join([str(tmp_path / "fake"), str(ROOT)]))
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode != 0
    assert "native loader says: libfoo.so missing" in done.stderr
    assert "ImportError: broken tensorflow" in done.stderr


# --- locations ---------------------------------------------------------------------------------


@pytest.fixture
def no_location_env(monkeypatch):
    for name in ("MEDVIZ_HOME", "MEDVIZ_MODELS_DIR", "MEDVIZ_DATA_ROOT"):
        monkeypatch.delenv(name, raising=False)


def test_home_is_the_checkout_when_nothing_else_says(no_location_env, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert locations.source_checkout() == ROOT
    assert locations.home() == ROOT
    assert locations.models_dir() == ROOT / "models"
    assert locations.data_root() == ROOT.parent / "shared" / "datasets"


def test_a_working_directory_with_models_comes_before_the_checkout(
    no_location_env, monkeypatch, tmp_path
):
    (tmp_path / "models").mkdir()
    monkeypatch.chdir(tmp_path)
    assert locations.home() == tmp_path
    assert locations.models_dir() == tmp_path / "models"
    assert locations.data_root() == tmp_path.parent / "shared" / "datasets"


def test_environment_variables_win(no_location_env, monkeypatch, tmp_path):
    (tmp_path / "models").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MEDVIZ_HOME", str(tmp_path / "home"))
    assert locations.home() == tmp_path / "home"
    assert locations.models_dir() == tmp_path / "home" / "models"
    monkeypatch.setenv("MEDVIZ_MODELS_DIR", str(tmp_path / "m"))
    monkeypatch.setenv("MEDVIZ_DATA_ROOT", str(tmp_path / "d"))
    assert locations.models_dir() == tmp_path / "m"
    assert locations.data_root() == tmp_path / "d"

    from medviz.data.registry import data_root
    from medviz.ui import settings

    assert settings.models_dir() == tmp_path / "m", "the app reads the same place"
    assert data_root() == tmp_path / "d"


# --- installed, outside the checkout -----------------------------------------------------------


@pytest.mark.slow
@needs_setuptools
def test_installed_wheel_predicts_from_another_directory(wheel, patch_png, tmp_path):
    """``pip install --target`` the wheel, then run it with the checkout nowhere on the path."""
    target = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", str(wheel), "--target", str(target), *PIP_OFFLINE],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (target / "medviz" / "ui" / "assets" / "style.css").is_file()
    assert (target / "bin" / "medviz").is_file(), "the console script is installed"

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # TensorFlow & co. from this interpreter's paths; `-S` below skips site-packages' .pth files,
    # so an editable install of the checkout is not found either.
    libraries = [p for p in sys.path if p and not (Path(p) / "medviz" / "__init__.py").exists()]
    env = _clean_env(PYTHONPATH=os.pathsep.join([str(target), *libraries]))
    where = subprocess.run(
        [sys.executable, "-S", "-c", "import medviz, medviz.locations as l; "
         "print(medviz.__file__); print(l.source_checkout()); print(l.models_dir())"],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert where.returncode == 0, where.stderr
    module_file, checkout, models = where.stdout.splitlines()
    assert Path(module_file).is_relative_to(target), "the installed copy, not the checkout"
    assert checkout == "None"
    assert Path(models) == elsewhere / "models", "no models here: nothing found, nothing crashes"

    model = str(SHIPPED.resolve())
    done = subprocess.run(
        [
            sys.executable,
            "-S",
            "-m",
            "medviz",
            "predict",
            "--json",
            "--model",
            model,
            str(patch_png),
        ],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    result = json.loads(done.stdout)
    assert result["file"].endswith("patch.png")
    assert result["prediction"] in ("normal", "microcalcification")
    assert set(result["probabilities"]) == {"normal", "microcalcification"}
