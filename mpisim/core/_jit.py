"""The one place where numba decorators are configured (FBPIC habit).

Kernels are compiled with ``cache=True`` so that a second process (a test run, a sweep) loads them from
disk, and without ``fastmath``: reassociation would let the same pair be computed differently in two
places, which breaks the bit-identity across rank counts (docs/parallel.md).

numba's on-disk cache notices changes to a kernel's own file only, not to the functions it inlines from
other modules (a scheme's equation, the box, the fixed-point sums). So the cache lives in a directory
named by a hash of every source file of the package: editing any of them can never serve a stale kernel,
whether the code runs from pytest, a notebook, ``launch/`` or a ``pip install``. The base directory is
``NUMBA_CACHE_DIR`` if set, else ``~/.cache/mpisim/numba``.
"""
import functools
import hashlib
import os
from pathlib import Path

import numba


def source_hash():
    """SHA-1 (12 hex digits) of the package's Python sources, in a fixed order."""
    package = Path(__file__).resolve().parents[1]
    h = hashlib.sha1()
    for path in sorted(package.rglob("*.py")):
        h.update(path.relative_to(package).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def _cache_dir():
    base = os.environ.get("NUMBA_CACHE_DIR") or os.path.join(Path.home(), ".cache", "mpisim", "numba")
    return os.path.join(base, source_hash())


numba.config.CACHE_DIR = _cache_dir()

njit = numba.njit(cache=True, nogil=True, error_model="numpy")
inline = numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
# loops over particle chunks with numba.prange (the S(k) direct sums, core/sofk.py); threads: NUMBA_NUM_THREADS
njit_parallel = numba.njit(cache=True, nogil=True, error_model="numpy", parallel=True)
# Functions generated from source at import (the scheme dispatch, mpisim/core/schemes/dispatch.py) have no
# file for the disk cache; they are only ever inlined into the cached kernels above them.
inline_generated = numba.njit(nogil=True, error_model="numpy", inline="always")


def per_scheme(factory):
    """A kernel compiled once per scheme: ``factory(scheme)`` returns an ``njit`` closure over the scheme id
    that calls the kernel's body (an ``njit`` function whose first argument is the scheme). numba types a
    closure's integer as a literal and compiles the body once per literal, and the generated dispatch
    (schemes/dispatch.py) resolves a literal id to that scheme's hooks alone, so the loops hold only
    them. Called as ``kernel(scheme, *args)``; ``kernel.for_scheme(scheme)`` is the closure.

    Why: with the id a run-time value every scheme's hooks were compiled into every loop, and each scheme
    added slowed all the others (16 schemes cost the dense pair pass 6-15 % and apply_step 30 %) and
    compiled slower (docs/performance.md). numba's disk cache keys a closure by its frozen values (here the
    id alone: the body is a module global, not a closure variable), so each scheme's kernel is cached
    apart."""
    build = functools.cache(factory)

    @functools.wraps(factory)
    def kernel(scheme, *args):
        return build(int(scheme))(*args)

    kernel.for_scheme = lambda scheme: build(int(scheme))
    return kernel
