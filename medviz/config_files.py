"""Reading the JSON and YAML files users write: experiments, recipes, training configs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from medviz.errors import DataError


def read_mapping(path: str | Path, *, what: str = "") -> dict[str, Any]:
    """The mapping a JSON (``.json``) or YAML (any other suffix) file holds.

    Args:
        path: The file.
        what: What the file is, for the error message (e.g. ``"training config"``).

    Raises:
        DataError: Unreadable, not JSON/YAML, or not a mapping.
    """
    import yaml

    file = Path(path)
    label = f"the {what} {file}" if what else str(file)
    try:
        text = file.read_text(encoding="utf-8")
        values = json.loads(text) if file.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as error:
        raise DataError(f"cannot read {label}: {error}") from None
    if not isinstance(values, dict):
        raise DataError(f"{label} must hold a mapping, got {type(values).__name__}")
    return values
