"""Output files: the layout and serial readers (``format``, no MPI), the parallel H5MD writer (``h5md``),
checkpoints (``checkpoint``) and exports for viewers (``viewers``).

The parallel modules are imported on first use, so that ``from mpisim.io import read_frame`` (or
``mpisim.io.format``) does not load the MPI layer.
"""
from .format import output_finished, read_box, read_frame, read_parameters, read_structure_factor

__all__ = ["H5MDWriter", "read_frame", "read_parameters", "read_box", "read_structure_factor", "output_finished",
           "checkpoint_path", "read_checkpoint", "write_checkpoint", "export_gsd", "mdanalysis_universe"]

_LAZY = {"H5MDWriter": "h5md", "checkpoint_path": "checkpoint", "read_checkpoint": "checkpoint",
         "write_checkpoint": "checkpoint", "export_gsd": "viewers", "mdanalysis_universe": "viewers"}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
