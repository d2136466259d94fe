"""Output: H5MD files (``h5md``) written collectively, checkpoints and restart (``checkpoint``)."""
from .checkpoint import checkpoint_path, read_checkpoint, write_checkpoint
from .h5md import H5MDWriter, read_box, read_frame, read_parameters

__all__ = ["H5MDWriter", "read_frame", "read_parameters", "read_box", "checkpoint_path", "read_checkpoint",
           "write_checkpoint"]
