"""Server paths typed by a user: confined to the allowed data folders.

The web app lets a user type the path of a dataset folder, ``.zip`` or
``.npz`` on the server. :func:`confine_path` resolves it (``~``, relative
paths, symbolic links) and refuses anything outside :func:`allowed_roots`, so
``../../etc`` or a symlink pointing out of the data folder cannot read other
files of the server.

``MEDVIZ_DATA_ROOTS`` (folders separated by ``os.pathsep``) sets the allowed
folders; by default it is the registry's data root (``$MEDVIZ_DATA_ROOT`` or
``../shared/datasets``).
"""

from __future__ import annotations

import os
from pathlib import Path

from medviz.data.registry import data_root
from medviz.errors import DataError


def allowed_roots() -> tuple[Path, ...]:
    """The folders typed paths must stay inside (resolved, existing or not)."""
    env = os.environ.get("MEDVIZ_DATA_ROOTS", "")
    parts = [p for p in env.split(os.pathsep) if p.strip()] if env.strip() else [str(data_root())]
    return tuple(Path(p.strip()).expanduser().resolve() for p in parts)


def confine_path(text: str, roots: tuple[Path, ...] | None = None) -> Path:
    """Resolve a typed path and check it lies inside one of ``roots``.

    Args:
        text: The path as typed: absolute, ``~/…``, or relative to the first root.
        roots: Allowed folders (default :func:`allowed_roots`).

    Returns:
        The resolved path (symbolic links followed), inside a root.

    Raises:
        DataError: Empty, contains a ``..`` component, or resolves (possibly
            through a symbolic link) outside every root. The message names
            the path as typed, not the resolved server path.
    """
    roots = allowed_roots() if roots is None else roots
    typed = text.strip()
    if not typed or "\x00" in typed:
        raise DataError(f"{typed!r}: not a usable path; type a folder, .zip or .npz path")
    if ".." in Path(typed).parts or ".." in typed.replace("\\", "/").split("/"):
        raise DataError(
            f"{typed}: paths with '..' are not allowed; type a path inside the data folders"
        )
    path = Path(typed).expanduser()
    if not path.is_absolute():
        if not roots:
            raise DataError(f"{typed}: no data folder is configured (MEDVIZ_DATA_ROOTS)")
        path = roots[0] / path
    resolved = path.resolve()
    if not any(resolved == root or resolved.is_relative_to(root) for root in roots):
        raise DataError(
            f"{typed}: outside the allowed data folders; only paths inside the folders set by "
            "MEDVIZ_DATA_ROOTS (default: the MedViz data root) can be loaded"
        )
    return resolved
