# Sourced by the launch scripts: the venv, mpirun flags, and where numba caches kernels (mpisim adds a
# subdirectory per hash of its sources, mpisim/core/_jit.py, so a stale kernel is never served).
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="${MPISIM_VENV:-$top/.venv}"
py="$venv/bin/python"
export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-$top/.numba_cache}"
mpi_flags=(--oversubscribe)
[ "$(id -u)" = 0 ] && mpi_flags+=(--allow-run-as-root)
# One numba thread per MPI rank: the ranks already use the cores.
export NUMBA_NUM_THREADS="${NUMBA_NUM_THREADS:-1}"
