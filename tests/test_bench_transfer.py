"""The committed transfer table (``bench/results/transfer.md``) is what its JSON says.

``python -m bench.transfer`` writes both files; this test re-renders the Markdown
from the JSON (and the shipped backbone's card) and checks the table's structure,
so a hand-edited or stale table fails.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bench import transfer

ROOT = Path(__file__).resolve().parents[1]
MD = ROOT / "bench" / "results" / "transfer.md"
JSON = ROOT / "bench" / "results" / "transfer.json"
CARD = ROOT / "models" / "medviz-backbone-v1" / "backbone.json"

pytestmark = pytest.mark.skipif(not JSON.exists(), reason="no transfer results committed")


def _payload() -> dict:
    return json.loads(JSON.read_text(encoding="utf-8"))


def test_markdown_is_rendered_from_the_json():
    card = json.loads(CARD.read_text(encoding="utf-8"))
    assert MD.read_text(encoding="utf-8") == transfer.render(_payload(), backbone_card=card)


def test_table_rows_have_every_arm_and_mean_std_cells():
    text = MD.read_text(encoding="utf-8")
    header = (
        "| dataset | labels | n train | n test | arm | BN statistics | seeds | accuracy | AUC "
        "| time (s) |"
    )
    assert header in text and "## Targets" in text
    main_table = text.split("\n## ")[0]  # "## Backbones compared" has its own columns
    rows = [line for line in main_table.splitlines() if line.startswith("| ") and "±" in line]
    assert rows, "no result rows"
    cells: dict[tuple[str, str, str], set[str]] = {}
    for row in rows:
        parts = [p.strip() for p in row.strip("|").split("|")]
        dataset, labels, _, _, arm, bn, seeds, accuracy, auc, _ = parts
        assert dataset in transfer.DATASETS and labels in transfer.LABELS
        assert bn in transfer.BN_TITLES.values()
        assert re.fullmatch(r"[01]\.\d{3} ± 0\.\d{3}", accuracy), accuracy
        assert re.fullmatch(r"([01]\.\d{3}|nan) ± (0\.\d{3}|nan)", auc), auc
        assert 1 <= int(seeds) <= 3
        cells.setdefault((dataset, labels, bn), set()).add(arm)
    for arms in cells.values():  # the three arms are always compared together
        assert arms == set(transfer.ARM_TITLES.values())


def test_every_run_scored_on_the_test_split_with_the_backbone():
    for run in _payload()["runs"].values():
        assert run["n_test"] > 0 and 0 <= run["accuracy"] <= 1
        if run["arm"] == "scratch":
            assert "random" in run["weights"]
        elif run.get("backbone", transfer.DEFAULT_BACKBONE) == transfer.DEFAULT_BACKBONE:
            assert "MedViz medical backbone" in run["weights"]
        else:  # --backbone PATH: another pretraining's file, recorded with its hash
            assert "local file" in run["weights"] and "sha256" in run["weights"]


def test_readme_block_is_the_measured_verdicts():
    from medviz.docblocks import block_body

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    body = block_body(readme, transfer.README_BEGIN, transfer.README_END)
    assert body == transfer.readme_block(_payload()).strip()
    assert "held-out test splits" in body


def test_other_backbones_get_their_own_table_beside_the_shipped_one():
    def run(arm: str, seed: int, backbone: str | None, accuracy: float) -> dict:
        row = {"dataset": "covid-ct", "labels": "100", "n_train": 100, "n_test": 10}
        row |= {"seed": seed, "arm": arm, "accuracy": accuracy, "auc": accuracy, "seconds": 1.0}
        return row | ({"backbone": backbone} if backbone else {})

    runs = [run("scratch", 0, None, 0.5), run("fine-tune", 0, None, 0.8)]
    runs += [run("fine-tune", s, "simclr", a) for s, a in ((0, 0.6), (1, 0.7))]
    payload = {"recipe": {}, "runs": {str(i): r for i, r in enumerate(runs)}}
    main = transfer.summarise(payload)  # the other backbone stays out of the main table
    assert [(r["arm"], r["accuracy_mean"]) for r in main] == [("scratch", 0.5), ("fine-tune", 0.8)]
    compared = transfer.backbone_rows(payload)
    assert [(r["backbone"], r["seeds"]) for r in compared] == [
        (transfer.DEFAULT_BACKBONE, 1),
        ("simclr", 2),
    ]
    assert compared[1]["accuracy_mean"] == pytest.approx(0.65)
