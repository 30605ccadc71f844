"""Front-end-neutral services: what the app pages and the CLI both call.

* :mod:`medviz.services.predict`: one image in, calibrated answer, Grad-CAM and
  trust warnings (out-of-distribution, DICOM modality) out.
"""
