"""``python -m bench.experiments [NAME …] [--out FILE] [--repeats N]``: the full reproductions.

Runs ``medviz reproduce NAME --report FILE`` for each experiment (default: the three whose
tables the README cites: mammogram, COVID CT, pneumonia) in this process, one after
the other, and so rewrites each one's block of ``bench/results/experiments.md``. Every
figure there comes from this command; nothing is typed by hand.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEFAULT = ("mammo-microcalc-cnn", "covid-ct-cnn", "pneumonia-simple-cnn")
REPORT = "bench/results/experiments.md"


def main(argv: list[str] | None = None) -> int:
    """Run the experiments; the exit code is the first failure's (0 when all ran)."""
    from medviz.cli import main as medviz

    parser = argparse.ArgumentParser(prog="python -m bench.experiments", description=__doc__)
    parser.add_argument("names", nargs="*", default=list(DEFAULT), help="experiment names")
    parser.add_argument("--out", default=REPORT, help=f"Markdown report (default {REPORT})")
    parser.add_argument("--repeats", type=int, default=None, help="override every repeats")
    parser.add_argument("--runs", default="runs", help="parent of the run folders")
    args = parser.parse_args(argv)
    status = 0
    for name in args.names:
        started = time.perf_counter()
        command = ["reproduce", name, "--report", args.out, "--runs", args.runs]
        if args.repeats is not None:
            command += ["--repeats", str(args.repeats)]
        code = medviz(command)
        sys.stderr.write(
            f"[bench.experiments] {name}: exit {code} in {time.perf_counter() - started:.0f} s\n"
        )
        status = status or code
    return status


if __name__ == "__main__":
    raise SystemExit(main())
