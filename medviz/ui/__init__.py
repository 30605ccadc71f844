"""The Streamlit front end's glue: the only part of MedViz that imports Streamlit.

* :mod:`~medviz.ui.pages`: the page registry (navigation, page links, bench and tests).
* :mod:`~medviz.ui.settings`: environment switches (demo mode, epoch cap, upload limit).
* :mod:`~medviz.ui.state`: the per-session state (models, dataset, jobs, kept page results)
  in ``st.session_state``.
* :mod:`~medviz.ui.cache`: every ``st.cache_resource`` / ``st.cache_data`` decision.
* :mod:`~medviz.ui.components`: shared display pieces (headers, sidebar, image grids, errors).

Pages in ``pages/`` only wire widgets to these helpers, to the front-end-neutral
services of :mod:`medviz.services` (predict, uploads, datasets for a model,
background training jobs) and to :mod:`medviz`.
"""
