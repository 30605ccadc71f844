"""Models on the Hugging Face Hub: ``hf://user/repo`` ids and their download."""

from __future__ import annotations

import re
from pathlib import Path

from medviz.errors import ModelError, OfflineError
from medviz.store.card import CARD_FILE, README_FILE

HF_PREFIX = "hf://"
_HF_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


def validate_repo_id(repo_id: str) -> str:
    """Return ``repo_id`` if it looks like ``user/repo``, else raise :class:`ModelError`."""
    if not isinstance(repo_id, str) or not _HF_REPO_ID.fullmatch(repo_id) or ".." in repo_id:
        raise ModelError(
            f"invalid Hugging Face repo id {repo_id!r}; expected 'user/repo' made of letters, "
            "digits, '.', '_' and '-'"
        )
    return repo_id


def download_from_hub(repo_id: str, *, revision: str | None = None) -> Path:
    """Fetch a model repo's ``.keras``, card and README (only those) into the HF cache.

    Works offline from a pre-populated cache (``HF_HUB_OFFLINE=1`` or no
    network). Nothing from the repo is executed.

    Raises:
        ModelError: Invalid repo id or no ``.keras`` file in the repo.
        OfflineError: Not cached and not reachable.
    """
    validate_repo_id(repo_id)
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    patterns = ["*.keras", CARD_FILE, README_FILE, "config.json"]
    try:
        folder = snapshot_download(repo_id, revision=revision, allow_patterns=patterns)
    except LocalEntryNotFoundError:
        raise OfflineError(
            f"Hugging Face model {repo_id!r} is not in the local cache and the Hub cannot be "
            "reached (offline?). Download it once while online, or load a local .keras file."
        ) from None
    except HfHubHTTPError as err:
        raise ModelError(f"the Hub refused {repo_id!r}: {str(err).splitlines()[0]}") from None
    except OSError as err:
        raise OfflineError(f"could not reach the Hugging Face Hub for {repo_id!r}: {err}") from None
    if not list(Path(folder).glob("*.keras")):
        raise ModelError(f"Hugging Face repo {repo_id!r} has no .keras file")
    return Path(folder)
