"""Download MedMNIST ``.npz`` files into a local cache, verified by MD5.

The files are those of :data:`medviz.data.medmnist.MEDMNIST`.

Files are cached in :func:`cache_dir` (``$MEDVIZ_CACHE`` or
``~/.cache/medviz``). A download goes to a temporary file in the cache folder
and is renamed into place only after its MD5 matches, so the cache never
holds a partial or corrupted file. Without network access,
:class:`~medviz.errors.OfflineError` explains where to put the file by hand.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO

from medviz.data.dataset import Dataset
from medviz.data.medmnist import MEDMNIST, MedmnistSource
from medviz.data.npz import load_npz
from medviz.errors import DataError, OfflineError

_CHUNK = 1024**2


def cache_dir() -> Path:
    """Folder of downloaded files: ``$MEDVIZ_CACHE`` or ``~/.cache/medviz``."""
    env = os.environ.get("MEDVIZ_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "medviz"


# ``download_medmnist`` has a parameter called ``cache_dir``, which hides the function.
_default_cache_dir = cache_dir


def _source_named(name: str) -> MedmnistSource:
    try:
        return MEDMNIST[name]
    except KeyError:
        raise DataError(f"unknown MedMNIST dataset {name!r}; known: {sorted(MEDMNIST)}") from None


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def download_medmnist(
    name: str,
    *,
    cache_dir: Path | None = None,
    url: str | None = None,
    timeout: float = 30.0,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Return the cached MedMNIST file, downloading and verifying it if needed.

    Args:
        name: A key of :data:`MEDMNIST`.
        cache_dir: Folder to cache in (default :func:`cache_dir`).
        url: Alternative address (a mirror); the MD5 is still checked.
        timeout: Seconds to wait for the server on each read.
        progress: Called as ``progress(bytes_done, bytes_total)`` after every
            chunk; ``bytes_total`` is 0 when the server does not say.

    Returns:
        Path of ``<cache>/<name>.npz`` with the official MD5.

    Raises:
        DataError: Unknown name, cache folder not writable, or the downloaded
            file has the wrong MD5 (it is deleted).
        OfflineError: The server could not be reached or the transfer failed.
    """
    source = _source_named(name)
    folder = Path(cache_dir).expanduser() if cache_dir is not None else _default_cache_dir()
    target = folder / f"{name}.npz"
    if target.is_file() and _md5(target) == source.md5:
        return target
    address = url or source.url
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(dir=folder, prefix=f".{name}-", suffix=".part")
    except OSError as exc:
        raise DataError(
            f"cannot write to the cache folder {folder} ({exc}); set MEDVIZ_CACHE"
        ) from exc
    part = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            try:
                md5 = _fetch(address, handle, timeout=timeout, progress=progress)
            except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, resets
                http_error = isinstance(exc, urllib.error.HTTPError)
                reason = exc if http_error else getattr(exc, "reason", None) or exc
                raise OfflineError(
                    f"could not download {name} from {address} ({reason}) (offline?) — put the "
                    f"file at {target} or set MEDVIZ_CACHE to a folder that holds {name}.npz"
                ) from exc
        if md5 != source.md5:
            raise DataError(
                f"downloaded {address} has MD5 {md5}, expected {source.md5}; the file was discarded"
            )
        os.replace(part, target)
    except OSError as exc:  # os.replace failed: cache folder removed or not writable
        raise DataError(f"cannot write {target} ({exc}); set MEDVIZ_CACHE") from exc
    finally:
        part.unlink(missing_ok=True)
    return target


def _fetch(
    address: str,
    handle: IO[bytes],
    *,
    timeout: float,
    progress: Callable[[int, int], None] | None,
) -> str:
    """Stream ``address`` into ``handle``; returns the hex MD5 of what was written."""
    digest = hashlib.md5(usedforsecurity=False)
    with urllib.request.urlopen(address, timeout=timeout) as response:
        total = int(response.headers.get("Content-Length") or 0)
        done = 0
        while chunk := response.read(_CHUNK):
            try:
                handle.write(chunk)
            except OSError as exc:  # a full disk is not a network problem
                raise DataError(f"cannot write {handle.name} ({exc}); set MEDVIZ_CACHE") from exc
            digest.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    return digest.hexdigest()


def load_medmnist(
    name: str,
    *,
    image_size: int | None = None,
    channels: int | None = None,
    seed: int = 0,
    limit_per_class: int | None = None,
    cache_dir: Path | None = None,
) -> Dataset:
    """Load a MedMNIST dataset through the cache (downloading it if needed).

    Args:
        name: A key of :data:`MEDMNIST`.
        image_size: Side length to resize to (default: native 28).
        channels: 1 or 3 (default: the file's).
        seed: Seed of the test split, carved from train if the file lacks one.
        limit_per_class: Keep the first ``K`` images per split and class.
        cache_dir: Cache folder (default :func:`cache_dir`).

    Returns:
        The :class:`Dataset`, named ``"medmnist:<name>"``.

    Raises:
        DataError, OfflineError: As :func:`download_medmnist` and
            :func:`~medviz.data.npz.load_npz`.
    """
    source = _source_named(name)
    path = download_medmnist(name, cache_dir=cache_dir)
    return load_npz(
        path,
        class_names=source.class_names,
        image_size=image_size,
        channels=channels or source.channels,
        seed=seed,
        name=f"medmnist:{name}",
        licence=source.licence,
        limit_per_class=limit_per_class,
    )
