"""Models on the Hugging Face Hub: ``hf://user/repo[@revision]`` ids, download and push.

Everything goes through ``huggingface_hub`` (``snapshot_download``, ``HfApi``)
with its own token handling: ``HF_TOKEN`` or the ``hf auth login`` cache.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from medviz.errors import ModelError, OfflineError
from medviz.store.card import CARD_FILE, README_FILE

HF_PREFIX = "hf://"
_REVISION = re.compile(r"^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")
_HF_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


def parse_hub_source(text: str) -> tuple[str, str | None]:
    """``"hf://user/repo@v1.0"`` → ``("user/repo", "v1.0")``; the revision is optional.

    The revision (branch, tag or commit id) follows ``@`` as in
    ``huggingface_hub``'s ``hf://`` paths.

    Raises:
        ModelError: Not an ``hf://`` source, an invalid repo id or an empty revision.
    """
    if not text.startswith(HF_PREFIX):
        raise ModelError(f"expected 'hf://user/repo[@revision]', got {text!r}")
    repo_id, at, revision = text[len(HF_PREFIX) :].partition("@")
    validate_repo_id(repo_id)
    if at and not _REVISION.fullmatch(revision):
        raise ModelError(
            f"invalid Hub revision {revision!r}; expected a branch, tag or commit id "
            "(letters, digits, '.', '_', '-', '/')"
        )
    return repo_id, (revision or None)


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
        at = f" at revision {revision!r}" if revision else ""
        raise OfflineError(
            f"Hugging Face model {repo_id!r}{at} is not in the local cache and the Hub cannot "
            "be reached (offline?). Download it once while online, or load a local .keras file."
        ) from None
    except HfHubHTTPError as err:
        raise ModelError(f"the Hub refused {repo_id!r}: {str(err).splitlines()[0]}") from None
    except OSError as err:
        raise OfflineError(f"could not reach the Hugging Face Hub for {repo_id!r}: {err}") from None
    if not list(Path(folder).glob("*.keras")):
        raise ModelError(f"Hugging Face repo {repo_id!r} has no .keras file")
    return Path(folder)


# --- pushing a model folder ----------------------------------------------------------------------

PUSH_PATTERNS = ("*.keras", CARD_FILE, README_FILE)


@dataclass(frozen=True)
class HubToken:
    """Where the Hugging Face token comes from, for display (never the token itself).

    Attributes:
        found: Whether a token is available.
        source: ``"HF_TOKEN environment variable"``, ``"huggingface_hub login cache (<path>)"``
            or an explanation of how to provide one.
        masked: The token with all but its prefix and last four characters hidden
            (``"hf_…wxyz"``), empty when none.
    """

    found: bool
    source: str
    masked: str


@dataclass(frozen=True)
class PushResult:
    """What :func:`push_to_hub` uploaded.

    Attributes:
        repo_id: ``user/name``.
        repo_url: The repo's page.
        revision: Branch pushed to (``"main"`` by default).
        commit_url: The commit's page.
        commit_oid: The commit id.
        files: Files uploaded, relative to the folder.
        private: Whether the repo was created private (an existing repo keeps its visibility).
    """

    repo_id: str
    repo_url: str
    revision: str
    commit_url: str
    commit_oid: str
    files: tuple[str, ...]
    private: bool

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        return {**asdict(self), "files": list(self.files)}


def _mask(token: str) -> str:
    return f"{token[:3]}…{token[-4:]}" if len(token) > 10 else "…"


def hub_token() -> HubToken:
    """The token ``huggingface_hub`` would use: ``HF_TOKEN``, else the ``hf auth login`` cache.

    MedViz never asks for a token in a form: set ``HF_TOKEN`` in the server's
    environment or run ``hf auth login`` (``huggingface-cli login``) once.
    """
    from huggingface_hub import constants, get_token

    token = get_token()
    if not token:
        return HubToken(
            found=False,
            source="no token: set HF_TOKEN or run `hf auth login` (huggingface-cli login) "
            "on the machine that runs MedViz",
            masked="",
        )
    if os.environ.get("HF_TOKEN", "").strip() == token:
        source = "HF_TOKEN environment variable"
    elif Path(constants.HF_TOKEN_PATH).is_file():
        source = f"huggingface_hub login cache ({constants.HF_TOKEN_PATH})"
    else:
        source = "huggingface_hub"
    return HubToken(found=True, source=source, masked=_mask(token))


def check_card_metadata(readme: str) -> dict[str, object]:
    """Parse a README's front matter as the Hub does and check what the Hub needs.

    Offline check with ``huggingface_hub.ModelCard`` / ``ModelCardData``: the
    YAML must parse, ``license`` must be set (with ``license_name`` when it is
    ``other``), ``library_name`` and ``pipeline_tag`` present, and every
    ``model-index`` result must name its task, dataset, metric type and a
    numeric value (what the Hub's metrics widget reads).

    Args:
        readme: The README text.

    Returns:
        The metadata as a dict (``ModelCardData.to_dict``).

    Raises:
        ModelError: The front matter is missing, unparsable or incomplete.
    """
    from huggingface_hub import ModelCard as HubModelCard

    if not readme.startswith("---"):
        raise ModelError("README.md has no YAML front matter ('---' block) for the Hub")
    try:
        data = HubModelCard(readme, ignore_metadata_errors=False).data
    except Exception as err:  # yaml and huggingface_hub raise several types
        raise ModelError(f"README.md front matter is not valid Hub metadata: {err}") from None
    problems = []
    if not data.license:
        problems.append("no license")
    elif data.license == "other" and not data.get("license_name"):
        problems.append("license 'other' without license_name")
    for key in ("library_name", "pipeline_tag"):
        if not data.get(key):
            problems.append(f"no {key}")
    for result in data.eval_results or []:
        if not (result.task_type and result.dataset_type and result.metric_type):
            problems.append("a model-index result without task, dataset or metric type")
        if not isinstance(result.metric_value, int | float):
            problems.append(f"model-index {result.metric_type} value is not a number")
    if problems:
        raise ModelError(f"README.md metadata is incomplete for the Hub: {'; '.join(problems)}")
    return data.to_dict()


def push_to_hub(
    folder: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
) -> PushResult:
    """Upload a model folder (``.keras``, ``card.json``, ``README.md``) to the Hub.

    Creates the repo when missing (``HfApi.create_repo``, ``exist_ok``), the
    branch when ``revision`` names a new one, then one commit with
    ``HfApi.upload_folder``. The token is ``huggingface_hub``'s own
    (:func:`hub_token`); the card's metadata is checked first
    (:func:`check_card_metadata`), so a refused card costs no upload.

    Args:
        folder: A model folder.
        repo_id: ``user/name`` (or ``org/name``).
        private: Create the repo private.
        revision: Branch to commit to (default ``main``).
        commit_message: Default ``"Upload <name> with MedViz <version>"``.

    Raises:
        ModelError: Not a model folder, invalid id or card, no token, or the Hub refused
            (the message is the Hub's first line).
        OfflineError: The Hub cannot be reached (or ``HF_HUB_OFFLINE`` is set).
    """
    import medviz

    validate_repo_id(repo_id)
    folder = Path(folder)
    card_file = folder / CARD_FILE
    if not folder.is_dir() or not card_file.is_file() or not list(folder.glob("*.keras")):
        raise ModelError(
            f"{folder} is not a model folder: it needs a .keras file and {CARD_FILE} "
            "(as `medviz train` or the Models page's download writes them)"
        )
    from medviz.store.card import ModelCard

    try:
        card = ModelCard.from_dict(json.loads(card_file.read_text(encoding="utf-8")))
    except json.JSONDecodeError as err:
        raise ModelError(f"{card_file} is not valid JSON: {err}") from None
    readme_file = folder / README_FILE
    readme = readme_file.read_text(encoding="utf-8") if readme_file.is_file() else ""
    if not readme:
        raise ModelError(
            f"{folder} has no {README_FILE} (the Hub's model card); save the model again "
            "with MedViz, which writes it"
        )
    check_card_metadata(readme)

    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    if constants.HF_HUB_OFFLINE:
        raise OfflineError(
            "cannot push to the Hugging Face Hub: offline mode is on (HF_HUB_OFFLINE=1)"
        )
    token = hub_token()
    if not token.found:
        raise ModelError(f"cannot push to the Hugging Face Hub: {token.source}")
    api = HfApi()
    branch = revision or constants.DEFAULT_REVISION
    message = commit_message or f"Upload {card.name} with MedViz {medviz.__version__}"
    try:
        # private=None leaves the Hub's default (and an existing repo's visibility) alone.
        repo_url = api.create_repo(
            repo_id, repo_type="model", private=True if private else None, exist_ok=True
        )
        if branch != constants.DEFAULT_REVISION:
            api.create_branch(repo_id, branch=branch, repo_type="model", exist_ok=True)
        commit = api.upload_folder(
            folder_path=str(folder),
            repo_id=repo_id,
            repo_type="model",
            revision=branch,
            commit_message=message,
            allow_patterns=list(PUSH_PATTERNS),
        )
    except OfflineModeIsEnabled:
        raise OfflineError(
            "cannot push to the Hugging Face Hub: offline mode is on (HF_HUB_OFFLINE=1)"
        ) from None
    except HfHubHTTPError as err:
        raise ModelError(f"the Hub refused the push to {repo_id!r}: {_first_line(err)}") from None
    except ValueError as err:  # upload_folder: the Hub's /api/validate-yaml refused the card
        text = " ".join(str(err).split())[:300]
        raise ModelError(f"the Hub refused the model card of {repo_id!r}: {text}") from None
    except (OSError, ConnectionError) as err:
        raise OfflineError(
            f"cannot reach the Hugging Face Hub ({constants.ENDPOINT}) to push {repo_id!r}: "
            f"{_first_line(err)}"
        ) from None
    except Exception as err:
        if type(err).__module__.startswith("httpx"):  # connect/timeout errors of the transport
            raise OfflineError(
                f"cannot reach the Hugging Face Hub ({constants.ENDPOINT}) to push {repo_id!r}: "
                f"{_first_line(err)}"
            ) from None
        raise
    files = tuple(
        sorted(
            p.name
            for p in folder.iterdir()
            if p.is_file() and any(fnmatch.fnmatch(p.name, pat) for pat in PUSH_PATTERNS)
        )
    )
    return PushResult(
        repo_id=repo_id,
        repo_url=str(repo_url),
        revision=branch,
        commit_url=str(commit.commit_url),
        commit_oid=str(commit.oid),
        files=files,
        private=private,
    )


def _first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0][:300]
