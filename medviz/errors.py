"""Exception types raised by MedViz.

Every error a user can cause is a subclass of :class:`ValueError`, so callers
that only know the standard library can still catch them, and the message
always names what was received and what is allowed.
"""


class MedvizError(ValueError):
    """Base class of every error a user of MedViz can cause."""


class DataError(MedvizError):
    """An image, folder, archive or dataset could not be read or is unusable."""


class ModelError(MedvizError):
    """A model file, model card or architecture request is unusable."""


class OfflineError(MedvizError):
    """Something had to be downloaded but the network is not reachable."""
