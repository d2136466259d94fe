"""Exceptions for user mistakes.

Every error a physicist can cause by pointing the tools at the wrong thing (a missing file, a file
that is not an mpisim run, a run too short for the requested window, too few system sizes for a
collapse) is an :class:`AnalysisError`. The command line turns it into a one-line message on stderr
and exit status 2, without a traceback; programming errors still raise normally.
"""


class AnalysisError(Exception):
    """Base class of user mistakes: bad input files, parameters or data for a measurement."""


class RunFileError(AnalysisError):
    """A path that does not exist, cannot be read, or is not an mpisim run file."""


class WindowError(AnalysisError):
    """A run too short for the requested averaging window or fit range."""


class CollapseError(AnalysisError):
    """Too few system sizes or points for a finite-size-scaling collapse or fit."""


class NotComputedError(AnalysisError, AttributeError):
    """A result property read before ``compute()`` was called."""


class Computed:
    """Mixin of the freud-like result classes: ``compute()`` sets ``_computed``; result properties call
    ``_need(name)``, which raises :class:`NotComputedError` before that."""

    _computed = False

    def _need(self, name):
        if not self._computed:
            raise NotComputedError(f"{type(self).__name__}.{name}: call compute() first")
