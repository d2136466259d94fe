"""mpisim: distributed simulator of random organization and SGD-like particle dynamics.

Public API: ``Simulation``, ``RunConfig``, ``ConfigError``.
"""
__version__ = "0.1.0"

from .config import ConfigError, RunConfig  # noqa: E402
from .simulation import Simulation  # noqa: E402

__all__ = ["Simulation", "RunConfig", "ConfigError", "__version__"]
