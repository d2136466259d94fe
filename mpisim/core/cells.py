"""Cell lists over a rank's extended region (owned cells plus one layer of ghost cells).

The owned cells tile the rank's subdomain; their width is at least the Verlet reach (interaction range +
the skin in use, sized by ``NeighbourList``) with a small margin, so that every pair within reach sits in the
same or in adjacent cells even when rounding puts a particle on the wrong side of a cell face. Particles
are binned by their *binning* coordinate (position plus the ghost's periodic shift), never wrapped, so
ghosts land in the ghost layer. The build is a counting sort: O(n), no allocation while the rank's
particle count does not grow.
"""
import numpy as np

from ._jit import inline, njit
from .box import BINNED_AXES, minimum_image
from .simd import WINDOW, lowest_bit, within_reach, within_reach_4x4

# Margins that keep the cell search complete under rounding (docs/parallel.md).
CELL_MARGIN = 1e-8
CUTOFF_MARGIN = 1e-9


class CellList:
    """Storage for one rank's cell list; grows (never shrinks) when a rank gains particles."""

    def __init__(self, dims, origin, width, owned_lo, owned_hi, periodic=(0, 0, 0), box=None):
        """dims, origin, width, owned_lo, owned_hi: per axis, three axes (d <= 3) or d (d > 3: the axes past
        the third are periodic, without ghost layers, ``periodic_cells`` of them). periodic: per binned axis,
        1 where the cells are periodic instead of ghosted (an axis no rank splits: origin 0, no ghost layer;
        ``scan_rows`` in d <= 3, build_pairs_wide above); box: the global edges (needed if any is)."""
        self.dims = np.asarray(dims, dtype=np.int64)              # cells per axis, ghost layers included
        self.origin = np.asarray(origin, dtype=np.float64)        # lower corner of cell (0, 0, 0)
        self.width = np.asarray(width, dtype=np.float64)          # cell edge per axis
        self.owned_lo = np.asarray(owned_lo, dtype=np.int64)      # first owned cell index per axis
        self.owned_hi = np.asarray(owned_hi, dtype=np.int64)      # last owned cell index per axis
        self.periodic = np.asarray(periodic, dtype=np.int64)      # binned axes with periodic cells
        # per binned axis: the box edge where the cells are periodic (a neighbour cell across the end lies
        # that far over), 0 where they are ghosted (scan_rows)
        self.periodic_edges = np.array([float(box[a]) if self.periodic[a] else 0.0 for a in range(BINNED_AXES)])
        self.cell_start = np.zeros(int(np.prod(self.dims)) + 1, dtype=np.int64)
        self.order = np.zeros(0, dtype=np.int32)
        self.cell_of = np.zeros(0, dtype=np.int32)
        self.sorted_pos = None
        self.own_scratch = np.zeros(0)       # the binning coordinates' rows when the scratch given is too short
        # d > 3: the offsets of the further axes' neighbour cells, one of each +- pair (build_pairs_wide)
        self.extra_offsets = half_offsets(self.dims[3:]) if len(self.dims) > 3 else None

    def build(self, pos, shift, box, n_own, n_total, scratch):
        """Bin particles 0..n_total-1; afterwards slot s of the cell order holds particle order[s] (contiguous
        per cell), whose binning coordinate along axis a is sorted_pos[a, s]: one row per axis, so that the
        search reads a window of slots as one vector (``scan_rows``), with ``SCAN_PAD`` readable slots past
        the last. scratch: a C-contiguous float64 array that is free until the pair list is built (the
        state's displacement accumulator, to save memory), used if it holds width x (n_total + SCAN_PAD)
        values (else the cell list keeps rows of its own)."""
        if self.order.shape[0] < n_total:
            cap = int(n_total * 1.05) + 16     # rows change little between builds
            self.order = np.zeros(cap, dtype=np.int32)
            self.cell_of = np.zeros(cap, dtype=np.int32)
        width = pos.shape[1]
        flat = scratch.reshape(-1)
        if flat.shape[0] < width * (n_total + SCAN_PAD):
            if self.own_scratch.shape[0] < width * (n_total + SCAN_PAD):
                self.own_scratch = np.zeros(width * (int(n_total * 1.05) + 16))
            flat = self.own_scratch
        rows = flat.shape[0] // width
        self.sorted_pos = flat[:width * rows].reshape(width, rows)
        if len(self.dims) > 3:
            build_cells_wide(pos, shift, box, n_own, n_total, self.origin, self.width, self.dims, self.owned_lo,
                             self.owned_hi, self.cell_of, self.cell_start, self.order, self.sorted_pos)
            return
        build_cells(pos, shift, box, n_own, n_total, self.origin, self.width, self.dims, self.owned_lo,
                    self.owned_hi, self.cell_of, self.cell_start, self.order, self.sorted_pos)


@njit
def build_cells(pos, shift, box, n_own, n_total, origin, width, dims, owned_lo, owned_hi, cell_of,
                cell_start, order, sorted_pos):
    """Counting sort of particles 0..n_total-1 into cells; owned particles are clamped to owned cells and
    ghosts to the whole grid. After the call the particles of cell c are order[cell_start[c]:cell_start[c+1]]."""
    ncell = dims[0] * dims[1] * dims[2]
    for c in range(ncell + 1):
        cell_start[c] = 0
    # owned rows, then ghosts: each loop with its own clamp (no per-row choice)
    _bin_rows(pos, shift, box, 0, n_own, origin, width, dims, owned_lo[0], owned_lo[1], owned_lo[2],
              owned_hi[0], owned_hi[1], owned_hi[2], cell_of, cell_start)
    _bin_rows(pos, shift, box, n_own, n_total, origin, width, dims, 0, 0, 0, dims[0] - 1, dims[1] - 1,
              dims[2] - 1, cell_of, cell_start)
    _fill_cells(pos, shift, box, n_total, ncell, cell_of, cell_start, order, sorted_pos, 3)


@njit
def fill_cells(pos, shift, box, n_total, ncell, cell_of, cell_start, order, sorted_pos):
    """The counting sort's second half, after the binning loop of ``build_cells_wide`` has set cell_of[p]
    and counted cell c's particles in cell_start[c + 1] (``_fill_cells`` over every column)."""
    _fill_cells(pos, shift, box, n_total, ncell, cell_of, cell_start, order, sorted_pos, pos.shape[1])


@inline
def _fill_cells(pos, shift, box, n_total, ncell, cell_of, cell_start, order, sorted_pos, n_axes):
    """The counting sort's second half, after a binning loop has set cell_of[p] and counted cell c's
    particles in cell_start[c + 1]: the prefix sum, then order and sorted_pos (binning coordinates,
    pos + shift box, n_axes columns: a constant 3 from ``build_cells``, so that the loop over them
    unrolls) slot by slot, so that the particles of cell c are order[cell_start[c]:cell_start[c + 1]]."""
    for c in range(ncell):
        cell_start[c + 1] += cell_start[c]
    # Fill back to front so that each cell keeps its particles in storage order; afterwards
    # cell_start[c + 1] holds the start of cell c, hence the final shift by one.
    for p in range(n_total - 1, -1, -1):
        c = cell_of[p]
        cell_start[c + 1] -= 1
        s = cell_start[c + 1]
        order[s] = p
        for a in range(n_axes):
            sorted_pos[a, s] = pos[p, a] + shift[p, a] * box[a]
    for c in range(ncell):
        cell_start[c] = cell_start[c + 1]
    cell_start[ncell] = n_total


@inline
def _bin_rows(pos, shift, box, p_lo, p_hi, origin, width, dims, lo0, lo1, lo2, hi0, hi1, hi2, cell_of, cell_start):
    """Cells of rows p_lo..p_hi-1 (clamped to [lo, hi] per axis) into cell_of, counted in cell_start[c + 1].
    Times the inverse cell width, not divided by the width (three divisions per row were ~10 % of a
    build; docs/performance.md): a rounding that puts a particle next to a cell face into the neighbour
    cell is covered by the cells' margin (CELL_MARGIN), as any rounding of the binning coordinate is."""
    b0, b1, b2 = box[0], box[1], box[2]
    o0, o1, o2 = origin[0], origin[1], origin[2]
    v0, v1, v2 = 1.0 / width[0], 1.0 / width[1], 1.0 / width[2]
    nx, ny = dims[0], dims[1]
    for p in range(p_lo, p_hi):
        c0 = min(max(int(np.floor((pos[p, 0] + shift[p, 0] * b0 - o0) * v0)), lo0), hi0)
        c1 = min(max(int(np.floor((pos[p, 1] + shift[p, 1] * b1 - o1) * v1)), lo1), hi1)
        c2 = min(max(int(np.floor((pos[p, 2] + shift[p, 2] * b2 - o2) * v2)), lo2), hi2)
        c = (c2 * ny + c1) * nx + c0
        cell_of[p] = c
        cell_start[c + 1] += 1


class PairList:
    """Verlet list: every pair with at least one owned particle within rcut + skin at build time, as two
    flat index arrays. Fixed capacity; ``build`` grows it and retries on overflow (jax-md's allocate/update
    split)."""

    def __init__(self, capacity=1024):
        self.first = np.zeros(capacity, dtype=np.int32)
        self.second = np.zeros(capacity, dtype=np.int32)
        self.n = 0

    def build(self, cells, n_own, reach, box=None):
        """box: the global edges; needed when positions have more than three columns (d > 3: the
        separation along a periodic axis is a minimum image, build_pairs_wide)."""
        while True:
            if cells.sorted_pos.shape[0] > 3:
                # the minimum images the separations take (build_pairs_wide): the further axes and a binned
                # axis with one periodic cell (the others: inf, none)
                width = cells.sorted_pos.shape[0]
                edges = tuple(float(box[a]) for a in range(width))
                image = tuple(edges[a] if a >= 3 or (cells.periodic[a] and cells.dims[a] == 1) else np.inf
                              for a in range(width))
                n = build_pairs_wide(cells.sorted_pos, cells.order, n_own, reach, cells.cell_start, cells.dims,
                                     cells.owned_lo, cells.owned_hi, cells.periodic, cells.extra_offsets,
                                     self.first, self.second, edges, image)
            else:
                n = build_pairs(cells.sorted_pos, cells.order, n_own, reach, cells.cell_start, cells.dims,
                                cells.owned_lo, cells.owned_hi, cells.periodic_edges, self.first, self.second)
            if n < self.first.shape[0]:
                self.n = n
                return
            self.first = np.zeros(int(n * 1.1) + 1024, dtype=np.int32)
            self.second = np.zeros_like(self.first)

    @property
    def nbytes(self):
        return self.first.nbytes + self.second.nbytes


# Rows of neighbour cells visited from a cell, besides its own row: (dy, dz). Within each row the three
# cells dx = -1, 0, 1 are contiguous in the cell order, so a row is one range of slots. Together with
# "the rest of this cell and the cell to the right" this is the usual half stencil (13 cells in 3d).
_ROWS = np.array([[1, 0], [-1, 1], [0, 1], [1, 1]], dtype=np.int64)
# Slots readable past the last one in the binning coordinates (the last window of a range reads past it).
SCAN_PAD = WINDOW


@njit
def build_pairs(sorted_pos, order, n_own, reach, cell_start, dims, owned_lo, owned_hi, periodic_edges, first,
                second):
    """Fill first/second with the pairs (storage indices) closer than reach in binning coordinates, with
    at least one owned particle. Returns the number of pairs; if it is not below the capacity, the
    caller retries with more room (the last slot is scratch)."""
    return scan_rows(sorted_pos, order, n_own, reach, cell_start, dims, owned_lo, owned_hi, periodic_edges, 0,
                     dims[1] * dims[2], first, second)


@inline
def _neighbour_row(yy, zz, ny, nz, ly, lz):
    """Row (yy, zz) of cells, a row of ``_ROWS`` from the current one: (yy, zz within the grid, or yy = -1
    where the search does not go; where the row lies, box edges along y and z). An axis with periodic
    cells (edge ly, lz > 0) wraps; a ghosted one, or z in 2d, stops at its ends."""
    y_shift, z_shift = 0.0, 0.0
    if ly > 0.0:
        if yy < 0:
            yy, y_shift = yy + ny, -ly
        elif yy >= ny:
            yy, y_shift = yy - ny, ly
    elif yy < 0 or yy >= ny:
        yy = -1
    if zz >= nz:
        if lz > 0.0:
            zz, z_shift = zz - nz, lz
        else:
            yy = -1
    return yy, zz, y_shift, z_shift


@inline
def _scan_range(xs, ys, zs, b, end, qx, qy, qz, reach2, hit_start, hit_mask, nw):
    """Test the slots b..end-1 against the query point (qx, qy, qz) in windows of WINDOW slots, one vector
    comparison each (one window at least: an empty range gives no hit; rarely more), noting each window
    with a hit (its first slot, the mask of its hits within the range) from hit_start[nw] on. Returns the
    new count of windows with a hit. ``scan_rows``' one window loop, for the plain ranges and for the
    ranges across a periodic end (there from the moved query point)."""
    while True:
        mask = within_reach(xs, ys, zs, b, qx, qy, qz, reach2) & ((np.int64(1) << max(min(end - b, WINDOW), 0)) - 1)
        hit_start[nw] = b
        hit_mask[nw] = mask
        nw += mask != 0
        b += WINDOW
        if b >= end:
            break
    return nw


# Slot ranges across a periodic end at most: the right cell across the end of x, and per neighbour row of
# _ROWS two (the row across the end of y or z, the cell across the end of x).
_MAX_WRAPPED = 1 + 2 * 4


@njit
def scan_rows(sorted_pos, order, n_own, reach, cell_start, dims, owned_lo, owned_hi, periodic_edges, row_lo, row_hi,
              first, second):
    """``build_pairs`` over the cells of the x-rows row_lo <= cz * ny + cy < row_hi only: each pair is
    found from the row of the cell of its ``first`` particle. The pairs of a particle come out as one
    run (core/sparse.py relies on it), in slot order within each range of the stencil. Returns their
    number; if it is not below the capacity, the caller retries with more room (the last slot is scratch).

    sorted_pos: the binning coordinates by slot, one row per axis (``CellList.build``), with
    ``SCAN_PAD`` readable slots past the last. Each slot range of a particle's stencil is tested through
    windows of ``simd.WINDOW`` slots, one vector comparison each (``simd.within_reach``); the windows
    with a hit are noted without a branch, then their hits listed.

    periodic_edges: per axis, the box edge where the cells are periodic (an axis no rank splits, at least
    three cells: no ghost layer, ``CellList.periodic_edges``), else 0 (ghost layers, no wrap). A neighbour
    cell across a periodic end lies one edge over: its slots form a range of their own, searched from the query point
    moved by that edge the other way (qx = x_i - s, then qx - x_b), so no candidate needs a minimum image.
    Which pairs within reach are found does not depend on the rounding of that subtraction (the reach has
    a margin over the contact distance; the pair pass takes the minimum image of the wrapped positions,
    as for a ghost)."""
    reach2 = reach * reach
    cap = first.shape[0]
    m = 0
    nx, ny, nz = dims[0], dims[1], dims[2]
    xs, ys, zs = sorted_pos[0], sorted_pos[1], sorted_pos[2]
    lx, ly, lz = periodic_edges[0], periodic_edges[1], periodic_edges[2]
    px = lx > 0.0
    # (two allocations for the small arrays below: the cell pass calls this once per block of rows)
    ints = np.empty((6, _MAX_WRAPPED), dtype=np.int64)
    floats = np.zeros((5, _MAX_WRAPPED))
    lo, hi = ints[0], ints[1]
    # ranges across a periodic end (rare: cells at the box's ends), apart so that the other cells' loop
    # stays the plain one; with where their cells lie from the query cell (box edges) per axis
    w_lo, w_hi = ints[2], ints[3]
    w_sx, w_sy, w_sz = floats[0], floats[1], floats[2]
    # windows with a hit: first slot and the mask of hits
    hit_start = np.empty(64, dtype=np.int64)
    hit_mask = np.empty(64, dtype=np.int64)
    olx, oly, olz = owned_lo[0], owned_lo[1], owned_lo[2]
    ohx, ohy, ohz = owned_hi[0], owned_hi[1], owned_hi[2]
    # the neighbour rows of the current row of cells (the rows of _ROWS that exist): first cell, where they
    # lie (box edges along y, z: 0 in place), whether they are owned along y and z
    nb_base, nb_owned = ints[4], ints[5]
    nb_sy, nb_sz = floats[3], floats[4]
    for row in range(row_lo, row_hi):
        cz, cy = row // ny, row % ny
        owned_yz = oly <= cy <= ohy and olz <= cz <= ohz
        n_nb = 0
        plain_row = True          # no neighbour row across an end of y or z
        for r in range(_ROWS.shape[0]):
            yy, zz, y_shift, z_shift = _neighbour_row(cy + _ROWS[r, 0], cz + _ROWS[r, 1], ny, nz, ly, lz)
            if yy < 0:
                continue
            nb_base[n_nb] = (zz * ny + yy) * nx
            nb_sy[n_nb] = y_shift
            nb_sz[n_nb] = z_shift
            nb_owned[n_nb] = oly <= yy <= ohy and olz <= zz <= ohz
            plain_row = plain_row and y_shift == 0.0 and z_shift == 0.0
            n_nb += 1
        for cx in range(nx):
            c = row * nx + cx
            if cell_start[c] == cell_start[c + 1]:
                continue
            # The slot ranges of the neighbour rows are the same for every particle of the cell;
            # range 0 (the rest of this cell and the cell to its right) starts after the particle.
            # A ghost cell holds ghosts only (owned rows are clamped into owned cells): from it only the
            # owned cells of the stencil are searched, as a pair of two ghosts is never listed (the
            # same ranges cut to owned cells, in the same order: the list is the same).
            ghost_cell = not (owned_yz and olx <= cx <= ohx)
            if plain_row and 0 < cx < nx - 1 and not ghost_cell:
                # (most cells: an owned cell whose whole stencil is in place, x - 1 to x + 1 in every row)
                hi[0] = cell_start[c + 2]
                right_start = cell_start[c + 1]
                room = 2 + (hi[0] - cell_start[c]) // WINDOW
                for q in range(n_nb):
                    lo[q + 1] = cell_start[nb_base[q] + cx - 1]
                    hi[q + 1] = cell_start[nb_base[q] + cx + 2]
                    room += 1 + (hi[q + 1] - lo[q + 1]) // WINDOW
                nrows = n_nb + 1
                n_wrapped = 0
            else:
                hi[0] = cell_start[c + 2] if cx + 1 < nx else cell_start[c + 1]
                right_start = cell_start[c + 1]
                if ghost_cell and not (owned_yz and olx <= cx + 1 <= ohx):
                    right_start = hi[0]        # the right cell is a ghost cell too: range 0 is empty
                nrows = 1
                n_wrapped = 0
                room = 2 + (hi[0] - cell_start[c]) // WINDOW
                # the x cells of a neighbour row: x_lo..x_hi in place, and cell x_wrap (if >= 0) one edge
                # x_shift over (a periodic x has no ghost cells)
                x_wrap, x_shift = -1, 0.0
                if not ghost_cell:
                    x_lo, x_hi = max(cx - 1, 0), min(cx + 1, nx - 1)
                else:
                    x_lo, x_hi = max(cx - 1, olx), min(cx + 1, ohx)
                if px:
                    if cx == 0:
                        x_wrap, x_shift = nx - 1, -lx
                    elif cx == nx - 1:
                        x_wrap, x_shift = 0, lx
                        if owned_yz:        # the right cell is cell 0 of this row, one edge over
                            w_lo[0] = cell_start[row * nx]
                            w_hi[0] = cell_start[row * nx + 1]
                            w_sx[0], w_sy[0], w_sz[0] = lx, 0.0, 0.0
                            room += 1 + (w_hi[0] - w_lo[0]) // WINDOW
                            n_wrapped = 1
                for q in range(n_nb):
                    if ghost_cell and not (nb_owned[q] and x_lo <= x_hi):
                        continue
                    base = nb_base[q]
                    if nb_sy[q] == 0.0 and nb_sz[q] == 0.0:
                        lo[nrows] = cell_start[base + x_lo]
                        hi[nrows] = cell_start[base + x_hi + 1]
                        room += 1 + (hi[nrows] - lo[nrows]) // WINDOW
                        nrows += 1
                    else:
                        w_lo[n_wrapped] = cell_start[base + x_lo]
                        w_hi[n_wrapped] = cell_start[base + x_hi + 1]
                        w_sx[n_wrapped], w_sy[n_wrapped], w_sz[n_wrapped] = 0.0, nb_sy[q], nb_sz[q]
                        room += 1 + (w_hi[n_wrapped] - w_lo[n_wrapped]) // WINDOW
                        n_wrapped += 1
                    if x_wrap >= 0:
                        w_lo[n_wrapped] = cell_start[base + x_wrap]
                        w_hi[n_wrapped] = cell_start[base + x_wrap + 1]
                        w_sx[n_wrapped], w_sy[n_wrapped], w_sz[n_wrapped] = x_shift, nb_sy[q], nb_sz[q]
                        room += 1 + (w_hi[n_wrapped] - w_lo[n_wrapped]) // WINDOW
                        n_wrapped += 1
            if room > hit_start.shape[0]:
                hit_start = np.empty(2 * room, dtype=np.int64)     # rare: more candidates than ever before
                hit_mask = np.empty(2 * room, dtype=np.int64)
            for a in range(cell_start[c], cell_start[c + 1]):
                i = order[a]
                own_i = i < n_own
                xi, yi, zi = xs[a], ys[a], zs[a]
                lo[0] = right_start if ghost_cell else a + 1
                nw = 0
                for r in range(nrows):
                    nw = _scan_range(xs, ys, zs, lo[r], hi[r], xi, yi, zi, reach2, hit_start, hit_mask, nw)
                for r in range(n_wrapped):
                    # the same from the query point moved the other way: (x_i - s) - x_b
                    nw = _scan_range(xs, ys, zs, w_lo[r], w_hi[r], xi - w_sx[r], yi - w_sy[r], zi - w_sz[r], reach2,
                                     hit_start, hit_mask, nw)
                for w in range(nw):
                    b, mask = hit_start[w], hit_mask[w]
                    while mask:
                        j = order[b + lowest_bit(mask)]
                        mask &= mask - 1
                        k = min(m, cap - 1)   # past the capacity: count, keep no more
                        first[k] = i
                        second[k] = j
                        m += own_i or j < n_own
    return m


# Lanes of a cluster against a window (``simd.within_reach_4x4``, bit 4 k + l): lane l of every query
# (times the lane mask of a window), and the lanes with l >= k (the window that starts one slot after the
# cluster: slot b + l is after slot a + k).
_EACH_QUERY = 0x1111
_LATER_SLOTS = 0x8CEF
# Slot ranges a cluster searches at most: its own row and the cell across the end of x, and per neighbour
# row of _ROWS three (in place, across either end of x).
_CLUSTER_RANGES = 2 + 3 * 4


@inline
def _scan_cluster_range(xs, ys, zs, a, b, end, sx, sy, sz, reach2, query_mask, first_mask, hit_start, hit_mask, nw):
    """``_scan_range`` for the cluster of slots a..a+3 (lanes past its row masked by query_mask) from the
    query points moved by (sx, sy, sz), against the slots b..end-1: the first window's lanes also masked
    by first_mask. Notes each window with a hit (first slot, 16-lane mask) from hit_start[nw] on."""
    extra = first_mask
    while True:
        lanes = (np.int64(1) << max(min(end - b, WINDOW), 0)) - 1
        mask = within_reach_4x4(xs, ys, zs, a, b, sx, sy, sz, reach2) & query_mask & (lanes * _EACH_QUERY) & extra
        hit_start[nw] = b
        hit_mask[nw] = mask
        nw += mask != 0
        extra = -1
        b += WINDOW
        if b >= end:
            break
    return nw


@njit
def scan_clusters(sorted_pos, order, cell_of, reach, cell_start, dims, periodic_edges, row_lo, row_hi, first, second):
    """``scan_rows`` for a rank whose axes all have periodic cells (one rank: no ghost rows, every particle
    owned; in 2d the unused z has one cell, neither ghosts nor wrap), by clusters: the slots of an x-row
    of cells four at a time (a cluster spans ~3.4 cells) are tested against windows of four slots, one
    16-lane comparison per window (``simd.within_reach_4x4``), over the union of their stencils: in each
    neighbour row of ``_ROWS`` the cells from left of the first one's cell to right of the last one's (and
    the cells across an end of x, y, z from the moved query points, as in scan_rows), in their own row the
    later slots up to the cell right of the last one's. More candidates a particle (~30 instead of ~23
    lanes of windows at N = 1e5, phi = 0.6) in far fewer windows and loop exits (9.2 a cluster instead of
    5.8 a particle): docs/performance.md, "Large kicks".

    The same pairs as ``scan_rows``, not in its order (for the cell pass, whose sums do not depend on it):
    each candidate (particle, slot, image) is tested at most once, with the same IEEE operations, and one
    within reach lies in an adjacent cell, which the union holds. Pairs of a row with a neighbour row are
    found from the row only, pairs within a row from the earlier slot. Returns the number of pairs; if it
    is not below the capacity, the caller retries with more room (the last slot is scratch)."""
    reach2 = reach * reach
    cap = first.shape[0]
    m = 0
    nx, ny, nz = dims[0], dims[1], dims[2]
    xs, ys, zs = sorted_pos[0], sorted_pos[1], sorted_pos[2]
    lx, ly, lz = periodic_edges[0], periodic_edges[1], periodic_edges[2]
    # windows a cluster notes at most: _CLUSTER_RANGES ranges, each within one row of cells of the block's
    # layers of rows (along z) or of the next layer
    n_rows = ny * nz
    most = 0
    for r in range((row_lo // ny) * ny, ((row_hi - 1) // ny + 2) * ny):
        row = r % n_rows
        most = max(most, cell_start[row * nx + nx] - cell_start[row * nx])
    hit_start = np.empty(_CLUSTER_RANGES * (2 + most // WINDOW), dtype=np.int64)
    hit_mask = np.empty(_CLUSTER_RANGES * (2 + most // WINDOW), dtype=np.int64)
    # the neighbour rows of the current row of cells (the rows of _ROWS that exist: in 2d, z has one cell
    # and no wrap), their first cell and where they lie (box edges along y, z)
    nb_base = np.empty(_ROWS.shape[0], dtype=np.int64)
    nb_shift = np.empty((2, _ROWS.shape[0]))
    for row in range(row_lo, row_hi):
        cz, cy = row // ny, row % ny
        n_nb = 0
        for r in range(_ROWS.shape[0]):
            yy, zz, y_shift, z_shift = _neighbour_row(cy + _ROWS[r, 0], cz + _ROWS[r, 1], ny, nz, ly, lz)
            if yy < 0:
                continue
            nb_base[n_nb] = (zz * ny + yy) * nx
            nb_shift[0, n_nb] = y_shift
            nb_shift[1, n_nb] = z_shift
            n_nb += 1
        row_start = row * nx
        row_end = cell_start[row_start + nx]
        for a in range(cell_start[row_start], row_end, WINDOW):
            queries = min(row_end - a, WINDOW)
            query_mask = (np.int64(1) << (WINDOW * queries)) - 1
            x_first = cell_of[order[a]] - row_start
            x_last = cell_of[order[a + queries - 1]] - row_start
            x_lo, x_hi = max(x_first - 1, 0), min(x_last + 1, nx - 1)
            nw = 0
            end = cell_start[row_start + x_hi + 1]
            if a + 1 < end:
                nw = _scan_cluster_range(xs, ys, zs, a, a + 1, end, 0.0, 0.0, 0.0, reach2, query_mask, _LATER_SLOTS,
                                         hit_start, hit_mask, nw)
            if x_last == nx - 1:         # the right cell is cell 0 of this row, one edge over
                nw = _scan_cluster_range(xs, ys, zs, a, cell_start[row_start], cell_start[row_start + 1], lx, 0.0,
                                         0.0, reach2, query_mask, -1, hit_start, hit_mask, nw)
            for r in range(n_nb):
                base, sy, sz = nb_base[r], nb_shift[0, r], nb_shift[1, r]
                nw = _scan_cluster_range(xs, ys, zs, a, cell_start[base + x_lo], cell_start[base + x_hi + 1], 0.0,
                                         sy, sz, reach2, query_mask, -1, hit_start, hit_mask, nw)
                if x_first == 0:
                    nw = _scan_cluster_range(xs, ys, zs, a, cell_start[base + nx - 1], cell_start[base + nx], -lx,
                                             sy, sz, reach2, query_mask, -1, hit_start, hit_mask, nw)
                if x_last == nx - 1:
                    nw = _scan_cluster_range(xs, ys, zs, a, cell_start[base], cell_start[base + 1], lx, sy, sz,
                                             reach2, query_mask, -1, hit_start, hit_mask, nw)
            for w in range(nw):
                b, mask = hit_start[w], hit_mask[w]
                while mask:
                    lane = lowest_bit(mask)
                    mask &= mask - 1
                    k = min(m, cap - 1)   # past the capacity: count, keep no more
                    first[k] = order[a + (lane >> 2)]       # lane 4 k + l: slots a + k, b + l
                    second[k] = order[b + (lane & 3)]
                    m += 1
    return m


def periodic_cells(length, min_width):
    """Cells along an axis of d > 3 past the third (periodic, no ghosts): as many of width >= min_width as
    fit, if at least three (so the neighbours -1, 0, +1 are three distinct cells), else one."""
    n = int(np.floor(length / min_width))
    return n if n >= 3 else 1


def half_offsets(extra_dims):
    """Neighbour offsets in {-1, 0, 1} along the axes past the third, one of each +- pair, zero omitted
    (the first non-zero entry positive); axes with one cell take only 0. Shape (m, d - 3), int64."""
    import itertools
    choices = [(-1, 0, 1) if n >= 3 else (0,) for n in extra_dims]
    out = [o for o in itertools.product(*choices) if any(o) and next(x for x in o if x) > 0]
    return np.array(out, dtype=np.int64).reshape(-1, len(extra_dims))


@njit
def build_cells_wide(pos, shift, box, n_own, n_total, origin, width, dims, owned_lo, owned_hi, cell_of,
                     cell_start, order, sorted_pos):
    """build_cells for d > 3: the three binned axes as there; along each further axis a periodic cell of
    the wrapped coordinate (no ghosts, no shift). Cell c = ((e * nz + cz) * ny + cy) * nx + cx, e the
    further axes' cell (the last axis slowest)."""
    ncell = 1
    for a in range(dims.shape[0]):
        ncell *= dims[a]
    for c in range(ncell + 1):
        cell_start[c] = 0
    for p in range(n_total):
        own = p < n_own
        c = 0
        for a in range(dims.shape[0] - 1, 2, -1):
            c = c * dims[a] + min(int(np.floor(pos[p, a] / width[a])), dims[a] - 1)
        for a in range(2, -1, -1):
            lo = owned_lo[a] if own else 0
            hi = owned_hi[a] if own else dims[a] - 1
            ca = min(max(int(np.floor((pos[p, a] + shift[p, a] * box[a] - origin[a]) / width[a])), lo), hi)
            c = c * dims[a] + ca
        cell_of[p] = c
        cell_start[c + 1] += 1
    fill_cells(pos, shift, box, n_total, ncell, cell_of, cell_start, order, sorted_pos)


@inline
def _neighbour_cell(c, o, n, lo, hi, periodic):
    """(c + o along one axis of d > 3's cells, or -1 where a search does not go; the box lengths to add to
    that cell's coordinates to bring them next to cell c): a periodic axis wraps (n >= 3 cells; with one
    cell only o = 0 exists), a ghosted axis stops at [lo, hi]."""
    v = c + o
    if periodic:
        if n == 1:
            return (0 if o == 0 else -1), 0.0
        if v < 0:
            return v + n, -1.0
        if v >= n:
            return v - n, 1.0
        return v, 0.0
    return (v if lo <= v <= hi else -1), 0.0


@inline
def _x_ranges(cx, nx, lo, hi, periodic):
    """The cells cx - 1, cx, cx + 1 along x that a search visits, as up to two runs of contiguous cells,
    (a0, a1, b0, b1, b_shift): a0..a1 in place, b0..b1 (empty if b0 > b1) the wrapped end of a periodic
    axis, b_shift box lengths from where it lies next to cx; a ghosted axis stops at [lo, hi]."""
    if periodic:
        if nx == 1:
            return 0, 0, 1, 0, 0.0
        if cx == 0:
            return 0, 1, nx - 1, nx - 1, -1.0
        if cx == nx - 1:
            return nx - 2, nx - 1, 0, 0, 1.0
        return cx - 1, cx + 1, 1, 0, 0.0
    return max(cx - 1, lo), min(cx + 1, hi), 1, 0, 0.0


@njit
def build_pairs_wide(sorted_pos, order, n_own, reach, cell_start, dims, owned_lo, owned_hi, periodic,
                     extra_offsets, first, second, box, image):
    """``build_pairs`` for d = 4 to 6 over cells on every axis. The three binned axes are either ghosted
    (split by the rank grid: ghost layers, no wrap, as in 3d) or, when no rank splits them, periodic like
    the further axes (``periodic[a]``: periodic cells of the wrapped coordinate, no ghosts; a ghost layer
    would hold 2-4 N rows in the small boxes of d > 3 and the pair list each pair across a face twice).
    Cells of the same further-axes cell e: the binned axes' half stencil (the rest of the cell, the cell to
    its right, the rows (dy, dz) of ``_ROWS``); cells of a neighbouring e' = e + o (periodic, o from
    ``extra_offsets``: one of each +- pair): the full 3 x 3 x 3 block of binned cells, so each pair of
    cells is visited once. From a ghost cell (outside owned_lo..owned_hi on a ghosted axis: it holds
    ghosts only, owned particles being clamped into owned cells) only owned cells are searched: a pair of
    two ghosts is never listed.

    Separations: a range of slots from a neighbour cell reached across a periodic end of a binned axis
    is searched from the query point moved by that box length (no minimum image per candidate); ``image``
    (a tuple of d floats) holds the lengths whose minimum image the separation still takes: a binned axis
    with one periodic cell and every further axis (box edge), inf elsewhere. box: the edges, a tuple of d
    floats; the kernel is compiled once per d (constant trip counts). Which pairs within reach are found
    does not depend on the rounding of these separations (the reach has a margin over the contact
    distance, and the pair pass tests every pair with the minimum image)."""
    reach2 = reach * reach
    cap = first.shape[0]
    m = 0
    nx, ny, nz = dims[0], dims[1], dims[2]
    px, py, pz = periodic[0] != 0, periodic[1] != 0, periodic[2] != 0
    lx, ly, lz = box[0], box[1], box[2]
    hx, hy, hz = 0.5 * image[0], 0.5 * image[1], 0.5 * image[2]
    n3 = nx * ny * nz
    n_extra_axes = dims.shape[0] - 3
    n_extra = 1
    for a in range(3, dims.shape[0]):
        n_extra *= dims[a]
    n_off = extra_offsets.shape[0]
    n_ranges = 2 + 2 * (_ROWS.shape[0] + 9 * n_off)
    lo = np.empty(n_ranges, dtype=np.int64)
    hi = np.empty(n_ranges, dtype=np.int64)
    sx = np.zeros(n_ranges)          # where a range's cells lie from the query cell: box lengths x edge
    sy = np.zeros(n_ranges)
    sz = np.zeros(n_ranges)
    e_idx = np.empty(n_extra_axes, dtype=np.int64)
    neighbour_base = np.empty(n_off, dtype=np.int64)
    for e in range(n_extra):
        # this further-axes cell's indices (axis 3 fastest) and its neighbours' first cells
        rest = e
        for a in range(n_extra_axes):
            e_idx[a] = rest % dims[3 + a]
            rest //= dims[3 + a]
        for t in range(n_off):
            f = 0
            for a in range(n_extra_axes - 1, -1, -1):
                f = f * dims[3 + a] + (e_idx[a] + extra_offsets[t, a]) % dims[3 + a]
            neighbour_base[t] = f * n3
        base_e = e * n3
        for cz in range(nz):
            for cy in range(ny):
                for cx in range(nx):
                    c = base_e + (cz * ny + cy) * nx + cx
                    if cell_start[c] == cell_start[c + 1]:
                        continue
                    # the cells a candidate may be in: any, or the owned ones from a ghost cell
                    ghost_cell = not (owned_lo[0] <= cx <= owned_hi[0] and owned_lo[1] <= cy <= owned_hi[1]
                                      and owned_lo[2] <= cz <= owned_hi[2])
                    xlo, ylo, zlo = (owned_lo[0], owned_lo[1], owned_lo[2]) if ghost_cell else (0, 0, 0)
                    xhi, yhi, zhi = ((owned_hi[0], owned_hi[1], owned_hi[2]) if ghost_cell
                                     else (nx - 1, ny - 1, nz - 1))
                    # range 0: the rest of this cell (set per particle; none from a ghost cell), with the
                    # cell to its right when that one follows it in the cell order
                    nrows = 1
                    hi[0] = cell_start[c + 1]
                    sx[0] = sy[0] = sz[0] = 0.0
                    right, shift = _neighbour_cell(cx, 1, nx, xlo, xhi, px)
                    if right >= 0 and ylo <= cy <= yhi and zlo <= cz <= zhi:
                        if right == cx + 1 and not ghost_cell:
                            hi[0] = cell_start[c + 2]
                        else:
                            row_base = base_e + (cz * ny + cy) * nx
                            lo[nrows] = cell_start[row_base + right]
                            hi[nrows] = cell_start[row_base + right + 1]
                            sx[nrows], sy[nrows], sz[nrows] = shift * lx, 0.0, 0.0
                            nrows += 1
                    a0, a1, b0, b1, bs = _x_ranges(cx, nx, xlo, xhi, px)
                    for r in range(_ROWS.shape[0]):
                        yy, ys = _neighbour_cell(cy, _ROWS[r, 0], ny, ylo, yhi, py)
                        zz, zs = _neighbour_cell(cz, _ROWS[r, 1], nz, zlo, zhi, pz)
                        if yy < 0 or zz < 0:
                            continue
                        base = base_e + (zz * ny + yy) * nx
                        if a0 <= a1:
                            lo[nrows] = cell_start[base + a0]
                            hi[nrows] = cell_start[base + a1 + 1]
                            sx[nrows], sy[nrows], sz[nrows] = 0.0, ys * ly, zs * lz
                            nrows += 1
                        if b0 <= b1:
                            lo[nrows] = cell_start[base + b0]
                            hi[nrows] = cell_start[base + b1 + 1]
                            sx[nrows], sy[nrows], sz[nrows] = bs * lx, ys * ly, zs * lz
                            nrows += 1
                    for t in range(n_off):
                        for oz in range(-1, 2):
                            zz, zs = _neighbour_cell(cz, oz, nz, zlo, zhi, pz)
                            if zz < 0:
                                continue
                            for oy in range(-1, 2):
                                yy, ys = _neighbour_cell(cy, oy, ny, ylo, yhi, py)
                                if yy < 0:
                                    continue
                                base = neighbour_base[t] + (zz * ny + yy) * nx
                                if a0 <= a1:
                                    lo[nrows] = cell_start[base + a0]
                                    hi[nrows] = cell_start[base + a1 + 1]
                                    sx[nrows], sy[nrows], sz[nrows] = 0.0, ys * ly, zs * lz
                                    nrows += 1
                                if b0 <= b1:
                                    lo[nrows] = cell_start[base + b0]
                                    hi[nrows] = cell_start[base + b1 + 1]
                                    sx[nrows], sy[nrows], sz[nrows] = bs * lx, ys * ly, zs * lz
                                    nrows += 1
                    for a in range(cell_start[c], cell_start[c + 1]):
                        i = order[a]
                        own_i = i < n_own
                        xi, yi, zi = sorted_pos[0, a], sorted_pos[1, a], sorted_pos[2, a]
                        lo[0] = hi[0] if ghost_cell else a + 1
                        for r in range(nrows):
                            qx, qy, qz = xi - sx[r], yi - sy[r], zi - sz[r]
                            for b in range(lo[r], hi[r]):
                                dx = minimum_image(qx - sorted_pos[0, b], image[0], hx)
                                dy = minimum_image(qy - sorted_pos[1, b], image[1], hy)
                                dz = minimum_image(qz - sorted_pos[2, b], image[2], hz)
                                r2 = dx * dx + dy * dy + dz * dz
                                if r2 >= reach2:
                                    continue
                                for ax in range(3, len(image)):
                                    length = image[ax]
                                    d = minimum_image(sorted_pos[ax, a] - sorted_pos[ax, b], length, 0.5 * length)
                                    r2 += d * d
                                if r2 < reach2:
                                    j = order[b]
                                    if own_i or j < n_own:
                                        w = min(m, cap - 1)   # past the capacity: count, keep no more
                                        first[w] = i
                                        second[w] = j
                                        m += 1
    return m
