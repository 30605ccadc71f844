"""Fixtures of the reliability suite: the bad-inputs corpus, the shipped model, a temp HOME.

The AppTest helpers of ``tests/app`` are reused (this folder has no ``__init__.py``,
so their folder is put on ``sys.path``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "app"))

from app_helpers import configure_environment

configure_environment()

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "microcalc-synthetic"


@pytest.fixture(scope="session")
def image_corpus():
    """Every image case of the catalogue that can run here."""
    from corpus import image_cases

    return [c for c in image_cases() if c.missing is None]


@pytest.fixture(scope="session")
def corpus_files(image_corpus, tmp_path_factory) -> dict[str, Path]:
    """The image cases written to disk, ``{name: path}``."""
    folder = tmp_path_factory.mktemp("corpus")
    paths = {}
    for case in image_corpus:
        path = folder / case.name
        path.write_bytes(case.data or b"")
        paths[case.name] = path
    return paths


@pytest.fixture(scope="session")
def shipped_model() -> Path:
    """The shipped default model folder (64 px grey, fast)."""
    if not (SHIPPED / "model.keras").is_file():
        pytest.skip(f"{SHIPPED} is not present")
    return SHIPPED
