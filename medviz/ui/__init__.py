"""The Streamlit front end's helpers: the only part of MedViz that imports Streamlit.

* :mod:`~medviz.ui.settings`: environment switches (demo mode, epoch cap, upload limit).
* :mod:`~medviz.ui.state`: the per-session state (models, dataset, jobs) in ``st.session_state``.
* :mod:`~medviz.ui.cache`: every ``st.cache_resource`` / ``st.cache_data`` decision.
* :mod:`~medviz.ui.jobs`: background training jobs, polled by the Train page.
* :mod:`~medviz.ui.predict`: prediction + Grad-CAM + out-of-distribution check for one image.
* :mod:`~medviz.ui.components`: shared display pieces (headers, sidebar, image grids, errors).

Pages in ``pages/`` only wire widgets to these helpers and to :mod:`medviz`.
"""
