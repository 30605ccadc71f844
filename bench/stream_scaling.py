"""Memory and speed as the dataset grows: streamed from a disk cache vs held in memory.

For each size in ``Settings.stream_datasets`` a folder of that many
``stream_source_size``-px JPEG files is generated once (distinct images: 500
synthetic patches, each file a different flip, shift and noise of one of
them) under the bench cache. Each measurement trains the default
architecture at 64 px in a fresh subprocess (``python -m bench.stream_scaling``)
so that its peak resident memory (``ru_maxrss``) is its own:

* ``streamed``: ``load_dataset(..., stream=True)`` (one decoding pass into
  the disk cache, batches read with ``pread``), then training;
* ``in_memory``: ``load_dataset(...)`` (every image decoded into one array), then training.

The timed epoch is the last one (the first also builds the cache and traces
the graph). The claim checked: the streamed run's peak memory at the largest
size stays within 20 % of the smallest, and its throughput within 10 %.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import Settings

IMAGE_SIZE = 64
"""Side the models train at (the files are larger)."""

_DISTINCT = 500


def dataset_folder(n_images: int, *, side: int, root: Path) -> Path:
    """A ``root/<class>/<i>.jpg`` folder of ``n_images`` distinct files, made once.

    Args:
        n_images: Images in all (half per class).
        side: Side of every file in pixels.
        root: Where the generated folders live.

    Returns:
        The folder (reused when complete).
    """
    from PIL import Image

    from medviz.data.synthetic import generate_microcalc

    folder = root / f"stream-{n_images}-{side}px"
    done = folder / ".complete"
    if done.exists():
        return folder
    base = generate_microcalc(_DISTINCT, image_size=64, seed=11)
    rng = np.random.default_rng(0)
    for name in base.class_names:
        (folder / name).mkdir(parents=True, exist_ok=True)
    by_class = [np.flatnonzero(base.labels == k) for k in range(base.n_classes)]
    for i in range(n_images):
        label = i % base.n_classes
        source = base.images[rng.choice(by_class[label])][..., 0]
        image = Image.fromarray(source).resize((side, side), Image.BILINEAR)
        pixels = np.asarray(image, dtype=np.int16)
        if rng.random() < 0.5:
            pixels = pixels[:, ::-1]
        pixels = np.roll(pixels, tuple(rng.integers(-6, 7, 2)), axis=(0, 1))
        pixels = pixels + rng.normal(0, 3, pixels.shape)
        out = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        out.save(folder / base.class_names[label] / f"{i:06d}.jpg", quality=92)
    done.write_text("ok\n")
    return folder


def measure_once(
    folder: Path, *, stream: bool, epochs: int, batch_size: int, jit_compile: bool | str = "auto"
) -> dict[str, Any]:
    """Load and train once in this process; the peak memory is this process's.

    ``jit_compile`` as :class:`~medviz.training.TrainConfig`; :func:`run` passes
    the library's choice, resolved once in the parent (so no child pays the probe).

    Returns:
        ``{"load_s", "epoch_s": [...], "images_per_s", "peak_rss_mib", "val_auc"}``.
    """
    from medviz.data import load_dataset
    from medviz.training import TrainConfig, train

    started = time.perf_counter()
    data = load_dataset(folder, image_size=IMAGE_SIZE, stream=stream)
    load_s = time.perf_counter() - started
    marks = [time.perf_counter()]

    def on_epoch_end(_progress) -> None:
        marks.append(time.perf_counter())

    config = TrainConfig(
        epochs=epochs,
        image_size=IMAGE_SIZE,
        batch_size=batch_size,
        seed=0,
        jit_compile=jit_compile,
    )
    result = train(config, data, on_epoch_end=on_epoch_end)
    epoch_s = list(np.diff(marks))
    n_train = int((data.splits == "train").sum())
    return {
        "images": len(data),
        "train_images": n_train,
        "cache": data.extras.get("cache"),
        "load_s": load_s,
        "epoch_s": epoch_s,
        "images_per_s": n_train / epoch_s[-1],
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "val_auc": float(result.history["val_auc"][-1]),
        "jit_compile": result.config.jit_compile,
    }


def _in_subprocess(
    folder: Path, *, stream: bool, settings: Settings, jit_compile: bool
) -> dict[str, Any]:
    argv = [sys.executable, "-m", "bench.stream_scaling", str(folder)]
    argv += ["--epochs", str(settings.stream_epochs), "--batch-size", str(settings.batch_size)]
    argv += ["--jit", "on" if jit_compile else "off"]
    if stream:
        argv.append("--stream")
    done = subprocess.run(argv, capture_output=True, text=True, check=False, env=os.environ)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip()[-800:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(settings: Settings, *, root: Path) -> dict[str, Any]:
    """The dataset-size part of the scaling section.

    Args:
        settings: Sizes (``stream_datasets``, ``stream_source_size``, ``stream_epochs``).
        root: Folder for the generated datasets (kept between runs).

    Returns:
        ``{"image_size", "source_size", "rows": {n: {"streamed": {...}, "in_memory": {...}}},
        "streamed_rss_ratio", "streamed_throughput_ratio", "targets"}``.
    """
    from medviz.training import TrainConfig, choose_jit

    if settings.jit < 0:  # the library default, probed once here and cached for the children
        config = TrainConfig(image_size=IMAGE_SIZE, batch_size=settings.batch_size)
        jit = choose_jit(config, (IMAGE_SIZE, IMAGE_SIZE, 1), 2, total_steps=1000).jit_compile
    else:
        jit = bool(settings.jit)
    rows: dict[str, Any] = {}
    for n in settings.stream_datasets:
        folder = dataset_folder(n, side=settings.stream_source_size, root=root)
        rows[str(n)] = {
            way: _in_subprocess(
                folder, stream=way == "streamed", settings=settings, jit_compile=jit
            )
            for way in ("streamed", "in_memory")
        }
    small, large = (rows[str(n)]["streamed"] for n in (min(rows, key=int), max(rows, key=int)))
    rss_ratio = large["peak_rss_mib"] / small["peak_rss_mib"]
    speed_ratio = large["images_per_s"] / small["images_per_s"]
    return {
        "image_size": IMAGE_SIZE,
        "source_size": settings.stream_source_size,
        "rows": rows,
        "streamed_rss_ratio": rss_ratio,
        "streamed_throughput_ratio": speed_ratio,
        "targets": {
            "streamed_rss_ratio<=1.2": rss_ratio <= 1.2,
            "streamed_throughput_ratio>=0.9": speed_ratio >= 0.9,
        },
    }


def _main() -> int:
    import argparse

    from medviz.quiet import silence_tensorflow_startup

    silence_tensorflow_startup()
    parser = argparse.ArgumentParser(description="one streaming-scaling measurement")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--jit", choices=("auto", "on", "off"), default="auto")
    args = parser.parse_args()
    jit = {"auto": "auto", "on": True, "off": False}[args.jit]
    out = measure_once(
        args.folder,
        stream=args.stream,
        epochs=args.epochs,
        batch_size=args.batch_size,
        jit_compile=jit,
    )
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
