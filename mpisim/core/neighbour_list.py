"""The neighbour list of one rank: its cell list, Verlet pair list, skin and rebuild policy.

The pair list holds every pair within reach = rcut + skin at build time (at least one particle owned);
it stays valid until some particle has travelled more than skin/2 since the build, since only then can
a pair that was not listed have come within contact. The skin changes speed, never results: the pair
pass tests every listed pair for overlap at every step (docs/architecture.md, "Verlet list with skin").

MPI-free (HOOMD's md/nlist.py, jax-md's partition.neighbor_list): the exchanges a rebuild needs are
asked of a *halo*, any object with ``migrate(state)``, ``borders(state, ghost_width)`` and
``forward(state)`` (mpisim.parallel.domain.Domain, also on one rank).

One step reads the list through ``update()`` (before the pair pass) and feeds the travel check back
through ``travelled_too_far()`` (after the move).

With ``sparse=True`` the list also keeps the sparse step's bookkeeping (core/sparse.py: each row's pairs,
the rows active at the last pass). Between builds rows keep their numbers, so ``update()`` then refreshes
only the ghosts whose owner moved (``halo.forward_changed``) and the step may visit only the pairs
touching the rows that can have changed; a build renumbers everything, and the pass after it is dense.
"""
import numpy as np

from .cells import CELL_MARGIN, CUTOFF_MARGIN, CellList, PairList
from .sparse import SparseStep


class NeighbourList:
    """Cell list and Verlet list over one rank's region, with the skin and rebuild policy. Rank-local.

    box: global edges (3,) (the unused third edge of a 2-d system is 1); lo, width: the rank's region
    (its subdomain: the owned cells tile it), (3,) each; cutoff: the largest contact distance
    (max R_i + R_j); skin: the requested Verlet skin, reduced where the region or the box is too small
    for it (``max_skin`` is the one allowed); sort_every: steps between spatial sorts of the owned rows
    (memory locality only); sparse: keep the sparse step's bookkeeping (stateless schemes).
    """

    def __init__(self, box, dim, lo, width, cutoff, skin=0.0, sort_every=100, sparse=False):
        self.box = np.asarray(box, dtype=np.float64)
        self.dim = dim
        self.lo = np.asarray(lo, dtype=np.float64)
        self.width = np.asarray(width, dtype=np.float64)
        self.rcut = float(cutoff) * (1 + CUTOFF_MARGIN)
        # The skin must leave a cell (>= rcut + skin) inside the region and keep the periodic image of a
        # pair unique (box > 2 (rcut + skin)).
        room = min(min(self.width[:dim]), 0.5 * min(self.box[:dim])) / (1 + CELL_MARGIN) - self.rcut
        self.max_skin = float(max(0.0, min(skin, 0.999 * room)))
        self.skin = self.max_skin      # in use: adapted to how far particles move per step
        self.sort_every = sort_every
        self.cells = None
        self.pairs = PairList()
        self.stale = True              # the next update() rebuilds
        self.last_sort = None          # step of the last spatial sort (None: sort at the next rebuild)
        self.rebuilds = 0
        self.sparse = SparseStep() if sparse else None
        self.sparse_valid = False      # the sparse bookkeeping matches the rows and the last pass
        self.max_travel = 0.0          # rank-local: an upper bound of any owned row's distance from the build
        self.few_active = False        # global, set by the step: few particles active, keep the skin
        self.from_build = False        # sparse.build_pos holds the positions at the last build
        self._size_cells(self.rcut + self.skin)

    @property
    def reach(self):
        """Distance within which pairs are listed: rcut + the skin in use."""
        return self.rcut + self.skin

    def _size_cells(self, reach):
        """Size cells for pairs up to ``reach``: the owned cells tile the region exactly; one ghost layer
        on each side of a real axis, one cell as wide as the box along the unused axis of a 2-d system."""
        dim = self.dim
        ncell = np.array([max(1, int(np.floor(self.width[a] / (reach * (1 + CELL_MARGIN)))))
                          if a < dim else 1 for a in range(3)])
        ghost = np.array([1 if a < dim else 0 for a in range(3)])
        if self.cells is not None and np.array_equal(self.cells.dims, ncell + 2 * ghost):
            return
        cell_width = np.where(np.arange(3) < dim, self.width / ncell, self.box)
        self.cells = CellList(ncell + 2 * ghost, self.lo - ghost * cell_width, cell_width, ghost,
                              ghost + ncell - 1)

    # ------------------------------------------------------------------------------------------ policy
    def choose_skin(self, largest_step):
        """The full skin while the list can last at least three steps at ``largest_step`` (the largest
        displacement of the last step, global), else none: rebuilding every step is then cheaper than a
        thicker list; but always the skin while ``few_active`` (a sparse step costs far less than a
        rebuild, so any list that lasts two steps pays). Global inputs, so every rank takes the same
        decision; results never depend on it."""
        return self.max_skin if self.few_active or 6.0 * largest_step < self.max_skin else 0.0

    def travelled_too_far(self, travel):
        """This rank's vote for a rebuild (1.0 or 0.0): ``travel``, the largest distance an owned particle
        has moved since the build, exceeds half the skin. The caller takes the maximum over ranks and
        sets ``stale`` to it, so that all ranks rebuild together."""
        return float(travel > 0.5 * self.skin)

    def invalidate(self):
        """The configuration was replaced: rebuild and re-sort at the next update()."""
        self.stale = True
        self.last_sort = None

    # ---------------------------------------------------------------------------------------- building
    def update(self, state, step, halo, largest_step):
        """Make the list valid for ``state``'s current positions before a pair pass at ``step``: rebuild
        it if stale (largest_step, global: the last step's largest displacement, for the skin choice),
        else refresh the ghosts' positions."""
        if self.stale:
            self.rebuild(state, step, halo, largest_step)
        elif self.sparse_valid:
            # Only rows that were active can have moved: refresh those ghosts alone (every rank together,
            # whichever pass each then takes), listing the ones that changed.
            halo.forward_changed(state, self.sparse)
        else:
            halo.forward(state)

    def rebuild(self, state, step, halo, largest_step):
        """Migrate, re-sort every ``sort_every`` steps, exchange ghosts and rebuild cells and the list."""
        self.skin = self.choose_skin(largest_step)
        self._size_cells(self.reach)
        state.n_ghost = 0
        halo.migrate(state)
        if self.last_sort is None or step - self.last_sort >= self.sort_every:
            self.sort(state)
            self.last_sort = step
        halo.borders(state, self.cells.width)    # ghosts within one cell of the region's faces
        n = state.n_own + state.n_ghost
        # The displacement accumulator is free until the pair pass: the cell build's scratch.
        self.cells.build(state.pos, state.shift, self.box, state.n_own, n, state.acc.view(np.float64))
        self.pairs.build(self.cells, state.n_own, self.reach)
        state.acc[:n] = 0
        state.travel[:state.n_own] = 0.0
        self.max_travel = 0.0
        if self.sparse is not None:
            self.sparse_valid = False      # rows renumbered: the next pass is dense
            self.sparse.indexed = False
            # The sparse update's travel reference, when sparse steps are likely before the next build
            # (else its travel is the path length, as the dense update's).
            self.from_build = self.few_active
            if self.from_build:
                self.sparse.save_build_positions(state.pos, state.image, self.box, state.n_own)
        self.stale = False
        self.rebuilds += 1

    def sparse_index(self, n_rows):
        """The sparse step's per-row adjacency of the current pair list (built at the first sparse pass
        after a build or a dense pass). It borrows arrays idle until the next build: the cell list's
        cell_of and order hold the forward runs, the pair list's ``first`` the reverse adjacency, so a
        dense pass must call ``dense_pairs()`` first."""
        if not self.sparse.indexed:
            self.sparse.index(self.pairs.first, self.pairs.second, self.pairs.n, n_rows, self.cells.cell_of,
                              self.cells.order)
        return self.sparse

    def dense_pairs(self):
        """The pair list with its ``first`` array (given back by the sparse index, if it holds it)."""
        if self.sparse is not None:
            self.sparse.release(self.pairs.first)
        return self.pairs

    def sort(self, state):
        """Reorder the owned rows by cell (z slowest) for memory locality; results do not depend on it."""
        cells = self.cells
        key = np.zeros(state.n_own, dtype=np.int64)
        p = state.pos[:state.n_own]
        for a in (2, 1, 0):
            c = np.clip(((p[:, a] - cells.origin[a]) / cells.width[a]).astype(np.int64), 0, cells.dims[a] - 1)
            key = key * cells.dims[a] + c
        state.sort_owned(key)

    @property
    def nbytes(self):
        """Bytes held by the pair list and the cell list (rank-local)."""
        c = self.cells
        extra = self.sparse.nbytes if self.sparse is not None else 0
        return self.pairs.nbytes + c.order.nbytes + c.cell_of.nbytes + c.cell_start.nbytes + extra
