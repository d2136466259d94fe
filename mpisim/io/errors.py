"""Write errors made loud (docs/file-format.md, "Write errors").

HDF5 writes cached chunks back when an h5py object is deallocated, and h5py reports a failure there only
through ``sys.unraisablehook`` ("Exception ignored in ... file write failed ... errno = 28"): the run would
go on, mark the file finished, and leave zeros where frames should be. ``watch()`` installs a hook that
records such failures, and ``check(path)`` (called after every snapshot, flush and checkpoint) raises
``WriteError`` naming the file and the OS error. No MPI here.
"""
import errno as errno_codes
import os
import re
import sys

_pending = []          # messages of write failures reported through sys.unraisablehook
_previous_hook = None


class WriteError(OSError):
    """A write to an output or checkpoint failed; the message names the file and the OS error."""


def describe(exc, path):
    """'PATH: write failed: [Errno 28] No space left on device' from an h5py/HDF5 error message."""
    text = str(exc)
    m = re.search(r"errno = (\d+)", text)
    name = re.search(r"filename = '([^']*)'", text)
    where = name.group(1) if name else str(path)
    if m:
        code = int(m.group(1))
        return f"{where}: write failed: [Errno {code}] {os.strerror(code)} ({errno_codes.errorcode.get(code, '?')})"
    if isinstance(exc, OSError) and exc.errno:
        return f"{where}: write failed: [Errno {exc.errno}] {os.strerror(exc.errno)}"
    first = text.splitlines()[0] if text else type(exc).__name__
    cause = _likely_cause(where)
    if cause:   # parallel HDF5 does not pass the errno on: the error that the file's state shows
        code, why = cause
        return (f"{where}: write failed: [Errno {code}] {os.strerror(code)} (parallel HDF5 passes no errno; "
                f"{why}; HDF5: {first})")
    return f"{where}: write failed: {first}"


#: below this much free space, a failed write without an errno is taken for a full file system
FULL_BYTES = 1 << 20


def _likely_cause(where):
    """(errno, what shows it) of a failed write to ``where`` when HDF5 gave no errno: ENOSPC if its file
    system has less than FULL_BYTES free, EFBIG if a file-size limit (``ulimit -f``) is set and the file
    is within FULL_BYTES of it; else None."""
    try:
        import shutil
        free = shutil.disk_usage(os.path.dirname(os.path.abspath(where))).free
    except OSError:
        free = None
    if free is not None and free < FULL_BYTES:
        return errno_codes.ENOSPC, f"{free} bytes free on its file system"
    try:
        import resource
        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        size = os.path.getsize(where)
    except (ImportError, OSError, ValueError):
        return None
    if limit != resource.RLIM_INFINITY and size + FULL_BYTES >= limit:
        return errno_codes.EFBIG, f"the file has {size} bytes, the file-size limit (ulimit -f) is {limit}"
    return None


def _hook(unraisable):
    exc = unraisable.exc_value
    if exc is not None and "write failed" in str(exc):
        _pending.append(exc)
        return                      # reported by check() as one line, not as a traceback per chunk
    (_previous_hook or sys.__unraisablehook__)(unraisable)


def watch():
    """Record HDF5 write failures that h5py can only report as unraisable exceptions (idempotent)."""
    global _previous_hook
    if sys.unraisablehook is not _hook:
        _previous_hook = sys.unraisablehook
        sys.unraisablehook = _hook


def check(path):
    """Raise WriteError for the first write failure recorded since the last check (and forget them)."""
    if _pending:
        exc = _pending[0]
        _pending.clear()
        raise WriteError(describe(exc, path))


class writing:
    """``with writing(path):`` around writes: h5py errors and recorded failures become WriteError."""

    def __init__(self, path):
        self.path = str(path)

    def __enter__(self):
        watch()
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is not None and isinstance(exc, (OSError, RuntimeError)) and not isinstance(exc, WriteError):
            _pending.clear()
            raise WriteError(describe(exc, self.path)) from None
        if exc is None:
            check(self.path)
        return False
