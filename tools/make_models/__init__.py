"""Reproduce every model MedViz ships, and the bench results of those it cannot ship.

``make models`` runs ``python -m tools.make_models``::

    python -m tools.make_models                     # every shipped model (models/…)
    python -m tools.make_models --only brain-mri    # one of them
    python -m tools.make_models --bench             # not-shipped models + cross-dataset table
    python -m tools.make_models --list              # the recipes, as JSON

Shipped models are trained from the real data in ``../shared/datasets`` (see
each ``SOURCE.md``; ``$MEDVIZ_DATA_ROOT`` overrides the location) and written
to ``models/<name>/`` (``model.keras`` + ``card.json`` + ``README.md``). The
data itself never enters the repository. Everything is chosen on the
training and validation splits only; the test split (carved from the
training data, grouped by file digest so duplicates never cross splits) is
evaluated once, after training.

``--bench`` trains the models whose data licences forbid shipping them
(COVID-CT, INFN mammography patches, the Open-i chest-vs-abdomen set) into
``runs/bench-models/`` (git-ignored), evaluates them and the shipped models
across datasets and writes ``bench/results/models.{json,md}``
(:mod:`~tools.make_models.report`). No figure in those files or in the cards is
typed by hand.

This is tooling of the checkout, not part of the library: it uses only the
public API of :mod:`medviz`, writes under an explicit output root (``--root``;
default: the checkout holding this package) and never changes the working
folder. Modules: :mod:`~tools.make_models.recipes` (what is built, where it
lives), :mod:`~tools.make_models.build` (training, packaging, measurements),
:mod:`~tools.make_models.docs` (card files, model READMEs, the README table),
:mod:`~tools.make_models.report` (the bench report),
:mod:`~tools.make_models.cli` (the command line).
"""
