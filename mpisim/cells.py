"""Cell lists over a rank's extended region (owned cells plus one layer of ghost cells).

The grid is fixed by the decomposition (``Domain.grid``): cell width >= the interaction range with a small
margin, so that every pair within range sits in the same or in adjacent cells even when rounding puts a
particle on the wrong side of a cell face. Particles are binned by their *binning* coordinate (position
plus the ghost's periodic shift), never wrapped, so ghosts land in the ghost layer.
The build is a counting sort: O(n), no allocation (arrays come from ``CellList``).
"""
import numpy as np

from ._jit import njit


def half_stencil(dim):
    """Offsets of the neighbour cells visited from each cell: half of the 3^dim - 1 neighbours, so that
    every pair of distinct cells is visited once. Shape (13, 3) in 3d and (4, 3) in 2d."""
    offsets = []
    for dz in (-1, 0, 1) if dim == 3 else (0,):
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                if (dz, dy, dx) > (0, 0, 0):
                    offsets.append((dx, dy, dz))
    return np.array(offsets, dtype=np.int64)


class CellList:
    """Storage for one rank's cell list; grows (never shrinks) when a rank gains particles."""

    def __init__(self, dims, origin, width, owned_lo, owned_hi, dim):
        self.dims = np.asarray(dims, dtype=np.int64)              # cells per axis, ghost layers included
        self.origin = np.asarray(origin, dtype=np.float64)        # lower corner of cell (0, 0, 0)
        self.width = np.asarray(width, dtype=np.float64)          # cell edge per axis
        self.owned_lo = np.asarray(owned_lo, dtype=np.int64)      # first owned cell index per axis
        self.owned_hi = np.asarray(owned_hi, dtype=np.int64)      # last owned cell index per axis
        self.stencil = half_stencil(dim)
        ncell = int(np.prod(self.dims))
        self.cell_start = np.zeros(ncell + 1, dtype=np.int64)
        self.ghost_cell = np.zeros(ncell, dtype=np.uint8)
        _mark_ghost_cells(self.dims, self.owned_lo, self.owned_hi, self.ghost_cell)
        self.order = np.zeros(0, dtype=np.int64)
        self.cell_of = np.zeros(0, dtype=np.int64)

    def build(self, pos, shift, box, n_own, n_total):
        if self.order.shape[0] < n_total:
            self.order = np.zeros(int(n_total * 1.25) + 16, dtype=np.int64)
            self.cell_of = np.zeros_like(self.order)
        build_cells(pos, shift, box, n_own, n_total, self.origin, self.width, self.dims, self.owned_lo,
                    self.owned_hi, self.cell_of, self.cell_start, self.order)


@njit
def _mark_ghost_cells(dims, owned_lo, owned_hi, ghost_cell):
    for cz in range(dims[2]):
        for cy in range(dims[1]):
            for cx in range(dims[0]):
                inside = (owned_lo[0] <= cx <= owned_hi[0] and owned_lo[1] <= cy <= owned_hi[1]
                          and owned_lo[2] <= cz <= owned_hi[2])
                ghost_cell[(cz * dims[1] + cy) * dims[0] + cx] = 0 if inside else 1


@njit
def build_cells(pos, shift, box, n_own, n_total, origin, width, dims, owned_lo, owned_hi, cell_of,
                cell_start, order):
    """Counting sort of particles 0..n_total-1 into cells; owned particles are clamped to owned cells and
    ghosts to the whole grid. After the call the particles of cell c are order[cell_start[c]:cell_start[c+1]]."""
    ncell = dims[0] * dims[1] * dims[2]
    for c in range(ncell + 1):
        cell_start[c] = 0
    for p in range(n_total):
        lo0, lo1, lo2 = (owned_lo[0], owned_lo[1], owned_lo[2]) if p < n_own else (0, 0, 0)
        hi0, hi1, hi2 = ((owned_hi[0], owned_hi[1], owned_hi[2]) if p < n_own
                         else (dims[0] - 1, dims[1] - 1, dims[2] - 1))
        c0 = min(max(int(np.floor((pos[p, 0] + shift[p, 0] * box[0] - origin[0]) / width[0])), lo0), hi0)
        c1 = min(max(int(np.floor((pos[p, 1] + shift[p, 1] * box[1] - origin[1]) / width[1])), lo1), hi1)
        c2 = min(max(int(np.floor((pos[p, 2] + shift[p, 2] * box[2] - origin[2]) / width[2])), lo2), hi2)
        c = (c2 * dims[1] + c1) * dims[0] + c0
        cell_of[p] = c
        cell_start[c + 1] += 1
    for c in range(ncell):
        cell_start[c + 1] += cell_start[c]
    # Fill back to front so that each cell keeps its particles in storage order; afterwards
    # cell_start[c + 1] holds the start of cell c, hence the final shift by one.
    for p in range(n_total - 1, -1, -1):
        c = cell_of[p]
        cell_start[c + 1] -= 1
        order[cell_start[c + 1]] = p
    for c in range(ncell):
        cell_start[c] = cell_start[c + 1]
    cell_start[ncell] = n_total


class PairList:
    """Verlet list: every pair with at least one owned particle within rcut + skin at build time, as two
    flat index arrays. Fixed capacity; ``build`` grows it and retries on overflow (jax-md's allocate/update
    split)."""

    def __init__(self, capacity=1024):
        self.first = np.zeros(capacity, dtype=np.int32)
        self.second = np.zeros(capacity, dtype=np.int32)
        self.n = 0

    def build(self, cells, pos, shift, box, n_own, reach):
        while True:
            n = build_pairs(pos, shift, box, n_own, reach, cells.cell_start, cells.order, cells.dims,
                            cells.stencil, cells.ghost_cell, self.first, self.second)
            if n <= self.first.shape[0]:
                self.n = n
                return
            self.first = np.zeros(int(n * 1.2) + 1024, dtype=np.int32)
            self.second = np.zeros_like(self.first)

    @property
    def nbytes(self):
        return self.first.nbytes + self.second.nbytes


@njit
def build_pairs(pos, shift, box, n_own, reach, cell_start, order, dims, stencil, ghost_cell, first, second):
    """Fill first/second with the pairs closer than reach in binning coordinates (owned + shift * L);
    returns the number of pairs (which may exceed the capacity: then nothing past it was stored)."""
    reach2 = reach * reach
    cap = first.shape[0]
    m = 0
    bx, by, bz = box[0], box[1], box[2]
    nx, ny, nz = dims[0], dims[1], dims[2]
    for cz in range(nz):
        for cy in range(ny):
            for cx in range(nx):
                c = (cz * ny + cy) * nx + cx
                for s in range(-1, stencil.shape[0]):
                    if s < 0:
                        c2 = c
                    else:
                        ox, oy, oz = cx + stencil[s, 0], cy + stencil[s, 1], cz + stencil[s, 2]
                        if ox < 0 or oy < 0 or oz < 0 or ox >= nx or oy >= ny or oz >= nz:
                            continue
                        c2 = (oz * ny + oy) * nx + ox
                    if ghost_cell[c] and ghost_cell[c2]:
                        continue
                    for a in range(cell_start[c], cell_start[c + 1]):
                        i = order[a]
                        xi = pos[i, 0] + shift[i, 0] * bx
                        yi = pos[i, 1] + shift[i, 1] * by
                        zi = pos[i, 2] + shift[i, 2] * bz
                        b0 = a + 1 if s < 0 else cell_start[c2]
                        for b in range(b0, cell_start[c2 + 1]):
                            j = order[b]
                            if i >= n_own and j >= n_own:
                                continue
                            dx = xi - (pos[j, 0] + shift[j, 0] * bx)
                            dy = yi - (pos[j, 1] + shift[j, 1] * by)
                            dz = zi - (pos[j, 2] + shift[j, 2] * bz)
                            if dx * dx + dy * dy + dz * dz < reach2:
                                if m < cap:
                                    first[m] = i
                                    second[m] = j
                                m += 1
    return m
