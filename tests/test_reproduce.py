"""``medviz reproduce``: every experiment runs in quick mode; the report holds what it says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medviz.cli import main
from medviz.experiments import experiment_files, load_experiment

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "experiments"
NAMES = [p.stem for p in experiment_files(SHIPPED)]


def _param(name: str):
    # ImageNet-architecture backbones (EfficientNetB0, InceptionV3): tracing their train step
    # alone takes 15-90 s on two cores even frozen, so they carry the `slow` mark.
    from medviz.zoo import get_arch

    slow = get_arch(load_experiment(name, folder=SHIPPED).config.arch).transfer
    return pytest.param(name, marks=pytest.mark.slow) if slow else name


@pytest.fixture(autouse=True)
def _tiny(monkeypatch):
    # A few images per class and the smallest inputs: proves each file runs end to end.
    monkeypatch.setenv("MEDVIZ_REPRODUCE_QUICK_LIMIT", "6")
    monkeypatch.setenv("MEDVIZ_REPRODUCE_QUICK_SIZE", "32")
    monkeypatch.setenv("MEDVIZ_TEST_STEPS", "1")


@pytest.mark.parametrize("name", [_param(n) for n in NAMES])
def test_quick_run_of_every_experiment(name, tmp_path, capsys):
    experiment = load_experiment(name, folder=SHIPPED)
    if not experiment.data_available():
        pytest.skip(f"{experiment.dataset} is not in ../shared/datasets")
    report_file = tmp_path / "experiments.md"
    code = main(
        [
            "reproduce",
            name,
            "--quick",
            "--json",
            "--experiments",
            str(SHIPPED),
            "--runs",
            str(tmp_path / "runs"),
            "--report",
            str(report_file),
        ]
    )
    assert code == 0
    payload = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert payload["experiment"] == name and payload["quick"] is True
    assert [r["metric"] for r in payload["rows"]] == list(experiment.metrics)
    assert len(payload["per_run"]) == 1 and payload["per_run"][0]["epochs"] == 1
    for row in payload["rows"]:
        figure = experiment.figure(row["metric"])
        assert row["published"] == (figure.value if figure else None)
    folder = Path(payload["folder"])
    assert (folder / "model" / "model.keras").is_file()
    assert json.loads((folder / "report.json").read_text())["experiment"] == name
    markdown = (folder / "report.md").read_text()
    assert "Quick (smoke) run" in markdown and "| metric (" in markdown
    assert f"<!-- experiment:{name}:begin -->" in report_file.read_text()
    if experiment.baseline_threshold is not None:
        assert payload["baseline"]["threshold"] == experiment.baseline_threshold
    if experiment.deep_dream:
        assert (folder / payload["extras"]["deep_dream"]).is_file()
    if experiment.predict_files:
        assert {p["file"] for p in payload["predictions"]} == set(experiment.predict_files)


def test_list_and_errors(capsys):
    assert main(["reproduce", "--list", "--json", "--experiments", str(SHIPPED)]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {e["name"] for e in listed} == set(NAMES)
    assert main(["reproduce", "--experiments", str(SHIPPED)]) == 2
    assert "name an experiment" in capsys.readouterr().err
    assert main(["reproduce", "nope", "--experiments", str(SHIPPED)]) == 2
    assert "unknown experiment 'nope'" in capsys.readouterr().err


def test_report_block_is_replaced_not_duplicated(tmp_path):
    from medviz.cli_reproduce import update_report

    path = tmp_path / "r.md"
    update_report(path, "a", "first")
    update_report(path, "b", "other")
    update_report(path, "a", "second")
    text = path.read_text()
    assert text.count("experiment:a:begin") == 1 and "second" in text and "first" not in text
    assert text.index("experiment:a:begin") < text.index("experiment:b:begin")
