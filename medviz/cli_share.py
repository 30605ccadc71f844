"""``medviz push`` (Hugging Face Hub) and ``medviz export`` (SavedModel, LiteRT, ONNX).

Exit codes follow :mod:`medviz.cli_support`, plus 1 for a runtime failure
that is not the input's fault: the Hub cannot be reached, or an export that
does not answer like the ``.keras`` model.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from medviz.cli_support import EXIT_OK, EXIT_RUNTIME, Progress, print_json
from medviz.errors import OfflineError


def cmd_push(args: argparse.Namespace) -> int:
    """Upload a model folder to the Hub (token: HF_TOKEN or the ``hf auth login`` cache)."""
    from medviz.store import hub_token, push_to_hub

    token = hub_token()
    if token.found:  # say which credentials are used, never the token itself
        sys.stderr.write(f"token: {token.masked} from {token.source}\n")
    try:
        result = push_to_hub(
            args.model,
            args.repo,
            private=args.private,
            revision=args.revision,
            commit_message=args.commit_message,
        )
    except OfflineError as err:
        sys.stderr.write(f"error: {' '.join(str(err).split())}\n")
        return EXIT_RUNTIME
    if args.json:
        print_json(result.to_dict())
    else:
        print(f"pushed {', '.join(result.files)} to {result.repo_url} ({result.revision})")
        print(f"commit: {result.commit_url}")
        print(f"load it with: medviz predict --model hf://{result.repo_id} …")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    """Export a model and check the export's probabilities against the ``.keras`` model."""
    from medviz.export import export_model
    from medviz.store import load_bundle

    out = Path(args.out) if args.out else Path("exports") / _model_name(args.model)
    bundle = load_bundle(args.model, safe_mode=True)
    results = []
    formats = list(dict.fromkeys(args.format))  # each format once, in the order given
    progress = Progress(len(formats), label="export", unit="format")
    for done, fmt in enumerate(formats):
        progress.update(done, note=fmt)
        result = export_model(bundle, format=fmt, out=out, tolerance=args.tolerance)
        results.append(result)
        if not args.json:
            verdict = "ok" if result.ok else f"DIFFERS (tolerance {result.tolerance:g})"
            print(
                f"{fmt}: {result.path} ({result.size_bytes / 1e6:.2f} MB); re-loaded with "
                f"{result.runtime}: max |Δp| {result.max_abs_diff:.2e} on {result.n_images} "
                f"images, {verdict}"
            )
    progress.update(len(formats))
    progress.close()
    if args.json:
        print_json({"exports": [r.to_dict() for r in results]})
    failed = [r.format for r in results if not r.ok]
    if failed:
        sys.stderr.write(
            f"error: the {', '.join(failed)} export does not give the .keras model's "
            f"probabilities within {args.tolerance:g}\n"
        )
        return EXIT_RUNTIME
    return EXIT_OK


def _model_name(source: str) -> str:
    if source.startswith("hf://"):
        return source[len("hf://") :].split("@")[0].replace("/", "--")
    path = Path(source)
    return (path.parent.name if path.suffix == ".keras" else path.name) or "model"


def add_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    """Register ``push`` and ``export`` with the CLI (``add(name, handler, help)``)."""
    from medviz.export import DEFAULT_TOLERANCE, FORMATS

    p = add(
        "push",
        cmd_push,
        "Upload a model folder (.keras, card.json, README.md) to the Hugging Face Hub. "
        "Token: HF_TOKEN or `hf auth login`.",
    )
    p.add_argument("--model", required=True, help="model folder")
    p.add_argument("--repo", required=True, help="Hub repo id, user/name or org/name")
    p.add_argument("--private", action="store_true", help="create the repo private")
    p.add_argument("--revision", default=None, help="branch to push to (default: main)")
    p.add_argument("--commit-message", default=None, help="commit message")

    p = add(
        "export",
        cmd_export,
        "Export a model (SavedModel, LiteRT, ONNX) and check it gives the same probabilities.",
    )
    p.add_argument("--model", required=True, help="model folder, .keras file or hf://user/repo")
    p.add_argument(
        "--format",
        required=True,
        action="append",
        choices=FORMATS,
        help="export format; repeat for several",
    )
    p.add_argument("--out", default=None, help="output folder (default: exports/<model name>)")
    p.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        help="largest accepted probability difference (default %(default)g)",
    )
