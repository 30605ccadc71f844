"""The one list of the app's pages: navigation, page links, the benchmark and the tests read it.

``app.py`` builds ``st.navigation`` from :data:`PAGES` (grouped by
:attr:`Page.section`, in this order); pages link to each other with
:func:`path`; ``bench`` and the browser tests visit every page and wait for
its :attr:`Page.heading`; the AppTest suite opens every page of :data:`PAGES`.
A new page is one file in ``pages/`` plus one entry here. No Streamlit import:
the benchmark reads this list without starting the app.
"""

from __future__ import annotations

from dataclasses import dataclass

from medviz.ui import settings


@dataclass(frozen=True)
class Page:
    """One page of the app.

    Attributes:
        key: Short name, the file's stem (``pages/<key>.py``).
        title: Its name in the navigation.
        icon: Material icon of the navigation entry (``:material/<name>:``).
        section: Navigation group (``""``: above the groups).
        heading: The page's title (``st.title``), which the browser tests wait for.
        default: Whether it is the landing page.
    """

    key: str
    title: str
    icon: str
    section: str
    heading: str
    default: bool = False

    @property
    def path(self) -> str:
        """The page script, relative to the repository root (``pages/<key>.py``)."""
        return f"pages/{self.key}.py"


PAGES: tuple[Page, ...] = (
    Page("home", "Home", ":material/home:", "", settings.APP_TITLE, default=True),
    Page("data", "Data", ":material/dataset:", "Data", "Data"),
    Page("augment", "Augment", ":material/auto_awesome:", "Data", "Augment"),
    Page("train", "Train", ":material/model_training:", "Model", "Train"),
    Page("evaluate", "Evaluate", ":material/monitoring:", "Model", "Evaluate"),
    Page("models", "Models", ":material/inventory_2:", "Model", "Models"),
    Page("experiments", "Experiments", ":material/science:", "Model", "Experiments"),
    Page("classify", "Classify", ":material/image_search:", "Use", "Classify"),
    Page("explain", "Explain", ":material/psychology:", "Use", "Explain"),
    Page("explore", "Explore", ":material/scatter_plot:", "Use", "Explore"),
    Page("shortcuts", "Shortcut lab", ":material/biotech:", "Use", "Shortcut lab"),
)
"""Every page, in navigation order."""

HOME: Page = next(p for p in PAGES if p.default)
"""The landing page."""

KEYS: tuple[str, ...] = tuple(p.key for p in PAGES)
"""Every page's key, in navigation order."""


def page(key: str) -> Page:
    """The page called ``key`` (e.g. ``"classify"``).

    Raises:
        ValueError: No page has that key (the message lists the keys).
    """
    for candidate in PAGES:
        if candidate.key == key:
            return candidate
    raise ValueError(f"no page {key!r}; the pages are {list(KEYS)}")


def path(key: str) -> str:
    """The script path of the page called ``key``, for ``st.page_link`` / ``st.switch_page``.

    Raises:
        ValueError: No page has that key.
    """
    return page(key).path


def sections() -> dict[str, list[Page]]:
    """The pages grouped by navigation section, sections and pages in navigation order."""
    grouped: dict[str, list[Page]] = {}
    for entry in PAGES:
        grouped.setdefault(entry.section, []).append(entry)
    return grouped
