"""Communicator helpers: the world communicator (or a serial stand-in), exact reductions, rank-0
decisions, job abort, the rank grid and the row exchanges of start-up and output.

Every function takes the communicator as an argument (no module-level world communicator); ``mpi4py`` is
imported only inside the functions that need it, so a serial process never initialises MPI.
"""
import numpy as np

from ..core.cells import CELL_MARGIN


class SerialComm:
    """The subset of an mpi4py communicator used here, for a single process without mpi4py."""

    rank = 0
    size = 1

    def allreduce(self, value, op=None):
        return value

    def Allreduce(self, sendbuf, recvbuf, op=None):
        recvbuf[...] = sendbuf

    def bcast(self, value, root=0):
        return value

    def allgather(self, value):
        return [value]

    def gather(self, value, root=0):
        return [value]

    def Barrier(self):
        pass

    def Abort(self, code=1):
        raise SystemExit(code)


def world():
    """The world communicator, or a SerialComm when mpi4py is not installed."""
    try:
        from mpi4py import MPI
    except ImportError:
        return SerialComm()
    return MPI.COMM_WORLD


def max_ranks_per_axis(box, cutoff):
    """Largest number of subdomains along each axis whose width is at least one cell (>= cutoff)."""
    return [max(1, int(np.floor(b / (cutoff * (1 + CELL_MARGIN))))) for b in box]


def _all_reduce(comm, values, dtype, op):
    """Element-wise reduction (``op``: "SUM" or "MAX") of an array over all ranks, on every rank."""
    values = np.ascontiguousarray(values, dtype=dtype)
    if comm.size == 1:
        return values.copy()
    from mpi4py import MPI
    out = np.empty_like(values)
    comm.Allreduce(values, out, op=getattr(MPI, op))
    return out


def sum_int(comm, values):
    """Sum of an int64 array over all ranks of comm, on every rank; exact (integer addition)."""
    return _all_reduce(comm, values, np.int64, "SUM")


def sum_floats(comm, values):
    """Sum of a float64 array over all ranks of comm, on every rank. The rounding depends on the rank
    count (MPI's order of additions): where the result must not, sum fixed-point integers (sum_int)."""
    return _all_reduce(comm, values, np.float64, "SUM")


def on_root(comm, fn, *args):
    """``fn(*args)`` evaluated on rank 0 only (file checks, wall-clock decisions), its value returned on
    every rank."""
    value = fn(*args) if comm.rank == 0 else None
    return value if comm.size == 1 else comm.bcast(value, root=0)


def all_gather(comm, value):
    """[value of rank 0, value of rank 1, ...] on every rank (small Python objects)."""
    return [value] if comm.size == 1 else comm.allgather(value)


def abort_job(comm, code):
    """End every rank of the job (MPI_Abort) so that none waits forever on a failed one; no-op on 1 rank."""
    if comm.size > 1:
        comm.Abort(code)


def max_floats(comm, values):
    """Element-wise maximum of a float64 array over all ranks of comm, on every rank (order-free, hence
    exact)."""
    return _all_reduce(comm, values, np.float64, "MAX")


def _compute_dims(size, dim):
    """MPI's balanced factorisation of size into dim factors, largest first (``balanced_dims`` without
    mpi4py)."""
    try:
        from mpi4py import MPI
    except ImportError:
        return balanced_dims(size, dim)
    return sorted(MPI.Compute_dims(size, dim), reverse=True)


def balanced_dims(size, dim):
    """The factorisation of size into dim factors with the smallest spread (max - min), largest first:
    what MPI_Dims_create returns, computed without MPI (sweep planning on a login node)."""
    def splits(n, k):
        if k == 1:
            yield (n,)
            return
        for f in range(1, n + 1):
            if n % f == 0:
                for rest in splits(n // f, k - 1):
                    if f >= rest[0]:
                        yield (f,) + rest
    return list(min(splits(size, dim), key=lambda t: (t[0] - t[-1], t)))


def rank_grid(size, dim, box, cutoff):
    """Balanced rank grid [Px, Py, Pz] (Pz = 1 in 2d) for ``size`` ranks, the most ranks along the
    longest axis, or ValueError naming the largest rank count that fits. For d > 3 only the first three
    axes are decomposed (the cells' axes, core/box.BINNED_AXES)."""
    dim = min(dim, 3)
    limits = max_ranks_per_axis(box[:dim], cutoff)
    fits = lambda p: all(d <= m for d, m in zip(_compute_dims(p, dim), sorted(limits, reverse=True)))  # noqa: E731
    if not fits(size):
        # Counts that fit are not a range (4 and 8 may fit where 7 does not): name the largest of all
        # (searched down from the product of the per-axis limits) and the nearest below the request.
        most = int(np.prod(limits))
        largest = next((p for p in range(most, max(0, most - 100000), -1) if fits(p)), None)
        below = max(p for p in range(1, size) if fits(p))
        nearest = f" (the nearest below {size}: {below})" if largest is not None and below != largest else ""
        raise ValueError(f"{size} ranks cannot split this box: each subdomain must be at least one "
                         f"interaction range ({cutoff:g}) wide, at most {limits} ranks per axis; "
                         f"the largest rank count that fits is {largest if largest is not None else below}{nearest}")
    placed = [1] * dim
    for axis, d in zip(np.argsort(-np.asarray(limits), kind="stable"), _compute_dims(size, dim)):
        placed[axis] = d
    return placed + [1] * (3 - dim)


def id_blocks(n_total, n_blocks):
    """Start of each contiguous block of global ids when N ids are split over n_blocks (+ the end)."""
    return np.array([(n_total * b) // n_blocks for b in range(n_blocks + 1)], dtype=np.int64)


def exchange_rows(comm, dest, rows):
    """Send row r of the float64 (n, w) array ``rows`` to rank dest[r]; return the rows this rank
    received (grouped by source rank, each group in its sender's order). Collective (Alltoallv)."""
    if comm.size == 1:
        return rows
    from mpi4py import MPI
    width = rows.shape[1]
    o = np.argsort(dest, kind="stable")
    send = np.ascontiguousarray(rows[o])
    counts = np.bincount(dest, minlength=comm.size).astype(np.int64) * width
    recv_counts = np.empty(comm.size, dtype=np.int64)
    comm.Alltoall(counts, recv_counts)
    sdispl = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rdispl = np.concatenate([[0], np.cumsum(recv_counts)[:-1]])
    recv = np.empty(int(recv_counts.sum()))
    comm.Alltoallv([send.ravel(), counts, sdispl, MPI.DOUBLE], [recv, recv_counts, rdispl, MPI.DOUBLE])
    return recv.reshape(-1, width)


def redistribute_by_id(comm, ids, rows, n_total, to_root=False):
    """Send every row to the rank that holds its id's block; return (ids, rows) of this rank's block,
    sorted by id. With to_root, rank 0 receives everything (the serial-HDF5 path). Collective."""
    starts = id_blocks(n_total, 1 if to_root else comm.size)
    dest = np.searchsorted(starts, ids, side="right") - 1
    got = exchange_rows(comm, dest, np.hstack([np.asarray(ids, dtype=np.float64)[:, None], rows]))
    got_ids = got[:, 0].astype(np.int64)
    o = np.argsort(got_ids, kind="stable")
    return got_ids[o], got[o, 1:]
