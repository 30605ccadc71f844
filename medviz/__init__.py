"""MedViz: train, test and explain CNNs on medical images.

The package never imports Streamlit outside :mod:`medviz.ui`, and importing
``medviz`` itself is cheap: TensorFlow is imported only by the modules that
need it (``zoo``, ``training``, ``store``, ``explain``).
"""

import os

# TensorFlow's C++ start-up notices (CUDA probing, CPU features) are noise for our users.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from medviz.errors import DataError, MedvizError, ModelError

__version__ = "0.1.0"
__all__ = ["DataError", "MedvizError", "ModelError", "__version__"]
