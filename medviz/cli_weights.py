"""``medviz weights add FILE`` / ``medviz weights list``: local pretrained weights, offline.

See :mod:`medviz.weights` for the checks (architecture, no top, Keras' hash) and
where files go (``$MEDVIZ_WEIGHTS_DIR``, else Keras' ``~/.keras/models``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from medviz.cli_support import EXIT_OK, CliParser, print_json


def cmd_weights(args: argparse.Namespace) -> int:
    """Run ``weights add`` or ``weights list``."""
    from medviz.weights import add_weights, list_weights, weights_dir

    if args.weights_command == "add":
        added = add_weights(args.file, arch=args.arch)
        if args.json:
            print_json(added.__dict__)
        else:
            print(f"added {added.arch} ImageNet weights: {added.path}")
            print(f"  sha256 {added.sha256}; {added.hash_check}")
        return EXIT_OK
    rows = list_weights()
    if args.json:
        print_json({"folder": str(weights_dir()), "weights": [r.__dict__ for r in rows]})
        return EXIT_OK
    print(f"ImageNet weights folder: {weights_dir()}")
    if not rows:
        print("  no weights files (add one with `medviz weights add FILE`)")
    for row in rows:
        print(f"  {row.arch:<18} {row.size_bytes / 1e6:7.1f} MB  {row.path}")
        print(f"  {'':<18} sha256 {row.sha256[:16]}…  {row.hash_check}")
    return EXIT_OK


def add_commands(add: Callable[[str, Callable, str], CliParser]) -> None:
    """Register ``weights`` (with ``add`` and ``list``) on the CLI's parser."""
    p = add("weights", cmd_weights, "Pretrained backbone weights: add a local file, list them.")
    sub = p.add_subparsers(dest="weights_command", required=True, parser_class=CliParser)
    a = sub.add_parser(
        "add",
        help="check a Keras Applications no-top ImageNet .h5 file and put it where Keras looks",
    )
    a.add_argument("file", help="e.g. efficientnetb0_notop.h5 copied from a machine with internet")
    a.add_argument(
        "--arch",
        default=None,
        help="expected architecture (mobilenetv2, efficientnetb0, resnet50, inceptionv3; "
        "default: recognised from the file's layers)",
    )
    a.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    sub.add_parser("list", help="weights available offline").add_argument(
        "--json", action="store_true", help="machine-readable output on stdout"
    )
