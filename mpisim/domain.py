"""Domain decomposition: the rank grid, ghost (halo) exchange and migration.

This is the only module that talks to the communicator. The periodic box is split into a Cartesian
grid of equal subdomains (``MPI.Compute_dims``); a rank owns the particles whose wrapped position lies in
its subdomain and holds ghost copies of every particle within one cell width (>= the interaction range)
of its faces, edges and corners. Ghosts are exchanged one axis at a time in both directions, forwarding
what earlier axes delivered, so corners arrive without diagonal messages. Along an axis with one rank the
"neighbour" is the rank itself and the exchange is a local copy with a periodic shift.

Ghosts keep their wrapped coordinates (the kernels take minimum images of wrapped coordinates) plus an
integer shift that places them next to the subdomain for binning. Everything here is rank-local unless a
docstring says global.
"""
import functools
import time

import numpy as np

from ._jit import njit
from .cells import CellList

# Margins that keep the cell search complete under rounding (docs/parallel.md).
CELL_MARGIN = 1e-8
CUTOFF_MARGIN = 1e-9


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


def timed(method):
    """Add the wall time of a communicating method to ``self.comm_seconds`` (waiting included: that is
    what a rank loses to communication and imbalance)."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return method(self, *args, **kwargs)
        finally:
            self.comm_seconds += time.perf_counter() - t0
    return wrapper


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


def sum_disjoint(comm, values):
    """Sum over ranks of a float64 array in which every element is non-zero on at most one rank: adding
    zeros is exact, so the result does not depend on the rank count. On every rank."""
    return _all_reduce(comm, values, np.float64, "SUM")


def sum_scatter_int(comm, values, counts):
    """Exact sum over ranks of an int64 array [n, ...] whose first axis is split into consecutive blocks
    of ``counts[r]`` rows: rank r receives the summed block r."""
    values = np.ascontiguousarray(values, dtype=np.int64)
    if comm.size == 1:
        return values
    from mpi4py import MPI
    per_row = values[0].size
    out = np.empty((int(counts[comm.rank]),) + values.shape[1:], dtype=np.int64)
    comm.Reduce_scatter(values, out, recvcounts=[int(c) * per_row for c in counts], op=MPI.SUM)
    return out


def all_to_all_complex(comm, send, send_counts, recv_counts):
    """Alltoallv of complex128 blocks: ``send`` holds rank q's block at the q-th place (``send_counts[q]``
    values); returns the blocks received from ranks 0, 1, ... concatenated."""
    from mpi4py import MPI
    send = np.ascontiguousarray(send, dtype=np.complex128)
    recv = np.empty(int(np.sum(recv_counts)), dtype=np.complex128)
    sdisp = np.concatenate([[0], np.cumsum(send_counts)[:-1]])
    rdisp = np.concatenate([[0], np.cumsum(recv_counts)[:-1]])
    comm.Alltoallv([send, send_counts, sdisp, MPI.C_DOUBLE_COMPLEX],
                   [recv, recv_counts, rdisp, MPI.C_DOUBLE_COMPLEX])
    return recv


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
    """MPI's balanced factorisation of size into dim factors, largest first."""
    try:
        from mpi4py import MPI
        return sorted(MPI.Compute_dims(size, dim), reverse=True)
    except ImportError:
        return [size] + [1] * (dim - 1)


def rank_grid(size, dim, box, cutoff):
    """Balanced rank grid [Px, Py, Pz] (Pz = 1 in 2d) for ``size`` ranks, the most ranks along the
    longest axis, or ValueError naming the largest rank count that fits."""
    limits = max_ranks_per_axis(box[:dim], cutoff)
    fits = lambda p: all(d <= m for d, m in zip(_compute_dims(p, dim), sorted(limits, reverse=True)))  # noqa: E731
    if not fits(size):
        fit = max(p for p in range(1, size + 1) if fits(p))
        raise ValueError(f"{size} ranks cannot split this box: each subdomain must be at least one "
                         f"interaction range ({cutoff:g}) wide, at most {limits} ranks per axis; "
                         f"the largest rank count that fits is {fit}")
    placed = [1] * dim
    for axis, d in zip(np.argsort(-np.asarray(limits), kind="stable"), _compute_dims(size, dim)):
        placed[axis] = d
    return placed + [1] * (3 - dim)


class Domain:
    """One rank's subdomain, its cell grid, and the exchanges with its neighbours.

    box: global edges (3,) (the unused third edge of a 2-d system is 1); cutoff: the largest contact
    distance (max R_i + R_j); skin: the requested Verlet skin, reduced where the subdomain or the box is too
    small for it (``self.skin`` is the one in use). comm: an mpi4py communicator (default: world) or
    SerialComm.
    """

    def __init__(self, box, dim, cutoff, skin=0.0, comm=None):
        self.comm = comm if comm is not None else world()
        self.comm_seconds = 0.0
        self.dim = dim
        self.box = np.asarray(box, dtype=np.float64)
        self.cutoff = float(cutoff)
        self.rcut = self.cutoff * (1 + CUTOFF_MARGIN)
        self.grid = rank_grid(self.comm.size, dim, self.box, self.cutoff)
        if self.comm.size > 1:
            self.cart = self.comm.Create_cart(self.grid, periods=[True] * 3, reorder=False)
            self.coords = list(self.cart.Get_coords(self.cart.rank))
            self.neighbours = [self.cart.Shift(a, 1) for a in range(3)]  # (left, right) per axis
        else:
            self.cart = None
            self.coords = [0, 0, 0]
            self.neighbours = [(0, 0)] * 3
        self._rank_of = None                     # rank of each rank-grid coordinate (distribute)
        self.width = self.box / np.asarray(self.grid)
        self.lo = np.asarray(self.coords) * self.width
        self.hi = self.lo + self.width
        # The skin must leave a cell (>= cutoff + skin) inside every subdomain and keep the periodic image
        # of a pair unique (box > 2 (cutoff + skin)).
        room = min(min(self.width[:dim]), 0.5 * min(self.box[:dim])) / (1 + CELL_MARGIN) - self.rcut
        self.skin = float(max(0.0, min(skin, 0.999 * room)))
        self.cells = None
        self.set_reach(self.rcut + self.skin)
        self.owner_coords_scale = np.asarray(self.grid) / self.box

    def set_reach(self, reach):
        """Size cells and the ghost layer for pairs up to ``reach`` (<= rcut + self.skin). Owned cells
        tile the subdomain exactly; one ghost layer on each side of a real axis. Rank-local."""
        self.reach = reach
        dim = self.dim
        ncell = np.array([max(1, int(np.floor(self.width[a] / (reach * (1 + CELL_MARGIN)))))
                          if a < dim else 1 for a in range(3)])
        ghost = np.array([1 if a < dim else 0 for a in range(3)])
        if self.cells is not None and np.array_equal(self.cells.dims, ncell + 2 * ghost):
            return
        cell_width = np.where(np.arange(3) < dim, self.width / ncell, self.box)
        self.ghost_width = cell_width.copy()
        self.cells = CellList(ncell + 2 * ghost, self.lo - ghost * cell_width, cell_width, ghost,
                              ghost + ncell - 1)

    @property
    def rank(self):
        return self.comm.rank

    # ---------------------------------------------------------------------------------------- ownership
    def owner_coords(self, pos):
        """Rank-grid coordinates (n, 3) of the owners of wrapped positions pos (n, 3)."""
        return np.minimum((pos * self.owner_coords_scale).astype(np.int64), np.asarray(self.grid) - 1)

    def owns(self, pos):
        """Boolean mask of the rows of pos (global wrapped positions) that this rank owns."""
        return np.all(self.owner_coords(pos) == np.asarray(self.coords), axis=1)

    def distribute(self, rows):
        """Send each float64 row, whose columns 0-2 are a wrapped position, to the rank that owns that
        position; return the rows this rank now owns. Collective; every rank may start with any rows
        (e.g. its block of ids), so no rank ever holds all N particles."""
        if self.cart is None:
            return rows
        if self._rank_of is None:
            self._rank_of = np.empty(self.grid, dtype=np.int64)
            for c in np.ndindex(*self.grid):
                self._rank_of[c] = self.cart.Get_cart_rank(list(c))
        c = self.owner_coords(rows[:, :3])
        return exchange_rows(self.cart, self._rank_of[c[:, 0], c[:, 1], c[:, 2]], rows)

    def close(self):
        """Free the Cartesian communicator (collective; idempotent)."""
        if self.cart is not None:
            self.cart.Free()
            self.cart = None

    # ----------------------------------------------------------------------------------------- reductions
    @timed
    def sum_int(self, values):
        """Global (all ranks) sum of an int64 array; exact."""
        return sum_int(self.comm, values)

    @timed
    def max_floats(self, values):
        """Global element-wise maximum of a float64 array (order-free, hence exact)."""
        return max_floats(self.comm, values)

    # ---------------------------------------------------------------------------------------- exchanges
    @timed
    def borders(self, state):
        """Fill state's ghost rows (after the n_own owned rows) with copies of neighbours' particles within
        one cell of the faces, and remember who sent what so that ``forward`` can refresh positions."""
        state.n_ghost = 0
        self.stages = []
        for axis in range(self.dim):
            n_have = state.n_own + state.n_ghost
            lo_edge = self.lo[axis] + self.ghost_width[axis]
            hi_edge = self.hi[axis] - self.ghost_width[axis]
            send_left = _select_ghosts(state.pos, state.shift, self.box, axis, n_have, lo_edge, True)
            send_right = _select_ghosts(state.pos, state.shift, self.box, axis, n_have, hi_edge, False)
            left, right = self.neighbours[axis]
            first = self.coords[axis] == 0
            last = self.coords[axis] == self.grid[axis] - 1
            # A particle sent left across the periodic boundary appears one box length higher there.
            buf_l = _pack_ghosts(state, send_left, axis, 1 if first else 0)
            buf_r = _pack_ghosts(state, send_right, axis, -1 if last else 0)
            got_from_right = self._sendrecv(buf_l, left, right, tag=10 + axis)
            got_from_left = self._sendrecv(buf_r, right, left, tag=20 + axis)
            start_r = state.n_own + state.n_ghost
            _unpack_ghosts(state, got_from_right)
            start_l = state.n_own + state.n_ghost
            _unpack_ghosts(state, got_from_left)
            self.stages.append(_Stage(send_left, left, right, start_r, len(got_from_right)))
            self.stages.append(_Stage(send_right, right, left, start_l, len(got_from_left)))

    @timed
    def forward(self, state):
        """Refresh the ghosts' positions from their owners, in the order ``borders`` received them."""
        self._forward(state.pos, 3, 50)

    @timed
    def forward_aux(self, state):
        """Refresh the ghosts' per-particle dynamics state (aux) from their owners, as ``forward`` does
        for positions; for dynamics whose pair work reads the partner's state (reciprocal PGD noise)."""
        self._forward(state.aux, state.n_aux, 70)

    def _forward(self, values, width, tag):
        """Copy columns [0, width) of the owners' rows of ``values`` into the ghost rows, stage by stage."""
        for k, stage in enumerate(self.stages):
            send, recv = stage.buffers(width)
            _pack_rows(values, stage.rows, send)
            if self.cart is None or (stage.dest == self.cart.rank and stage.source == self.cart.rank):
                recv = send
            else:
                self.cart.Sendrecv(send, dest=stage.dest, sendtag=tag + k, recvbuf=recv,
                                   source=stage.source, recvtag=tag + k)
            values[stage.start:stage.start + stage.n_recv, :width] = recv

    @timed
    def migrate(self, state):
        """Send owned particles that left the subdomain to their new owners (one axis at a time)."""
        for axis in range(self.dim):
            if self.grid[axis] == 1:
                continue
            owner = np.minimum((state.pos[:state.n_own, axis] * self.owner_coords_scale[axis])
                               .astype(np.int64), self.grid[axis] - 1)
            mine = self.coords[axis]
            step = (owner - mine) % self.grid[axis]
            go_right = step == 1
            go_left = step == self.grid[axis] - 1
            if self.grid[axis] == 2:
                go_left = np.zeros_like(go_right)
            stray = ~(go_right | go_left | (step == 0))
            # Every rank must raise together, or the neighbours would wait in Sendrecv forever.
            if self.sum_int(np.array([stray.sum()]))[0]:
                raise RuntimeError(f"a particle moved more than one subdomain along axis "
                                   f"{axis} in one step (kick too large for {self.grid[axis]} ranks on this "
                                   f"axis); use fewer ranks or a smaller kick")
            left, right = self.neighbours[axis]
            rows_l = np.flatnonzero(go_left)
            rows_r = np.flatnonzero(go_right)
            buf_l = state.pack_owned(rows_l)
            buf_r = state.pack_owned(rows_r)
            state.remove_owned(np.concatenate([rows_l, rows_r]))
            got_r = self._sendrecv(buf_l, left, right, tag=30 + axis)
            got_l = self._sendrecv(buf_r, right, left, tag=40 + axis)
            state.add_owned(got_r)
            state.add_owned(got_l)

    def _sendrecv(self, buf, dest, source, tag):
        if self.cart is None or (dest == self.cart.rank and source == self.cart.rank):
            return buf
        n = np.array([buf.shape[0]], dtype=np.int64)
        m = np.empty(1, dtype=np.int64)
        self.cart.Sendrecv(n, dest=dest, sendtag=tag, recvbuf=m, source=source, recvtag=tag)
        out = np.empty((int(m[0]), buf.shape[1]), dtype=np.float64)
        self.cart.Sendrecv(buf, dest=dest, sendtag=tag + 100, recvbuf=out, source=source, recvtag=tag + 100)
        return out


class _Stage:
    """One direction of one axis of the ghost exchange: rows sent, and where the received rows went."""

    def __init__(self, rows, dest, source, start, n_recv):
        self.rows, self.dest, self.source, self.start, self.n_recv = rows, dest, source, start, n_recv
        self._buffers = {}

    def buffers(self, width):
        """(send, recv) float64 buffers of ``width`` columns, allocated once per list build."""
        if width not in self._buffers:
            self._buffers[width] = (np.empty((len(self.rows), width)), np.empty((self.n_recv, width)))
        return self._buffers[width]


@njit
def _pack_rows(values, rows, out):
    for k in range(rows.shape[0]):
        p = rows[k]
        for a in range(out.shape[1]):
            out[k, a] = values[p, a]


@njit
def _select_ghosts(pos, shift, box, axis, n, edge, below):
    """Rows whose binning coordinate along axis is below (or at/above) edge."""
    out = np.empty(n, dtype=np.int64)
    m = 0
    for p in range(n):
        x = pos[p, axis] + shift[p, axis] * box[axis]
        if (x < edge) if below else (x >= edge):
            out[m] = p
            m += 1
    return out[:m]


GHOST_WIDTH = 8  # x, y, z, shift x, y, z, id, radius


def _pack_ghosts(state, rows, axis, extra_shift):
    buf = np.empty((rows.shape[0], GHOST_WIDTH), dtype=np.float64)
    _pack_ghost_rows(state.pos, state.shift, state.ids, state.radius, rows, axis, extra_shift, buf)
    return buf


@njit
def _pack_ghost_rows(pos, shift, ids, radius, rows, axis, extra_shift, buf):
    for k in range(rows.shape[0]):
        p = rows[k]
        for a in range(3):
            buf[k, a] = pos[p, a]
            buf[k, 3 + a] = shift[p, a]
        buf[k, 3 + axis] += extra_shift
        buf[k, 6] = ids[p]
        buf[k, 7] = radius[p]


def _unpack_ghosts(state, buf):
    n = buf.shape[0]
    start = state.n_own + state.n_ghost
    state.reserve(start + n)
    _unpack_ghost_rows(buf, start, state.pos, state.shift, state.ids, state.radius)
    state.n_ghost += n


@njit
def _unpack_ghost_rows(buf, start, pos, shift, ids, radius):
    for k in range(buf.shape[0]):
        p = start + k
        for a in range(3):
            pos[p, a] = buf[k, a]
            shift[p, a] = np.int8(buf[k, 3 + a])
        ids[p] = np.int64(buf[k, 6])
        radius[p] = buf[k, 7]


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
