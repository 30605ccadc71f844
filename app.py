"""MedViz web app: ``streamlit run app.py`` (or ``make run``).

The entry point only sets up the page, the navigation and the sidebar; every
page lives in ``pages/`` (listed in :mod:`medviz.ui.pages`) and every helper in
:mod:`medviz.ui`.
"""

from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from medviz.ui import cache, components, pages, settings, state, warmup

STARTED = time.perf_counter()
ASSETS = Path(__file__).resolve().parent / "medviz" / "ui" / "assets"

st.set_page_config(
    page_title=settings.APP_TITLE,
    page_icon=str(ASSETS / "icon.svg"),
    layout="wide",
    initial_sidebar_state="expanded",
    menu_items={"About": f"**{settings.APP_TITLE}** — {settings.TAGLINE}. {settings.DISCLAIMER}"},
)
warmup.start()  # TensorFlow imports in the background while people read the first page
st.logo(str(ASSETS / "logo.svg"), icon_image=str(ASSETS / "icon.svg"), size="large")
components.style()

NAVIGATION = {
    section: [
        st.Page(page.path, title=page.title, icon=page.icon, default=page.default)
        for page in section_pages
    ]
    for section, section_pages in pages.sections().items()
}
navigation = st.navigation(NAVIGATION, expanded=True)

if (navigation.title != pages.HOME.title or state.demo_mode()) and warmup.importing():
    # TensorFlow must not be imported by two threads at once (see medviz.ui.warmup).
    with st.spinner("Starting the deep-learning engine…"):
        warmup.wait()

if state.demo_mode():
    app_state = state.get()
    if not app_state.models:  # a fresh kiosk session starts with the demo ready
        with components.user_errors():
            components.start_demo()
    with st.spinner("Preparing the shipped models…"):
        cache.preload_shipped()

components.sidebar()
try:
    navigation.run()
finally:  # also after st.stop(): how long the server took for this page (MEDVIZ_TIMINGS_FILE)
    components.record_timing(navigation.title, time.perf_counter() - STARTED)
