"""The neighbour list of one rank: its cell list, Verlet pair list, skin and rebuild policy.

The pair list holds every pair within reach = rcut + skin at build time (at least one particle owned);
it stays valid until some particle has travelled more than skin/2 since the build, since only then can
a pair that was not listed have come within contact. The skin changes speed, never results: the pair
pass tests every listed pair for overlap at every step (docs/architecture.md, "Verlet list with skin").

MPI-free (HOOMD's md/nlist.py, jax-md's partition.neighbor_list): the exchanges a rebuild needs are
asked of a *halo*, any object with ``migrate(state)``, ``borders(state, ghost_width, axes)`` and
``forward(state)`` (mpisim.parallel.domain.Domain, also on one rank).

One step reads the list through ``update()`` (before the pair pass) and feeds the travel check back
through ``travelled_too_far()`` (after the move).

Without a skin (the particles move so far per step that a list would be rebuilt at every step) the list
is not built at all: the pair pass searches the cells directly (``cell_pair_pass``, ``run.pair_search``;
docs/performance.md, "Large kicks").

With ``sparse=True`` the list also keeps the sparse step's bookkeeping (core/sparse.py: each row's pairs,
the rows active at the last pass). Between builds rows keep their numbers, so ``update()`` then refreshes
only the ghosts whose owner moved (``halo.forward_changed``) and the step may visit only the pairs
touching the rows that can have changed; a build renumbers everything, and the pass after it is dense.
"""
import numpy as np

from . import kernels
from .box import BINNED_AXES
from .cells import CELL_MARGIN, CUTOFF_MARGIN, CellList, PairList, periodic_cells
from .sparse import SparseStep

# run.pair_search: "verlet" (a Verlet list with the adaptive skin), "cells" (no list: the pair pass searches
# the cells at every step) or "auto" (cells whenever the skin in use is 0). Speed only, never results.
PAIR_SEARCHES = ("auto", "verlet", "cells")
# While few particles are active, auto keeps the skin only while the last list built with it served at
# least this many passes: a build with the skin and the dense pass after it cost 1.6-1.8x a step without
# a skin, so a list that lasts one pass loses and one that lasts two about breaks even (docs/performance.md,
# "The skin while few particles are active").
KEEP_SKIN_LIFETIME = 2
# Pairs the cell pass's buffer holds; blocks of x-rows are sized to fill about half of it (a few thousand
# pairs: they are acted on while the block's particles are in cache).
BLOCK_PAIRS = 8192


class NeighbourList:
    """Cell list and Verlet list over one rank's region, with the skin and rebuild policy. Rank-local.

    box: global edges (width,) (core/box.storage_width; the unused third edge of a 2-d system is 1); lo,
    width: the rank's region (its subdomain: the owned cells tile it), (width,) each; d > 3: the axes
    past the third have periodic cells without ghosts (their separations are minimum images); cutoff: the largest contact distance
    (max R_i + R_j); skin: the requested Verlet skin, reduced where the region or the box is too small
    for it (``max_skin`` is the one allowed); sort_every: steps between spatial sorts of the owned rows
    (memory locality only); sparse: keep the sparse step's bookkeeping (stateless schemes); search:
    ``run.pair_search`` (PAIR_SEARCHES; the list unless told); cells_ok: whether the pair pass may go
    without a list (not for the reciprocal pair noise, whose pass reads the list); always_keep_skin: keep
    the skin whenever few particles are active, however short the lists live (``run.step_kind = "sparse"``).
    """

    def __init__(self, box, dim, lo, width, cutoff, skin=0.0, sort_every=100, sparse=False, search="verlet",
                 cells_ok=True, always_keep_skin=False, periodic_unsplit=True):
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
        self._cells_reach = None         # the reach the cells were last sized for
        self.pairs = PairList()
        self.stale = True              # the next update() rebuilds
        self.last_sort = None          # step of the last spatial sort (None: sort at the next rebuild)
        self.rebuilds = 0
        self.sparse = SparseStep() if sparse else None
        self.sparse_valid = False      # the sparse bookkeeping matches the rows and the last pass
        self.max_travel = 0.0          # rank-local: an upper bound of any owned row's distance from the build
        self.few_active = False        # global, set by the step: few particles active, keep the skin
        self.always_keep_skin = always_keep_skin   # keep the skin whenever few_active (forced sparse)
        self.built_at = 0              # step of the last build
        self.built_with_skin = False   # whether the last build had the full skin
        self.skin_lifetime = None      # passes served by the last list built with the skin (None: none yet)
        self.from_build = False        # sparse.build_pos holds the positions at the last build
        if search not in PAIR_SEARCHES:
            raise ValueError(f"unknown pair search {search!r}; allowed: {', '.join(PAIR_SEARCHES)}")
        self.search = search
        self.cells_ok = cells_ok
        self.periodic_unsplit = periodic_unsplit   # False: ghosts along every axis of d <= 3 (tests compare)
        self.ghost_axes = []           # the axes the halo makes ghosts along (set with the cells)
        self.cell_pass = False         # global: no list since the last build, the pair pass searches the cells
        self.block = None              # the cell pass's pair buffer (a PairList of BLOCK_PAIRS)
        self.rows_per_block = 0        # x-rows of cells per block of the cell pass (0: size at the next pass)
        self.cell_passes = 0           # pair passes made without a list
        self._sorted_pos = np.zeros((0, 3))   # the cell pass's binning coordinates (it needs acc meanwhile)
        if search == "cells":
            self.max_skin = self.skin = 0.0
        self._size_cells(self.rcut + self.skin)

    @property
    def reach(self):
        """Distance within which pairs are listed: rcut + the skin in use."""
        return self.rcut + self.skin

    def _size_cells(self, reach):
        """Size cells for pairs up to ``reach``: the owned cells tile the region exactly; one ghost layer
        on each side of a real axis, one cell as wide as the box along the unused axis of a 2-d system."""
        if reach == self._cells_reach:
            return                        # (every build asks; the reach changes only with the skin)
        self._cells_reach = reach
        dim = self.dim
        binned = range(BINNED_AXES)      # d > 3: the axes past the third are not binned (docs/algorithms.md)
        # A binned axis that no rank splits has periodic cells, without ghosts (the halo sends none along
        # it: ``ghost_axes``): always in d > 3 (like the further axes), in d <= 3 when it holds at least
        # three cells (the search wraps without minimum images, core/cells.scan_rows; fewer: ghosts)
        wide = dim > BINNED_AXES
        periodic = np.array([int(a < dim and self.width[a] >= self.box[a] and (wide or (
            self.periodic_unsplit and periodic_cells(self.box[a], reach * (1 + CELL_MARGIN)) >= 3)))
            for a in binned])
        self.ghost_axes = [a for a in range(min(dim, BINNED_AXES)) if not periodic[a]]
        ncell = np.array([periodic_cells(self.box[a], reach * (1 + CELL_MARGIN)) if periodic[a] else
                          max(1, int(np.floor(self.width[a] / (reach * (1 + CELL_MARGIN)))))
                          if a < dim else 1 for a in binned])
        ghost = np.array([1 if a < dim and not periodic[a] else 0 for a in binned])
        cell_width = np.where(np.arange(BINNED_AXES) < dim, self.width[:BINNED_AXES] / ncell,
                              self.box[:BINNED_AXES])
        dims, origin = ncell + 2 * ghost, self.lo[:BINNED_AXES] - ghost * cell_width
        owned_lo, owned_hi = ghost, ghost + ncell - 1
        if dim > BINNED_AXES:
            # The further axes (never decomposed, no ghosts): periodic cells over the wrapped coordinate,
            # at least three per axis (so the neighbours -1, 0, +1 are distinct cells) or one.
            extra = np.array([periodic_cells(self.box[a], reach * (1 + CELL_MARGIN)) for a in range(BINNED_AXES, dim)])
            dims = np.concatenate([dims, extra])
            origin = np.concatenate([origin, np.zeros(len(extra))])
            cell_width = np.concatenate([cell_width, self.box[BINNED_AXES:dim] / extra])
            owned_lo = np.concatenate([owned_lo, np.zeros(len(extra), dtype=np.int64)])
            owned_hi = np.concatenate([owned_hi, extra - 1])
        if (self.cells is not None and np.array_equal(self.cells.dims, dims)
                and np.array_equal(self.cells.periodic, periodic)):
            return
        self.cells = CellList(dims, origin, cell_width, owned_lo, owned_hi, periodic, self.box)
        self.rows_per_block = 0

    # ------------------------------------------------------------------------------------------ policy
    def choose_skin(self, largest_step):
        """The full skin while the list can last at least three steps at ``largest_step`` (the largest
        displacement of the last step, global), else none: rebuilding every step is then cheaper than a
        thicker list. While ``few_active`` a sparse step costs far less than a rebuild, so the skin is
        kept as long as lists built with it last: the last one served at least ``KEEP_SKIN_LIFETIME``
        passes, or (after a short one) the last step was short enough for the next list to outlive its
        first pass (2 largest_step < skin; large kicks near phi_c move some particle farther than half
        the skin in most steps, and each list would serve one dense pass). ``always_keep_skin``
        (forced sparse) keeps it whenever few_active. Global inputs, so every rank takes the same
        decision; results never depend on it."""
        skin = self.max_skin
        if 6.0 * largest_step < skin:
            return skin
        if not self.few_active:
            return 0.0
        if (self.always_keep_skin or self.skin_lifetime is None or self.skin_lifetime >= KEEP_SKIN_LIFETIME
                or 2.0 * largest_step < skin):
            return skin
        return 0.0

    def use_cells(self, skin, state):
        """Whether the pair pass goes without a list after a build with ``skin`` (global inputs, so every
        rank decides the same): when forced, and under "auto" whenever the skin is 0 (a list would be
        rebuilt at every step: searching the cells once costs what building the list costs, and the
        list's pass is saved; docs/performance.md, "Large kicks"). The cell pass has three columns."""
        if not self.cells_ok or state.pos.shape[1] != 3:
            return False
        return self.search == "cells" or (self.search == "auto" and skin == 0.0)

    def travelled_too_far(self, travel):
        """This rank's vote for a rebuild (1.0 or 0.0): ``travel``, the largest distance an owned particle
        has moved since the build, exceeds half the skin. The caller takes the maximum over ranks and
        sets ``stale`` to it, so that all ranks rebuild together."""
        return float(travel > 0.5 * self.skin)

    def invalidate(self):
        """The configuration was replaced: rebuild and re-sort at the next update()."""
        self.stale = True
        self.last_sort = None
        self.built_with_skin = False
        self.skin_lifetime = None

    # ---------------------------------------------------------------------------------------- building
    def update(self, state, step, halo, largest_step):
        """Make the list valid for ``state``'s current positions before a pair pass at ``step``: rebuild
        it if stale (largest_step, global: the last step's largest displacement, for the skin choice),
        else refresh the ghosts' positions. Returns whether it rebuilt (then ``state.acc`` is zero)."""
        if self.stale or self.cell_pass:
            # (without a list the cells are rebuilt at every pass; cell_pass is the same on every rank)
            self.rebuild(state, step, halo, largest_step)
            return True
        if self.sparse_valid:
            # Only rows that were active can have moved: refresh those ghosts alone (every rank together,
            # whichever pass each then takes), listing the ones that changed.
            halo.forward_changed(state, self.sparse)
        else:
            halo.forward(state)
        return False

    def rebuild(self, state, step, halo, largest_step):
        """Migrate, re-sort every ``sort_every`` steps, exchange ghosts and rebuild cells and the list."""
        if self.built_with_skin:
            self.skin_lifetime = step - self.built_at     # passes the list being replaced served
        self.skin = self.choose_skin(largest_step)
        self.built_at = step
        self.built_with_skin = self.skin > 0.0
        self.cell_pass = self.use_cells(self.skin, state)
        self._size_cells(self.reach)
        state.n_ghost = 0
        halo.migrate(state)
        if self.last_sort is None or step - self.last_sort >= self.sort_every:
            self.sort(state)
            self.last_sort = step
        # ghosts within one cell of the region's faces, along the axes without periodic cells
        halo.borders(state, self.cells.width, self.ghost_axes)
        n = state.n_own + state.n_ghost
        if self.cell_pass:
            # The cell pass reads the binning coordinates while it writes acc: they need rows of their own
            # (the memory of the list it does not keep).
            if self._sorted_pos.shape[0] < n:
                self._sorted_pos = np.zeros((int(n * 1.05) + 16, 3))
            self.cells.build(state.pos, state.shift, self.box, state.n_own, n, self._sorted_pos)
            if self.pairs.first.shape[0] > BLOCK_PAIRS:
                self.pairs = PairList()    # no list in use: give its memory back
                if self.sparse is not None:
                    self.sparse.rev_first = None     # (the index borrowed the old list's first array)
            self.pairs.n = 0
        else:
            # The displacement accumulator is free until the pair pass: the cell build's scratch.
            self.cells.build(state.pos, state.shift, self.box, state.n_own, n, state.acc.view(np.float64))
            self._sorted_pos = np.zeros((0, 3))
            self.block = None              # (the cell pass's buffer, made again if the skin goes back to 0)
            self.pairs.build(self.cells, state.n_own, self.reach, self.box)
        state.acc[:n] = 0
        state.travel[:state.n_own] = 0.0
        self.max_travel = 0.0
        if self.sparse is not None:
            self.sparse_valid = False      # rows renumbered: the next pass is dense
            self.sparse.forget_index()
            # The sparse update's travel reference, when sparse steps are likely before the next build
            # (else its travel is the path length, as the dense update's).
            self.from_build = self.few_active and not self.cell_pass
            if self.from_build:
                self.sparse.save_build_positions(state.pos, state.image, self.box, state.n_own)
        self.stale = False
        self.rebuilds += 1

    def cell_pair_pass(self, scheme, params, potential, seed, step, state, box, counters, energy):
        """The dense pair pass without a list (``kernels.cell_pair_pass``) over the cells of the last build:
        acc, active and counters as ``kernels.pair_pass`` over the skin-0 list would leave them."""
        if self.block is None:
            self.block = PairList(BLOCK_PAIRS)
        c = self.cells
        n_rows = int(c.dims[1] * c.dims[2])
        if self.rows_per_block == 0:
            # Blocks of about three quarters of the buffer at 4 pairs per particle (at most ~3 at skin 0,
            # ~1.8 at phi = 0.6: ~2700 pairs, 29 rows of cells at N = 1e5; each block costs a few
            # allocations, and blocks of 9 rows cost ~0.3 ms more per pass); a block that does not fit is
            # halved, and the size kept.
            per_row = 4.0 * (state.n_own + state.n_ghost) / n_rows
            self.rows_per_block = max(1, int(0.75 * self.block.first.shape[0] / max(per_row, 1.0)))
        row = 0
        while row < n_rows:
            row, need, self.rows_per_block = kernels.cell_pair_pass(
                scheme, params, potential, seed, step, state.pos, state.ids, state.radius, state.n_own, box,
                self.reach, c.sorted_pos, c.order, c.cell_of, c.cell_start, c.dims, c.owned_lo, c.owned_hi,
                c.periodic_edges, row, self.rows_per_block, self.block.first, self.block.second, state.acc,
                state.active, counters, energy)
            if row < n_rows:      # one row's pairs did not fit: grow the buffer, go on from that row
                self.block = PairList(int(need * 1.25) + 1024)
        self.cell_passes += 1

    def sparse_index(self, n_rows):
        """The sparse step's per-row adjacency of the current pair list (built at the first sparse pass
        after a build or a dense pass). It borrows arrays idle until the next build: the cell list's
        cell_of and order hold the forward runs, the pair list's ``first`` the reverse adjacency, so a
        dense pass must call ``dense_pairs()`` first; the reverse offsets go into the cell list's cell_start
        when it is long enough (cell_start is read only by a build and by the cell pass, which has no list)."""
        if not self.sparse.indexed:
            c = self.cells
            self.sparse.index(self.pairs.first, self.pairs.second, self.pairs.n, n_rows, c.cell_of, c.order,
                              room=c.cell_start.view(np.int32))
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
        if self.block is not None:
            extra += self.block.nbytes
        return (self.pairs.nbytes + c.order.nbytes + c.cell_of.nbytes + c.cell_start.nbytes + extra
                + self._sorted_pos.nbytes)
