# Sourced by the launch scripts: the venv, mpirun flags, and a numba cache keyed by the source code.
# numba's on-disk cache only notices changes to a kernel's own file, not to the functions it inlines from
# other modules; a cache directory per source hash can never serve a stale kernel.
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="${MPISIM_VENV:-$top/.venv}"
py="$venv/bin/python"
src_hash=$(cat "$top"/mpisim/*.py "$top"/mpisim/*/*.py "$top"/analysis/*.py 2>/dev/null | sha1sum | cut -c1-12)
export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-$top/.numba_cache/$src_hash}"
mpi_flags=(--oversubscribe)
[ "$(id -u)" = 0 ] && mpi_flags+=(--allow-run-as-root)
# One numba thread per MPI rank: the ranks already use the cores.
export NUMBA_NUM_THREADS="${NUMBA_NUM_THREADS:-1}"
