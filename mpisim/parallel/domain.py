"""Domain decomposition: the rank grid, ghost (halo) exchange and migration.

With parallel/comm.py, the only code that talks to the communicator. The periodic box is split into a Cartesian
grid of equal subdomains (``MPI.Compute_dims``); a rank owns the particles whose wrapped position lies in
its subdomain and holds ghost copies of every particle within one cell width (>= the Verlet reach, set by
the rank's neighbour list, mpisim/core/neighbour_list.py) of its faces, edges and corners. Ghosts are exchanged one axis at a time in both directions, forwarding
what earlier axes delivered, so corners arrive without diagonal messages. Along an axis with one rank the
"neighbour" is the rank itself and the exchange is a local copy with a periodic shift.

Ghosts keep their wrapped coordinates (the kernels take minimum images of wrapped coordinates) plus an
integer shift that places them next to the subdomain for binning. Everything here is rank-local unless a
docstring says global.
"""
import functools
import time

import numpy as np

from ..core._jit import njit
from ..core.box import BINNED_AXES, storage_width
from ..core.sparse import pack_changed, set_flags, store_changed
from .comm import exchange_rows, max_floats, rank_grid, sum_int, world


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


class Domain:
    """One rank's subdomain, its cell grid, and the exchanges with its neighbours.

    box: global edges (storage_width(dim),) (the unused third edge of a 2-d system is 1); cutoff: the largest contact
    distance (max R_i + R_j), which bounds the rank grid; comm: an mpi4py communicator (default: world) or
    SerialComm. It is the halo of the rank's neighbour list (``migrate``, ``borders``, ``forward``).
    """

    def __init__(self, box, dim, cutoff, comm=None):
        self.comm = comm if comm is not None else world()
        self.comm_seconds = 0.0
        self.dim = dim
        self.box = np.asarray(box, dtype=np.float64)
        self.cutoff = float(cutoff)
        self.grid = rank_grid(self.comm.size, dim, self.box, self.cutoff)   # the three binned axes
        # Axes with ghosts and migration: the decomposed ones, at most three; the engine's rows have
        # storage_width(d) position columns (d > 3: the axes past the third are whole on every rank).
        self.axes = min(dim, BINNED_AXES)
        self.migrating = any(self.grid[a] > 1 for a in range(self.axes))    # an axis split between ranks
        self.columns = storage_width(dim)
        if self.comm.size > 1:
            self.cart = self.comm.Create_cart(self.grid, periods=[True] * 3, reorder=False)
            self.coords = list(self.cart.Get_coords(self.cart.rank))
            self.neighbours = [self.cart.Shift(a, 1) for a in range(3)]  # (left, right) per axis
        else:
            self.cart = None
            self.coords = [0, 0, 0]
            self.neighbours = [(0, 0)] * 3
        self._rank_of = None                     # rank of each rank-grid coordinate (distribute)
        pad = [1] * (self.columns - BINNED_AXES)
        self.width = self.box / np.asarray(list(self.grid) + pad)       # (columns,): the subdomain's edges
        self.lo = np.asarray(list(self.coords) + [0] * len(pad)) * self.width
        self.hi = self.lo + self.width
        self.owner_coords_scale = np.asarray(self.grid) / self.box[:BINNED_AXES]

    @property
    def rank(self):
        return self.comm.rank

    # ---------------------------------------------------------------------------------------- ownership
    def owner_coords(self, pos):
        """Rank-grid coordinates (n, 3) of the owners of wrapped positions pos (n, >= 3)."""
        return np.minimum((pos[:, :BINNED_AXES] * self.owner_coords_scale).astype(np.int64), np.asarray(self.grid) - 1)

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
    def borders(self, state, ghost_width, axes):
        """Fill state's ghost rows (after the n_own owned rows) with copies of neighbours' particles within
        ``ghost_width`` (3,), one cell of the neighbour list, of the faces along ``axes`` (increasing; the
        neighbour list's ``ghost_axes``: the axes the rank grid splits, and those no rank splits whose
        cells are too few to be periodic; the others have periodic cells and need no ghosts), and remember
        who sent what so that ``forward`` can refresh positions."""
        state.n_ghost = 0
        self.stages = []
        if axes:         # (none: one rank whose cells are periodic along every axis, at every build)
            self._borders(state, ghost_width, axes)

    @timed
    def _borders(self, state, ghost_width, axes):
        for axis in axes:
            n_have = state.n_own + state.n_ghost
            send_left, send_right = _select_ghosts(state.pos, state.shift, self.box, axis, n_have,
                                                   self.lo[axis] + ghost_width[axis],
                                                   self.hi[axis] - ghost_width[axis])
            left, right = self.neighbours[axis]
            # A particle sent left across the periodic boundary appears one box length higher there.
            shift_l = 1 if self.coords[axis] == 0 else 0
            shift_r = -1 if self.coords[axis] == self.grid[axis] - 1 else 0
            start_r = n_have
            if self._to_self(left, right):
                # Its own neighbour along this axis: copy the rows in place, in the order a message would
                # bring them (what came from the right first).
                n_r, n_l = len(send_left), len(send_right)
                state.reserve(n_have + n_r + n_l)
                _copy_ghost_rows(state.pos, state.shift, state.ids, state.radius, send_left, start_r, axis, shift_l)
                _copy_ghost_rows(state.pos, state.shift, state.ids, state.radius, send_right, start_r + n_r, axis,
                                 shift_r)
                state.n_ghost += n_r + n_l
            else:
                got_from_right = self._sendrecv(_pack_ghosts(state, send_left, axis, shift_l), left, right,
                                                tag=10 + axis)
                got_from_left = self._sendrecv(_pack_ghosts(state, send_right, axis, shift_r), right, left,
                                               tag=20 + axis)
                _unpack_ghosts(state, got_from_right)
                _unpack_ghosts(state, got_from_left)
                n_r, n_l = len(got_from_right), len(got_from_left)
            self.stages.append(_Stage(send_left, left, right, start_r, n_r))
            self.stages.append(_Stage(send_right, right, left, start_r + n_r, n_l))

    @timed
    def forward(self, state):
        """Refresh the ghosts' positions from their owners, in the order ``borders`` received them."""
        self._forward(state.pos, self.columns, 50)

    @timed
    def forward_changed(self, state, changes):
        """Refresh only the ghosts whose owner moved since the last refresh (or ``borders``), given a
        core.sparse.SparseStep whose active rows are the rows that may have moved; list in ``changes``
        the ghost rows that changed (its ``changed``, flagged in its ``dirty``). If its active rows are
        not listed (many active: its next pass is dense), send every ghost and note nothing. Every rank
        of the halo must call this (not ``forward``) at the same step: the messages differ."""
        n_own = state.n_own
        flags = changes.dirty
        listed = changes.listed
        if listed:
            set_flags(flags, changes.active_rows, changes.n_active, n_own, 1)
        for k, stage in enumerate(self.stages):
            send, recv = stage.buffers(1 + self.columns, packed=True)
            if listed and changes.n_active_own == 0 and changes.n_changed == 0:
                send[0] = 0             # nothing flagged (no owned row moved, no ghost changed): no scan
                used = 1
            else:
                used = pack_changed(state.pos, stage.rows, flags, send, not listed)
            if self._to_self(stage.dest, stage.source):
                recv = send
            else:
                # the received message may be shorter than recv: its first float says how long
                self.cart.Sendrecv(send[:used], dest=stage.dest, sendtag=60 + k, recvbuf=recv,
                                   source=stage.source, recvtag=60 + k)
            if listed:
                changes.reserve_changed(changes.n_changed + int(recv[0]))
            changes.n_changed = store_changed(state.pos, stage.start, recv, flags, changes.changed,
                                              changes.n_changed, listed)
        if listed:
            set_flags(flags, changes.active_rows, changes.n_active, n_own, 0)

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
            if self._to_self(stage.dest, stage.source):
                recv = send
            else:
                self.cart.Sendrecv(send, dest=stage.dest, sendtag=tag + k, recvbuf=recv,
                                   source=stage.source, recvtag=tag + k)
            values[stage.start:stage.start + stage.n_recv, :width] = recv

    def migrate(self, state):
        """Send owned particles that left the subdomain to their new owners (one axis at a time)."""
        if self.migrating:      # (one rank along every axis: no particle changes owner, at every build)
            self._migrate(state)

    @timed
    def _migrate(self, state):
        for axis in range(self.axes):
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

    def _to_self(self, dest, source):
        """Whether an exchange with dest and source is a local copy (this rank is both)."""
        return self.cart is None or (dest == self.cart.rank and source == self.cart.rank)

    def _sendrecv(self, buf, dest, source, tag):
        if self._to_self(dest, source):
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

    def buffers(self, width, packed=False):
        """(send, recv) float64 buffers of ``width`` columns, allocated once per list build; packed: flat,
        room for a count and (index, width values) per row (``forward_changed``)."""
        key = (width, packed)
        if key not in self._buffers:
            self._buffers[key] = ((np.empty(1 + len(self.rows) * (width + 1)), np.empty(1 + self.n_recv * (width + 1)))
                                  if packed else (np.empty((len(self.rows), width)), np.empty((self.n_recv, width))))
        return self._buffers[key]


@njit
def _pack_rows(values, rows, out):
    for k in range(rows.shape[0]):
        p = rows[k]
        for a in range(out.shape[1]):
            out[k, a] = values[p, a]


@njit
def _select_ghosts(pos, shift, box, axis, n, lo_edge, hi_edge):
    """Rows whose binning coordinate along axis is below lo_edge (sent left) and at or above hi_edge
    (sent right), in row order; a row may be in both (a subdomain narrower than two ghost widths)."""
    left = np.empty(n, dtype=np.int64)
    right = np.empty(n, dtype=np.int64)
    n_left = 0
    n_right = 0
    for p in range(n):
        x = pos[p, axis] + shift[p, axis] * box[axis]
        if x < lo_edge:
            left[n_left] = p
            n_left += 1
        if x >= hi_edge:
            right[n_right] = p
            n_right += 1
    return left[:n_left], right[:n_right]


@njit
def _copy_ghost_rows(pos, shift, ids, radius, rows, start, axis, extra_shift):
    """Rows start, start + 1, ... become ghost copies of ``rows`` (all below start), shifted by
    extra_shift box lengths along axis: ``_pack_ghost_rows`` and ``_unpack_ghost_rows`` without the message."""
    w = pos.shape[1]
    for k in range(rows.shape[0]):
        p = rows[k]
        q = start + k
        for a in range(w):
            pos[q, a] = pos[p, a]
            shift[q, a] = shift[p, a]
        shift[q, axis] += extra_shift
        ids[q] = ids[p]
        radius[q] = radius[p]


def _pack_ghosts(state, rows, axis, extra_shift):
    """Ghost rows: position (w columns), shift (w), id, radius; w = the state's position columns."""
    buf = np.empty((rows.shape[0], 2 * state.width + 2), dtype=np.float64)
    _pack_ghost_rows(state.pos, state.shift, state.ids, state.radius, rows, axis, extra_shift, buf)
    return buf


@njit
def _pack_ghost_rows(pos, shift, ids, radius, rows, axis, extra_shift, buf):
    w = pos.shape[1]
    for k in range(rows.shape[0]):
        p = rows[k]
        for a in range(w):
            buf[k, a] = pos[p, a]
            buf[k, w + a] = shift[p, a]
        buf[k, w + axis] += extra_shift
        buf[k, 2 * w] = ids[p]
        buf[k, 2 * w + 1] = radius[p]


def _unpack_ghosts(state, buf):
    n = buf.shape[0]
    start = state.n_own + state.n_ghost
    state.reserve(start + n)
    _unpack_ghost_rows(buf, start, state.pos, state.shift, state.ids, state.radius)
    state.n_ghost += n


@njit
def _unpack_ghost_rows(buf, start, pos, shift, ids, radius):
    w = pos.shape[1]
    for k in range(buf.shape[0]):
        p = start + k
        for a in range(w):
            pos[p, a] = buf[k, a]
            shift[p, a] = np.int8(buf[k, w + a])
        ids[p] = np.int64(buf[k, 2 * w])
        radius[p] = buf[k, 2 * w + 1]
