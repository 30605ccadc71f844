"""MedViz speed benchmarks: ``python -m bench`` (or ``make bench``).

One run measures, side by side on the same machine, data and seeds:

* :mod:`bench.throughput`: training images/s of the default architecture through
  MedViz's ``tf.data`` pipeline, through a faithful re-implementation of the
  source work's per-image ``ImageDataGenerator`` feeding ``fit``
  (:mod:`bench.notebook`), and the compute bound (a compiled train step on
  tensors already in memory);
* :mod:`bench.quality`: seconds to validation AUC 0.95 on the embedded data,
  and the recorded training time of the shipped pneumonia model;
* :mod:`bench.latency`: warm decode + prediction + Grad-CAM of one uploaded
  224×224 PNG through the app's predict path, against the naive way;
* :mod:`bench.explanations`: the cost of every explanation method;
* :mod:`bench.app_speed`: app start-up and page renders in Chromium, and the
  cost of importing TensorFlow;
* :mod:`bench.memory`: peak resident memory of the app and of a training run;
* :mod:`bench.scaling`: throughput and latency at 28, 64, 128 and 224 px.

Results go to ``bench/results/latest.json`` and ``latest.md``; a full run
also rewrites the README's "Speed" section. Every figure is computed by the
run that writes the file.

Beside ``python -m bench``: ``python -m bench.explanations_readme`` measures
the explanation stack's quality (pointing game, trust checks, real lesions) into
``bench/results/explain.json`` and the README's explanation block, and
:mod:`bench.reference_cam` is the tf-keras-vis reference of the CAMs (the
naive baseline here and the tests' cross-check).
"""
