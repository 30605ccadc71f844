"""``medviz shortcut``: the shortcut lab on the command line (see :mod:`medviz.explore.shortcut`).

Plants a marker in one class of a binary dataset, trains a model with it and a
clean one, and prints the shortcut-reliance score of both (``--json``: every
number), optionally writing the two figures as HTML.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from medviz.cli_support import EXIT_OK, CliParser, Progress, print_json
from medviz.errors import MedvizError

# Not imported from medviz.explore.shortcut: `medviz --help` must not import NumPy-heavy code.
DEFAULT_IMAGE_SIZE = 64
DEFAULT_EPOCHS = 8  # as medviz.explore.shortcut.DEFAULT_EPOCHS


def cmd_shortcut(args: argparse.Namespace) -> int:
    from medviz.data import load_dataset
    from medviz.explore.markers import Marker
    from medviz.explore.shortcut import class_index, lab_config, run_shortcut_lab

    if not 0.0 <= args.fraction <= 1.0:
        raise MedvizError(f"--fraction must lie in [0, 1] (1.0 = every image), got {args.fraction}")
    try:
        marker = Marker(args.marker, size=args.marker_size, intensity=args.intensity)
        config = lab_config(
            arch=args.arch,
            image_size=args.image_size,
            epochs=args.epochs,
            batch_size=args.batch_size,
            seed=args.seed,
        )
    except (ValueError, MedvizError) as err:
        raise MedvizError(str(err)) from None
    data = load_dataset(
        args.data,
        image_size=args.image_size,
        seed=args.seed,
        limit_per_class=args.limit_per_class,
    )
    if data.n_classes != 2:
        raise MedvizError(
            f"the shortcut lab needs a binary dataset; {args.data!r} has classes "
            f"{list(data.class_names)}"
        )
    try:
        marked = class_index(data.class_names, args.class_name or data.class_names[-1])
    except ValueError as err:
        raise MedvizError(str(err)) from None
    progress = Progress(2 * config.epochs, label="shortcut", enabled=not args.json)
    done = [0]

    def on_epoch_end(p) -> None:
        done[0] += 1
        progress.update(done[0], note=f"val_acc={p.logs.get('val_accuracy', float('nan')):.3f}")

    result = run_shortcut_lab(
        data,
        marker=marker,
        marked_class=marked,
        fraction=args.fraction,
        config=config,
        control=args.control,
        on_epoch_end=on_epoch_end,
    )
    progress.close()
    written = []
    if args.out:
        from medviz.explore.shortcut_plots import accuracy_figure, heatmap_grid_figure

        folder = Path(args.out)
        folder.mkdir(parents=True, exist_ok=True)
        for name, figure in (
            ("accuracy.html", accuracy_figure(result)),
            ("gradcam.html", heatmap_grid_figure(result)),
        ):
            figure.write_html(folder / name, include_plotlyjs="cdn")
            written.append(str(folder / name))
    if args.json:
        print_json({**result.to_dict(), "figures": written})
        return EXIT_OK
    _print_summary(result, written, write=sys.stdout.write)
    return EXIT_OK


def _print_summary(result, written: list[str], *, write: Callable[[str], object]) -> None:
    write(
        f"{result.dataset}: marker {result.marker.describe()} in {result.fraction:.0%} of "
        f"'{result.marked_class_name}' train/val images ({result.n_marked} stamped); "
        f"{result.config.arch} at {result.image_size} px, {result.config.epochs} epochs, "
        f"{result.seconds:.0f} s\n"
    )
    write("balanced accuracy on test           clean  aligned  swapped  reliance  marker mass\n")
    for label, scores in (
        ("model with the marker", result.shortcut),
        (f"control ({args_control_label(result.control)})", result.clean),
    ):
        b = scores.balanced_accuracy
        write(
            f"  {label:<32} {b['clean']:6.3f}  {b['aligned']:7.3f}  {b['swapped']:7.3f}  "
            f"{scores.reliance:+8.3f}  {scores.marker_mass:10.1%}\n"
        )
    write(
        f"reliance = balanced accuracy aligned - swapped; marker mass = share of Grad-CAM on "
        f"the marker (its area: {result.marker_area:.1%}) over {len(result.examples)} images\n"
    )
    for path in written:
        write(f"wrote {path}\n")


def args_control_label(control: str) -> str:
    """Short name of a control for the text table."""
    return {"random": "marker at random", "none": "no marker"}.get(control, control)


def add_commands(add: Callable[[str, Callable[[argparse.Namespace], int], str], CliParser]) -> None:
    """Register ``shortcut`` through ``add(name, handler, help_text)`` of ``build_parser``."""
    p = add(
        "shortcut",
        cmd_shortcut,
        "Shortcut lab: plant a marker in one class, train with and without it, and score how "
        "much the model relies on the marker.",
    )
    p.add_argument("--data", default="synthetic-microcalc", help="a binary dataset (name or path)")
    p.add_argument(
        "--marker", default="tag", choices=("tag", "border", "brightness"), help="marker kind"
    )
    p.add_argument(
        "--fraction",
        type=float,
        default=1.0,
        help="share of the class's train and val images that get the marker (0-1, default 1)",
    )
    p.add_argument(
        "--class",
        dest="class_name",
        default=None,
        metavar="NAME",
        help="class that gets the marker (default: the second class)",
    )
    p.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    p.add_argument("--image-size", type=int, default=DEFAULT_IMAGE_SIZE)
    p.add_argument("--arch", default="fast-cnn")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit-per-class", type=int, default=None)
    p.add_argument(
        "--marker-size", type=float, default=None, help="tag side / border width, share of side"
    )
    p.add_argument(
        "--intensity",
        type=float,
        default=None,
        help="tag/border level (0-1) or brightness offset (-1-1), share of the pixel range",
    )
    p.add_argument(
        "--control",
        default="random",
        choices=("random", "none"),
        help="the clean model sees the marker on a random half of all images, whatever their "
        "class (random, default), or never (none)",
    )
    p.add_argument("--out", default=None, help="folder for accuracy.html and gradcam.html")
