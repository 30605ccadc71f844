"""Privacy: DICOM patient identifiers never reach a screen, a log, a file, a card or a CSV.

A DICOM carrying unique identifier strings goes through the Classify page (one
file, and several with the CSV export), the Explain and Data pages, and the
command line (predict, explain, train on a folder of such files). Every page
text, every media file the app serves (CSV, images), every log record, stdout,
stderr, and every file written under a temporary HOME, working folder, temp
folder and run store is searched for the identifiers.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
import pytest
from app_helpers import app_state, assert_clean, classify_upload_page, goto, make_app, texts
from corpus import dicom, zip_of

from medviz.cli import main

IDENTIFIERS = {
    "PatientName": "Qz^PRIVNAME4711",
    "PatientID": "PRIVID-88213",
    "PatientBirthDate": "19010203",
    "AccessionNumber": "PRIVACC77Q",
    "InstitutionName": "PRIVINST General",
    "ReferringPhysicianName": "PRIVDOC^Who",
    "PatientAddress": "PRIVADDR Lane 9",
    "OtherPatientIDs": "PRIVOTHER-1",
    "StudyID": "PRIVSTUDY5",
}
SECRETS = ["PRIVNAME4711", "PRIVID-88213", "19010203", "PRIVACC77Q", "PRIVINST", "PRIVDOC",
           "PRIVADDR", "PRIVOTHER", "PRIVSTUDY"]  # fmt: skip


def secret_dicom(seed: int, *, size: int = 40) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 4000, (size, size)).astype(np.uint16)
    return dicom(pixels, Modality="MG", **IDENTIFIERS)


def _leaks(blob: bytes | str) -> list[str]:
    data = blob.encode("utf-8", "replace") if isinstance(blob, str) else blob
    found = [s for s in SECRETS if s.encode() in data]
    found += [s for s in SECRETS if s.encode("utf-16-le") in data]  # wide strings, too
    return found


def _scan_tree(*roots: Path) -> dict[str, list[str]]:
    leaks = {}
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and (found := _leaks(path.read_bytes())):
                leaks[str(path)] = found
    return leaks


@pytest.fixture
def private_dirs(tmp_path, monkeypatch):
    """Temporary HOME, working folder and temp folder; the inputs live elsewhere."""
    dirs = {name: tmp_path / name for name in ("home", "cwd", "tmp", "inputs")}
    for folder in dirs.values():
        folder.mkdir()
    monkeypatch.setenv("HOME", str(dirs["home"]))
    monkeypatch.setenv("TMPDIR", str(dirs["tmp"]))
    monkeypatch.setattr(tempfile, "tempdir", str(dirs["tmp"]))
    monkeypatch.chdir(dirs["cwd"])
    return dirs


def test_the_secret_dicom_really_carries_the_identifiers():
    import io

    import pydicom

    data = secret_dicom(0)
    ds = pydicom.dcmread(io.BytesIO(data))
    assert str(ds.PatientName) == IDENTIFIERS["PatientName"]
    assert all(s.encode() in data for s in SECRETS), "the search would find a leak"


def test_app_never_shows_logs_or_serves_identifiers(private_dirs, caplog, capfd, monkeypatch):
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    served: list[bytes] = []
    original = MemoryMediaFileStorage.load_and_get_id

    def record(self, path_or_data, mimetype, kind, filename=None):
        served.append(path_or_data if isinstance(path_or_data, bytes) else b"")
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", record)
    caplog.set_level(logging.DEBUG)
    app = classify_upload_page(make_app())
    shown: list[str] = []

    # One file.
    app.file_uploader(key="classify_files").set_value(
        ("scan.dcm", secret_dicom(1), "application/dicom")
    )
    app.run()
    assert_clean(app)
    assert app.subheader[0].value.startswith("Prediction: ")
    shown.append(texts(app))

    # Several files, one of them broken, with the CSV export.
    broken = secret_dicom(2)
    app.file_uploader(key="classify_files").set_value(
        [
            ("scan.dcm", secret_dicom(1), "application/dicom"),
            ("other.dcm", secret_dicom(3), "application/dicom"),
            ("broken.dcm", broken[: len(broken) - 500], "application/dicom"),
        ]
    )
    app.run()
    assert not app.exception
    assert len(app.error) == 1 and "broken.dcm" in app.error[0].value
    shown.append(texts(app))
    csv = app.dataframe[0].value.to_csv(index=False).encode()
    assert b"scan.dcm" in csv and b"other.dcm" in csv
    served_csv = [blob for blob in served if blob.startswith(b"file,prediction")]
    assert served_csv, "the CSV export was served"
    for detail in ("scan.dcm", "other.dcm"):
        app.selectbox(key="classify_detail").set_value(detail)
        app.run()
        shown.append(texts(app))
        assert "MG" in texts(app), "display fields are shown"

    # Explain page and Data page (a zip of identified DICOMs).
    goto(app, "explain")
    app.segmented_control(key="explain_source").set_value("upload")
    app.run()
    app.file_uploader(key="explain_upload").set_value(("scan.dcm", secret_dicom(4), "x"))
    app.run()
    assert_clean(app)
    shown.append(texts(app))
    goto(app, "data")
    app.segmented_control(key="data_source").set_value("zip")
    app.run()
    files = {
        f"{label}/{i}.dcm": secret_dicom(10 * k + i, size=16)
        for k, label in enumerate(("normal", "microcalcification"))
        for i in range(6)
    }
    app.file_uploader(key="data_zip").set_value(("scans.zip", zip_of(files), "x"))
    app.button(key="data_load").click()
    app.run()
    assert_clean(app)
    assert app_state(app).dataset.label == "scans.zip"
    for view in ("Counts", "Sizes and modes", "Duplicates and leakage", "Shortcut check"):
        app.segmented_control(key="data_view").set_value(view)
        app.run()
        shown.append(texts(app))

    out, err = capfd.readouterr()
    everything = {
        "page text": "\n".join(shown),
        "served media": b"".join(served),
        "logs": "\n".join(f"{r.name}: {r.getMessage()}" for r in caplog.records),
        "stdout/stderr": out + err,
    }
    leaks = {where: found for where, blob in everything.items() if (found := _leaks(blob))}
    assert not leaks, leaks
    assert not _scan_tree(*(private_dirs[k] for k in ("home", "cwd", "tmp")))


def test_cli_never_prints_logs_or_writes_identifiers(private_dirs, caplog, capfd, shipped_model):
    caplog.set_level(logging.DEBUG)
    inputs = private_dirs["inputs"]
    scan = inputs / "scan.dcm"
    scan.write_bytes(secret_dicom(5))
    broken = inputs / "broken.dcm"
    broken.write_bytes(secret_dicom(6)[:-300])
    out_dir = private_dirs["cwd"]
    assert main(["predict", "--model", str(shipped_model), "--json", str(scan), str(broken)]) == 3
    assert main(["predict", "--model", str(shipped_model), str(scan)]) == 0
    cam, heat = str(out_dir / "cam.png"), str(out_dir / "heat.png")
    code = main(
        ["explain", str(scan), "--model", str(shipped_model), "--out", cam, "--heatmap-out", heat]
    )
    assert code == 0 and (out_dir / "cam.png").is_file()

    # Train on a folder of identified DICOMs: card, README, run store.
    data = inputs / "dicoms"
    for k, label in enumerate(("normal", "microcalcification")):
        for i in range(10):
            path = data / label / f"{i}.dcm"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(secret_dicom(100 * k + i, size=16))
    model, runs = str(out_dir / "model"), str(out_dir / "runs")
    code = main(
        ["train", "--data", str(data), "--image-size", "16", "--epochs", "1", "--out", model,
         "--runs", runs, "--json"]
    )  # fmt: skip
    assert code == 0
    assert (out_dir / "model" / "card.json").is_file()
    assert list((out_dir / "runs").glob("*/checkpoint/card.json"))
    out, err = capfd.readouterr()
    assert '"prediction"' in out and "broken.dcm" in out
    logs = "\n".join(f"{r.name}: {r.getMessage()}" for r in caplog.records)
    streams = (("stdout", out), ("stderr", err), ("logs", logs))
    leaks = {where: found for where, blob in streams if (found := _leaks(blob))}
    assert not leaks, leaks
    written = _scan_tree(*(private_dirs[k] for k in ("home", "cwd", "tmp")))
    assert not written, written
