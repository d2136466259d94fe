"""The one place where numba decorators are configured (FBPIC habit).

Kernels are compiled with ``cache=True`` so that a second process (a test run, a sweep) loads them from
disk, and without ``fastmath``: reassociation would let the same pair be computed differently in two
places, which breaks the bit-identity across rank counts (docs/parallel.md).

numba's on-disk cache notices changes to a kernel's own file only, not to the functions it inlines from
other modules (a scheme's equation, the box, the fixed-point sums). So the cache lives in a directory
named by a hash of every source file of the package: editing any of them can never serve a stale kernel,
whether the code runs from pytest, a notebook, ``launch/`` or a ``pip install``. The base directory is
``NUMBA_CACHE_DIR`` if set, else ``~/.cache/mpisim/numba``.

numba's cache index keys a kernel by its signature, the CPU and its bytecode only, not by the numba
settings it was compiled under: a process run with ``NUMBA_BOUNDSCHECK=1`` (to check a kernel's indices)
stores bounds-checked machine code that every later process of the same sources loads (a test-filled cache
so made ran the pair pass 20 % and the update 15 % slower, docs/performance.md, "numba cache"). So the
settings that change the machine code and differ from numba's defaults name a directory of their own
(``<hash>-boundscheck1``).
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


# numba settings that change a kernel's machine code but not the key of numba's cache index, with numba's
# defaults (numba/core/config.py). The CPU and its features are in that key already.
CODEGEN_DEFAULTS = {"BOUNDSCHECK": None, "OPT": 3, "DEBUGINFO_DEFAULT": 0, "LOOP_VECTORIZE": 1,
                    "SLP_VECTORIZE": 0, "EXTEND_VARIABLE_LIFETIMES": 0}


def codegen_tag():
    """The numba settings that differ from numba's defaults, as a directory suffix ('' for the defaults):
    e.g. ``-boundscheck1`` under ``NUMBA_BOUNDSCHECK=1``, ``-boundscheck1-opt1`` with ``NUMBA_OPT=1`` too."""
    tag = ""
    for name, default in CODEGEN_DEFAULTS.items():
        value = getattr(numba.config, name, default)
        if getattr(value, "is_opt_max", False):     # NUMBA_OPT=max: level 3 with more passes
            tag += "-optmax"
        elif value != default:
            tag += f"-{name.lower().replace('_', '')}{int(value)}"
    return tag


def _cache_dir():
    base = os.environ.get("NUMBA_CACHE_DIR") or os.path.join(Path.home(), ".cache", "mpisim", "numba")
    return os.path.join(base, source_hash() + codegen_tag())


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
