"""One page registry: pages/, app.py's navigation, the benchmark and the tests agree."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit
from app_helpers import APP, ROOT, TIMEOUT, assert_clean

from medviz.ui import pages
from medviz.ui.pages import PAGES


def test_every_page_file_is_registered_once():
    files = sorted(p.stem for p in (ROOT / "pages").glob("*.py"))
    assert sorted(pages.KEYS) == files
    assert len(set(pages.KEYS)) == len(PAGES) == len({p.title for p in PAGES})
    assert [p for p in PAGES if p.default] == [pages.HOME]
    assert pages.path("evaluate") == "pages/evaluate.py"


def test_unknown_page_key_is_a_value_error():
    with pytest.raises(ValueError, match="no page 'evalute'; the pages are"):
        pages.page("evalute")


def test_app_navigation_is_the_registry(monkeypatch):
    from streamlit.testing.v1 import AppTest

    seen: list[dict] = []
    real = streamlit.navigation

    def recording(sections, **options):
        seen.append(sections)
        return real(sections, **options)

    monkeypatch.setattr(streamlit, "navigation", recording)
    app = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    app.run()
    assert_clean(app)
    assert seen, "app.py builds its navigation with st.navigation"
    shown = [
        (section, page.title, page.icon, page._default)
        for section, entries in seen[-1].items()
        for page in entries
    ]
    assert shown == [(p.section, p.title, p.icon, p.default) for p in PAGES]
    scripts = [Path(page._page).as_posix() for entries in seen[-1].values() for page in entries]
    assert len(scripts) == len(PAGES)
    assert all(s.endswith(p.path) for s, p in zip(scripts, PAGES, strict=True)), scripts


def test_browser_harness_visits_the_registry_pages():
    from tools.browser import PAGES as BROWSER_PAGES

    assert list(BROWSER_PAGES) == [(p.title, p.heading) for p in PAGES]
