"""Front-end-neutral services: what the app pages and the CLI both call (no Streamlit).

* :mod:`medviz.services.predict`: one image in, calibrated answer, Grad-CAM and
  trust warnings (out-of-distribution, DICOM modality) out.
* :mod:`medviz.services.datasets`: a dataset at a model's input size, labels in
  the model's class order.
* :mod:`medviz.services.uploads`: uploaded bytes into an image or a dataset.
* :mod:`medviz.services.jobs`: background training jobs (the repeat loop of
  :func:`medviz.pipeline.train_repeats`, with stop), polled by a front end.
"""
