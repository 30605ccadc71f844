"""``medviz reproduce``: run a source work's experiment and compare with its published figures.

::

    medviz reproduce --list                      # the experiments, their data and times
    medviz reproduce covid-ct-cnn                # full run: repeats, table in runs/<name>-<time>/
    medviz reproduce covid-ct-cnn --repeats 3 --json
    medviz reproduce mammo-microcalc-cnn --quick # smoke run (tiny images, one epoch)
    medviz reproduce pneumonia-simple-cnn --report bench/results/experiments.md

``--report FILE`` also writes the run's Markdown into ``FILE`` between markers named
after the experiment (:mod:`medviz.docblocks`), so one file collects every experiment.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from medviz.cli_support import EXIT_OK, Progress, print_json


def cmd_reproduce(args: argparse.Namespace) -> int:
    from medviz.errors import DataError
    from medviz.experiments import experiments_dir, list_experiments, load_experiment

    folder = args.experiments
    if not args.list and not args.name:
        raise DataError("name an experiment, or use --list to see them")
    if args.list:
        experiments = list_experiments(folder)
        if args.json:
            print_json([_describe(e) for e in experiments])
            return EXIT_OK
        where = folder or experiments_dir()
        print(f"{len(experiments)} experiments in {where}:")
        for e in experiments:
            data = "data here" if e.data_available() else "data missing"
            published = ", ".join(
                f"{f.metric} {f.value:g} ({f.model})" for f in e.published if f.compare
            )
            print(
                f"  {e.name:<32} {e.dataset:<22} ~{e.expected_minutes:g} min, "
                f"{e.repeats} runs, {data}; published: {published or 'none'}"
            )
        return EXIT_OK

    from medviz.reproduce import report_markdown, run_experiment, write_report

    experiment = load_experiment(args.name, folder=folder)
    repeats = args.repeats
    total_runs = repeats or (1 if args.quick else experiment.repeats)
    epochs = 1 if args.quick else experiment.config.epochs
    progress = Progress(total_runs * epochs, label="reproduce", enabled=not args.json)
    done = [0]

    def on_epoch_end(p) -> None:
        done[0] += 1
        progress.update(done[0], note=f"val_auc={p.logs.get('val_auc', float('nan')):.3f}")

    def log(line: str) -> None:
        if not args.json:
            sys.stderr.write(line + "\n")

    done_run = run_experiment(
        experiment, repeats=repeats, quick=args.quick, on_epoch_end=on_epoch_end, log=log
    )
    progress.close()
    report = write_report(
        done_run.report, done_run.best, experiment, runs_root=args.runs, data=done_run.data
    )
    markdown = report_markdown(report, experiment)
    if args.report:
        update_report(Path(args.report), experiment.name, markdown)
    if args.json:
        print_json(report.to_dict())
    else:
        print(markdown)
    return EXIT_OK


def _describe(e) -> dict[str, object]:
    return {
        "name": e.name,
        "title": e.title,
        "dataset": e.dataset,
        "data_available": e.data_available(),
        "arch": e.config.arch,
        "image_size": e.config.image_size,
        "repeats": e.repeats,
        "expected_minutes": e.expected_minutes,
        "metrics": list(e.metrics),
        "published": [
            {"metric": f.metric, "value": f.value, "model": f.model, "measured_on": f.measured_on}
            for f in e.published
        ],
        "source": e.source_work,
        "path": str(e.path) if e.path else None,
    }


REPORT_HEADER = (
    "# Reproducing the source works\n\n"
    "Written by `medviz reproduce NAME --report bench/results/experiments.md` (one block per "
    'experiment; see the README section "Reproduce the source works"). Published figures are '
    "the source works' own; MedViz's are mean ± std over the repeats on its own split.\n"
)


def update_report(path: Path, name: str, markdown: str) -> None:
    """Put ``markdown`` between ``<!-- experiment:NAME -->`` markers in ``path`` (appending)."""
    from medviz.store import atomic_write_text

    begin, end = f"<!-- experiment:{name}:begin -->", f"<!-- experiment:{name}:end -->"
    text = path.read_text(encoding="utf-8") if path.exists() else REPORT_HEADER
    block = f"{begin}\n{markdown.strip()}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)


def add_commands(add) -> None:
    """Register ``reproduce`` with ``medviz.cli.build_parser``'s ``add`` closure."""
    p = add(
        "reproduce",
        cmd_reproduce,
        "Run a source work's experiment (experiments/NAME.yaml) and compare with its "
        "published figures (mean ± std over repeats).",
    )
    p.add_argument("name", nargs="?", default=None, help="experiment name (see --list)")
    p.add_argument("--list", action="store_true", help="list the experiments")
    p.add_argument("--repeats", type=int, default=None, help="override the experiment's repeats")
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: a few images per class, one epoch, tiny input (numbers mean nothing)",
    )
    p.add_argument("--runs", default="runs", help="parent folder of the run folder (default runs)")
    p.add_argument(
        "--report",
        default=None,
        metavar="FILE",
        help="also write the Markdown table into FILE (e.g. bench/results/experiments.md)",
    )
    p.add_argument(
        "--experiments",
        default=None,
        metavar="DIR",
        help="folder of experiment files (default: $MEDVIZ_EXPERIMENTS_DIR or <home>/experiments)",
    )
