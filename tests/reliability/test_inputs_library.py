"""Bad-inputs catalogue through the library loaders: valid pixels right, invalid ones named."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from corpus import Case, dataset_cases, image_cases

from medviz.data import decode_image, load_folder, load_npz, load_zip
from medviz.errors import DataError

IMAGE_CASES = image_cases()
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _run_image(case: Case) -> None:
    if case.missing:
        pytest.skip(f"pydicom test file {case.name} {case.missing}")
    if case.expect == "valid":
        decoded = decode_image(case.data, name=case.name)
        assert decoded.pixels.dtype == np.uint8
        assert case.check is not None, "every valid case proves its pixels"
        case.check(np.asarray(decoded.pixels), decoded.meta)
    else:
        with pytest.raises(DataError) as info:
            decode_image(case.data, name=case.name)
        message = str(info.value)
        assert case.name in message, message
        assert case.message.lower() in message.lower(), message
        assert "Traceback" not in message and "\n" not in message.strip()


def test_corpus_is_big_enough(tmp_path):
    cases = IMAGE_CASES + dataset_cases(tmp_path)
    assert len(cases) >= 40, len(cases)
    assert len({c.name for c in cases}) == len(cases), "names are unique"
    assert {"valid", "invalid"} == {c.expect for c in cases}


@pytest.mark.parametrize("case", IMAGE_CASES, ids=[c.name for c in IMAGE_CASES])
def test_image_case_through_decode_image(case):
    _run_image(case)


def test_image_case_from_a_path(corpus_files, image_corpus):
    """A path (not bytes) gives the same outcome and the message names the path."""
    for case in image_corpus:
        path = corpus_files[case.name]
        if case.expect == "valid":
            assert decode_image(path).pixels.shape == decode_image(case.data, name="x").pixels.shape
        else:
            with pytest.raises(DataError, match=case.name):
                decode_image(path)


def _load(case: Case):
    if case.kind == "zip":
        return load_zip(case.data, image_size=16, name=Path(case.name).stem, origin=case.name)
    if case.kind == "npz":
        return load_npz(case.data, name=Path(case.name).stem, origin=case.name)
    return load_folder(case.path, image_size=16)


def test_dataset_cases_through_the_loaders(tmp_path):
    outcomes = []
    for case in dataset_cases(tmp_path):
        if case.expect == "valid":
            data = _load(case)
            assert case.check is not None
            meta = {"class_names": data.class_names, "skipped": data.extras.get("skipped", [])}
            case.check(data.images, meta)
            outcomes.append((case.name, "valid"))
        else:
            with pytest.raises(DataError) as info:
                _load(case)
            message = str(info.value)
            assert case.name in message, (case.name, message)
            assert case.message.lower() in message.lower(), (case.name, message)
            outcomes.append((case.name, "invalid"))
    assert len(outcomes) >= 18


def test_write_catalogue_summary(tmp_path):
    """Record how many inputs the catalogue tries (README figures come from this file)."""
    cases = [c for c in IMAGE_CASES if not c.missing] + dataset_cases(tmp_path)
    failures = []
    for case in cases:
        try:
            if case.kind == "image":
                _run_image(case)
            elif case.expect == "valid":
                _load(case)
            else:
                with pytest.raises(DataError):
                    _load(case)
        except (AssertionError, pytest.fail.Exception) as err:  # collected, then reported
            failures.append(f"{case.name}: {err}")
    ARTIFACTS.mkdir(exist_ok=True)
    summary = {
        "inputs_tried": len(cases),
        "valid": sum(c.expect == "valid" for c in cases),
        "invalid": sum(c.expect == "invalid" for c in cases),
        "pydicom_files": sum(1 for c in cases if c.path and "pydicom" in str(c.path)),
        "skipped_not_bundled": [c.name for c in IMAGE_CASES if c.missing],
        "failures": len(failures),
    }
    existing = ARTIFACTS / "reliability.json"
    payload = json.loads(existing.read_text()) if existing.exists() else {}
    payload["catalogue"] = summary
    existing.write_text(json.dumps(payload, indent=2) + "\n")
    assert not failures, failures
