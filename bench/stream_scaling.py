"""Memory and speed as the dataset grows: streamed from a disk cache vs held in memory.

For each size in ``Settings.stream_datasets`` a folder of that many
``stream_source_size``-px JPEG files is generated once under the bench cache
(every file a different synthetic patch, generated at 64 px and upscaled, so
the near-duplicate search finds what it would in real data: nothing). Each
measurement runs in a fresh subprocess (``python -m bench.stream_scaling``) so
that its peak resident memory (``ru_maxrss``) is its own:

* ``index``: ``load_dataset(..., stream=True)`` on a cold cache: the one
  decoding pass and the grouping (done once per dataset);
* ``streamed``: the same call on the warm cache, then training the default
  architecture at 64 px from it (batches read with ``pread``): every later run;
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

_CHUNK = 1000


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

    folder = root / f"distinct-{n_images}-{side}px"
    done = folder / ".complete"
    if done.exists():
        return folder
    rng = np.random.default_rng(0)
    written = 0
    for chunk, start in enumerate(range(0, n_images, _CHUNK)):
        base = generate_microcalc(min(_CHUNK, n_images - start), image_size=64, seed=1000 + chunk)
        for name in base.class_names:
            (folder / name).mkdir(parents=True, exist_ok=True)
        for pixels, label in zip(base.images[..., 0], base.labels, strict=True):
            image = Image.fromarray(pixels).resize((side, side), Image.BILINEAR)
            noisy = np.asarray(image, dtype=np.float32) + rng.normal(0, 2, (side, side))
            out = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
            out.save(folder / base.class_names[label] / f"{written:06d}.jpg", quality=92)
            written += 1
    done.write_text("ok\n")
    return folder


def measure_once(
    folder: Path,
    *,
    stream: bool,
    epochs: int,
    batch_size: int,
    jit_compile: bool | str = "auto",
    cache_dir: Path | None = None,
) -> dict[str, Any]:
    """Load and (``epochs`` > 0) train once in this process; the peak memory is this process's.

    ``jit_compile`` as :class:`~medviz.training.TrainConfig`; :func:`run` passes
    the library's choice, resolved once in the parent (so no child pays the probe).
    ``cache_dir``: where the streamed cache lives (default: the library's).

    Returns:
        ``{"load_s", "epoch_s": [...], "images_per_s", "peak_rss_mib", "val_auc"}``.
    """
    from medviz.data import load_dataset
    from medviz.data.streaming import stream_folder
    from medviz.training import TrainConfig, train

    started = time.perf_counter()
    if stream:
        data = stream_folder(folder, image_size=IMAGE_SIZE, cache_dir=cache_dir)
    else:
        data = load_dataset(folder, image_size=IMAGE_SIZE)
    load_s = time.perf_counter() - started
    if epochs == 0:  # the indexing pass alone
        return {
            "images": len(data),
            "cache": data.extras.get("cache"),
            "load_s": load_s,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        }
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
    folder: Path,
    *,
    stream: bool,
    epochs: int,
    settings: Settings,
    jit_compile: bool,
    cache_dir: Path,
) -> dict[str, Any]:
    argv = [sys.executable, "-m", "bench.stream_scaling", str(folder)]
    argv += ["--epochs", str(epochs), "--batch-size", str(settings.batch_size)]
    argv += ["--jit", "on" if jit_compile else "off", "--cache-dir", str(cache_dir)]
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
        ``{"image_size", "source_size", "rows": {n: {"index": {...}, "streamed": {...},
        "in_memory": {...}}},
        "streamed_rss_ratio", "streamed_throughput_ratio", "targets"}``.
    """
    from medviz.training import TrainConfig, choose_jit

    if settings.jit < 0:  # the library default, probed once here and cached for the children
        config = TrainConfig(image_size=IMAGE_SIZE, batch_size=settings.batch_size)
        jit = choose_jit(config, (IMAGE_SIZE, IMAGE_SIZE, 1), 2, total_steps=1000).jit_compile
    else:
        jit = bool(settings.jit)
    import shutil
    import tempfile

    rows: dict[str, Any] = {}
    for n in settings.stream_datasets:
        folder = dataset_folder(n, side=settings.stream_source_size, root=root)
        cache = Path(tempfile.mkdtemp(prefix="medviz-bench-stream-"))
        try:
            common = {"settings": settings, "jit_compile": jit, "cache_dir": cache}
            epochs = settings.stream_epochs
            rows[str(n)] = {
                "index": _in_subprocess(folder, stream=True, epochs=0, **common),
                "streamed": _in_subprocess(folder, stream=True, epochs=epochs, **common),
                "in_memory": _in_subprocess(folder, stream=False, epochs=epochs, **common),
            }
        finally:
            shutil.rmtree(cache, ignore_errors=True)
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
    parser.add_argument("--cache-dir", type=Path, default=None)
    args = parser.parse_args()
    jit = {"auto": "auto", "on": True, "off": False}[args.jit]
    out = measure_once(
        args.folder,
        stream=args.stream,
        epochs=args.epochs,
        batch_size=args.batch_size,
        jit_compile=jit,
        cache_dir=args.cache_dir,
    )
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
