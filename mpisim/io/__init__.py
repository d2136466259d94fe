"""Output: H5MD files (``h5md``) written collectively, checkpoints and restart."""
from .h5md import H5MDWriter, read_frame, read_parameters

__all__ = ["H5MDWriter", "read_frame", "read_parameters"]
