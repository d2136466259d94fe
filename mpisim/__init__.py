"""mpisim: distributed simulator of random organization and SGD-like particle dynamics.

Public API: ``Simulation``, ``RunConfig``, ``ConfigError``.
"""
__version__ = "0.1.0"

from .config import ConfigError, RunConfig  # noqa: E402

__all__ = ["Simulation", "RunConfig", "ConfigError", "__version__"]


def __getattr__(name):
    # Simulation (and with it the MPI layer) loads on first use, so `import analysis` or
    # `import mpisim.core` never loads mpisim.parallel.
    if name == "Simulation":
        from .simulation import Simulation
        return Simulation
    raise AttributeError(f"module 'mpisim' has no attribute {name!r}")
