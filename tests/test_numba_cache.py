"""numba's disk cache as mpisim names it (mpisim/core/_jit.py): kernels compiled under numba settings that
change their machine code (NUMBA_BOUNDSCHECK, NUMBA_OPT, ...) are never loaded by a process with numba's
defaults, and the other way round."""
import os
import subprocess
import sys

import pytest

# Compiles (or loads) one small kernel; prints its cache hits, misses and the cache directory.
_CACHED_KERNEL = """
import numba
import numpy as np
from mpisim.core import kernels
out = np.zeros(2, np.int64)
kernels.msd_sum(np.ones((2, 3)), np.zeros((2, 3), np.int32), np.zeros((2, 3)), np.full(3, 5.0), 2, 3, out)
print(sum(kernels.msd_sum.stats.cache_hits.values()), sum(kernels.msd_sum.stats.cache_misses.values()),
      numba.config.CACHE_DIR)
"""

_CODEGEN_VARIABLES = ("NUMBA_BOUNDSCHECK", "NUMBA_OPT", "NUMBA_DEBUGINFO", "NUMBA_LOOP_VECTORIZE",
                      "NUMBA_SLP_VECTORIZE", "NUMBA_EXTEND_VARIABLE_LIFETIMES")


def _run(cache_dir, **settings):
    """(cache hits, cache misses, cache directory) of a new process with these NUMBA_* settings."""
    env = {k: v for k, v in os.environ.items() if k not in _CODEGEN_VARIABLES}
    env.update(NUMBA_CACHE_DIR=str(cache_dir), **settings)
    out = subprocess.run([sys.executable, "-c", _CACHED_KERNEL], env=env, capture_output=True, text=True,
                         check=True)
    hits, misses, directory = out.stdout.split()
    return int(hits), int(misses), directory


@pytest.mark.parametrize("settings", [{"NUMBA_BOUNDSCHECK": "1"}, {"NUMBA_OPT": "1"}])
def test_kernels_compiled_with_other_numba_settings_are_not_loaded(tmp_path, settings):
    """A process with numba's defaults compiles its own kernel after one with ``settings`` filled the cache
    (numba's index would hand it the bounds-checked or unoptimised code: the same signature, CPU and
    bytecode), and each then loads its own."""
    other = _run(tmp_path, **settings)
    assert other[:2] == (0, 1)                        # compiled
    default = _run(tmp_path)
    assert default[:2] == (0, 1)                      # compiled again, not loaded from the other settings
    assert default[2] != other[2]
    assert _run(tmp_path)[:2] == (1, 0)               # loaded
    assert _run(tmp_path, **settings)[:2] == (1, 0)   # loaded


def test_default_settings_keep_the_plain_directory(tmp_path):
    """Under numba's defaults the directory is ``<base>/<source hash>`` (no suffix)."""
    from mpisim.core import _jit
    assert _run(tmp_path)[2] == os.path.join(str(tmp_path), _jit.source_hash())
