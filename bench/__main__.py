"""``python -m bench [--quick] [--only NAME,…] [--skip NAME,…] [--out DIR]``: run the benchmarks.

Writes ``latest.json`` and ``latest.md`` to ``--out`` (default
``bench/results``); a full run into the default folder also keeps a dated
copy of the JSON and rewrites the README's "Speed" section (``--no-readme``
to skip that). Sizes come from :class:`bench.common.Settings` (``--quick``
shrinks them; ``MEDVIZ_BENCH_<FIELD>`` variables cap them).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench.common import RESULTS, ROOT, Settings, machine, run_section

#: Section names in run order (the app runs before memory, which reports its peak).
SECTIONS = (
    "throughput",
    "time_to_quality",
    "latency",
    "explanations",
    "app",
    "memory",
    "scaling",
)


def _runner(name: str, settings: Settings, report: dict[str, Any]) -> Callable[[], dict]:
    if name == "throughput":
        from bench import throughput

        return lambda: throughput.run(settings)
    if name == "time_to_quality":
        from bench import quality

        return lambda: quality.run(settings)
    if name == "latency":
        from bench import latency

        return lambda: latency.run(settings)
    if name == "explanations":
        from bench import explanations

        return lambda: explanations.run(settings)
    if name == "app":
        from bench import app_speed

        return lambda: app_speed.run(settings)
    if name == "memory":
        from bench import memory

        return lambda: memory.run(settings, app=report.get("app"))
    if name == "scaling":
        from bench import scaling

        return lambda: scaling.run(settings)
    raise ValueError(f"unknown section {name!r}")


def _names(values: list[str] | None) -> list[str]:
    out = [v.strip() for value in values or [] for v in value.split(",") if v.strip()]
    unknown = sorted(set(out) - set(SECTIONS))
    if unknown:
        raise SystemExit(f"error: unknown section(s) {unknown}; choose from {list(SECTIONS)}")
    return out


def run(
    *,
    quick: bool = False,
    only: list[str] | None = None,
    skip: list[str] | None = None,
    out: Path = RESULTS,
    readme: bool | None = None,
    command: str = "python -m bench",
) -> dict[str, Any]:
    """Run the selected sections and write the reports.

    Args:
        quick: Use :meth:`Settings.quick` sizes.
        only: Run only these sections.
        skip: Leave these sections out.
        out: Folder for ``latest.json`` and ``latest.md``.
        readme: Rewrite the README "Speed" section (default: full runs into
            the default folder only).
        command: The command line, recorded in the report.

    Returns:
        The report written to ``out / "latest.json"``.
    """
    from bench import report as reporting

    settings = (Settings.quick() if quick else Settings()).with_env()
    chosen = [s for s in SECTIONS if (not only or s in only) and s not in (skip or [])]
    started = time.perf_counter()
    report: dict[str, Any] = {
        "command": command,
        "quick": quick,
        "sections_run": chosen,
        "settings": settings.to_dict(),
    }
    report["machine"] = run_section("machine", machine)
    for name in chosen:
        print(f"[bench] {name} …", file=sys.stderr, flush=True)
        report[name] = run_section(name, _runner(name, settings, report))
        status = report[name].get("error") or f"{report[name]['section_seconds']:.0f} s"
        print(f"[bench] {name}: {status}", file=sys.stderr, flush=True)
    report["total_seconds"] = time.perf_counter() - started
    report["machine"]["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    cores = report["machine"].get("usable_cores") or 1
    peak_load = max(
        [report["machine"]["load_average_start"][0], report["machine"]["load_average_end"][0]]
        + [report[n]["load_average_1min"][1] for n in chosen]
    )
    # The bench's own work keeps about `cores` runnable threads (TF, Chromium); only a load
    # clearly above that means other processes were taking CPU from it.
    if peak_load > cores + 0.5:
        report["load_warning"] = (
            f"the 1-minute load average reached {peak_load:.1f} on {cores} cores during the run: "
            "other processes were competing for the CPU, so absolute figures are lower and "
            "noisier than on an idle machine (ratios between contenders timed round-robin are "
            "less affected)."
        )
    report["summary"], report["targets"] = reporting.summarize_report(report)

    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, indent=2, default=str) + "\n"
    (out / "latest.json").write_text(text, encoding="utf-8")
    (out / "latest.md").write_text(reporting.markdown(report), encoding="utf-8")
    default_out = out.resolve() == RESULTS.resolve()
    if not quick and default_out:
        stamp = time.strftime("%Y-%m-%d-%H%M")
        (out / f"bench-{stamp}.json").write_text(text, encoding="utf-8")
    if readme if readme is not None else (not quick and default_out):
        reporting.update_readme(ROOT / "README.md", report)
    return report


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (development, CI)")
    parser.add_argument("--only", action="append", help=f"sections to run, of {list(SECTIONS)}")
    parser.add_argument("--skip", action="append", help="sections to leave out")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for latest.json/.md")
    parser.add_argument(
        "--readme",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="rewrite the README 'Speed' section (default: full runs into bench/results)",
    )
    args = parser.parse_args(argv)
    command = "python -m bench " + " ".join(sys.argv[1:] if argv is None else argv)
    report = run(
        quick=args.quick,
        only=_names(args.only),
        skip=_names(args.skip),
        out=args.out,
        readme=args.readme,
        command=command.strip(),
    )
    print(json.dumps({"summary": report["summary"], "targets": report["targets"]}, indent=2))
    print(f"wrote {args.out / 'latest.json'} and {args.out / 'latest.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
