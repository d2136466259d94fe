"""Periodic cells instead of ghosts along the axes no rank splits (d <= 3; docs/algorithms.md, "Cells and
ghosts"). The cell search then wraps across the box's ends (core/cells.scan_rows) instead of finding the
periodic images among ghost rows: the same pairs within reach (each owned end once), and, since the pair
pass takes the minimum image of the wrapped positions either way, bitwise the same trajectories, in
small boxes of three and four cells per axis too, with a Verlet list, without one (the cell pass) and in
the sparse step, serially and on 2-4 ranks (one axis split, the others periodic)."""
import numpy as np
import pytest
from scipy.spatial import cKDTree

from mpisim import Simulation
from mpisim.core.cells import scan_clusters, scan_rows
from mpisim.core.neighbour_list import NeighbourList
from mpisim.core.schemes import SCHEMES
from mpisim.core.state import ParticleState
from mpisim.parallel.comm import SerialComm
from mpisim.parallel.domain import Domain

from .test_cells import _owned_partners
from .run_checks import assert_same_state


def _build(box, dim, pos, radius, skin, periodic_unsplit):
    domain = Domain(box, dim, cutoff=1.0, comm=SerialComm())
    nlist = NeighbourList(box, dim, domain.lo, domain.width, cutoff=1.0, skin=skin,
                          periodic_unsplit=periodic_unsplit)
    state = ParticleState()
    n = len(pos)
    state.set_owned(np.arange(n), pos, np.zeros((n, 3), np.int32), radius, pos)
    nlist.update(state, step=0, halo=domain, largest_step=0.0)
    return nlist, state


# (dim, n, box edges, skin, the axes with periodic cells): three and four cells per axis, an axis too short
# for three cells (ghosts along it alone), 2d (the unused z has one cell, neither ghosts nor wrap)
CASES = [(3, 800, (9.0, 9.0, 9.0), 0.0, [1, 1, 1]),
         (3, 120, (3.05, 3.05, 3.05), 0.0, [1, 1, 1]),
         (3, 200, (4.1, 3.2, 3.6), 0.0, [1, 1, 1]),
         (3, 300, (4.1, 4.3, 4.6), 0.3, [1, 1, 1]),
         (3, 150, (2.4, 3.3, 4.4), 0.0, [0, 1, 1]),
         (3, 150, (3.3, 4.4, 2.5), 0.0, [1, 1, 0]),
         (3, 60, (2.05, 2.05, 2.05), 0.0, [0, 0, 0]),
         (2, 120, (3.1, 3.1, 1.0), 0.0, [1, 1, 0]),
         (2, 200, (4.2, 5.3, 1.0), 0.2, [1, 1, 0]),
         (2, 100, (2.6, 6.2, 1.0), 0.0, [0, 1, 0])]


@pytest.mark.parametrize("dim,n,edges,skin,periodic", CASES)
def test_periodic_cells_list_the_pairs_of_the_ghost_images(dim, n, edges, skin, periodic):
    rng = np.random.default_rng(n + int(10 * sum(edges)))
    box = np.array(edges)
    pos = np.zeros((n, 3))
    pos[:, :dim] = rng.uniform(0, box[:dim], size=(n, dim))
    radius = rng.uniform(0.4, 0.5, size=n)
    wrapped, state = _build(box, dim, pos, radius, skin, True)
    ghosts, ghost_state = _build(box, dim, pos, radius, skin, False)
    assert list(wrapped.cells.periodic) == periodic
    assert wrapped.ghost_axes == [a for a in range(dim) if not periodic[a]]
    assert list(ghosts.cells.periodic) == [0, 0, 0] and ghosts.ghost_axes == list(range(dim))
    if sum(periodic) == dim:
        assert state.n_ghost == 0 and ghost_state.n_ghost > 0
    listed = _owned_partners(state, wrapped.pairs)
    assert len(set(listed)) == len(listed), "a particle sees the same partner twice"
    assert set(listed) == set(_owned_partners(ghost_state, ghosts.pairs))
    # and all of them, against a periodic k-d tree
    tree = cKDTree(pos[:, :dim], boxsize=box[:dim])
    reach = wrapped.reach
    both_ways = lambda ps: {(a, b) for p in ps for a, b in (p, p[::-1])}  # noqa: E731
    assert both_ways(tree.query_pairs(reach * (1 - 1e-12))) <= set(listed)
    assert set(listed) <= both_ways(tree.query_pairs(reach * (1 + 1e-9)))


def _pair_set(first, second, m):
    return sorted((min(i, j), max(i, j)) for i, j in zip(first[:m].tolist(), second[:m].tolist()))


# every axis periodic (one rank): three to eight cells per axis, denser than any run (up to ~10 per cell)
CLUSTER_CASES = [(3, 800, (9.0, 9.0, 9.0), 0.0), (3, 120, (3.05, 3.05, 3.05), 0.0), (3, 200, (4.1, 3.2, 3.6), 0.0),
                 (3, 300, (4.1, 4.3, 4.6), 0.3), (3, 900, (4.1, 3.5, 5.2), 0.0), (3, 60, (3.3, 6.1, 3.1), 0.0),
                 (2, 120, (3.1, 3.1, 1.0), 0.0), (2, 200, (4.2, 5.3, 1.0), 0.2), (2, 300, (5.1, 3.2, 1.0), 0.0)]


@pytest.mark.parametrize("dim,n,edges,skin", CLUSTER_CASES + [(3, 804, (9.0, 9.0, 9.0), 0.0)])
def test_cluster_search_finds_the_pairs_of_the_row_search(dim, n, edges, skin):
    # the cell pass's search on a rank with every axis periodic (cells.scan_clusters) against the list's
    # (cells.scan_rows): the same pairs, each once, over all rows of cells and in blocks of rows
    rng = np.random.default_rng(n)
    box = np.array(edges)
    pos = np.zeros((n, 3))
    pos[:, :dim] = rng.uniform(0, box[:dim], size=(n, dim))
    if n == 804:
        # 800 in the row of cells y = z = 0, a cluster of four in the row below it (across the end of y)
        # and in one cell: from that row the search notes more windows with a hit than the rows of a block
        # of one row hold (the hit buffer is sized by the neighbour rows too)
        pos[:, 1:] = rng.uniform(0, 1.1, size=(n, 2))
        pos[:4, 0] = rng.uniform(4.6, 5.5, size=4)
        pos[:4, 1] = 8.95
    radius = rng.uniform(0.4, 0.5, size=n)
    nlist, state = _build(box, dim, pos, radius, skin, True)
    c = nlist.cells
    assert list(c.periodic) == [1, 1, dim == 3] and state.n_ghost == 0
    c.build(state.pos, state.shift, box, n, n, np.zeros((n + 16, 3)))   # (the list's build lent acc, now zero)
    first, second = np.zeros(n * n, np.int32), np.zeros(n * n, np.int32)
    n_rows = int(c.dims[1] * c.dims[2])
    by_row = []
    for lo, hi in [(0, n_rows)] + [(r, r + 1) for r in range(n_rows)]:
        m = scan_rows(c.sorted_pos, c.order, n, nlist.reach, c.cell_start, c.dims, c.owned_lo, c.owned_hi,
                      c.periodic_edges, lo, hi, first, second)
        rows = _pair_set(first, second, m)
        m = scan_clusters(c.sorted_pos, c.order, c.cell_of, nlist.reach, c.cell_start, c.dims, c.periodic_edges, lo, hi,
                          first, second)
        assert _pair_set(first, second, m) == rows
        if hi - lo == 1:
            by_row += rows
        else:
            every = rows
    assert len(set(every)) == len(every) > n // 2
    assert sorted(by_row) == every


# Large kicks (the skin adapts to 0: the cell pass under auto) and small ones (a Verlet list, sparse steps).
LARGE = {"kick_size": 0.15, "learning_rate": 0.2, "batch_fraction": 0.5, "pair_correlation": 0.5}
SMALL = {"kick_size": 0.02, "learning_rate": 0.03, "batch_fraction": 0.5, "pair_correlation": 0.5}


def _config(scheme, dim, n, phi, search, step_kind="auto", steps=40):
    values = SMALL if search == "verlet" else LARGE
    return {"system": {"n": n, "phi": phi, "dim": dim, "seed": 4, "polydispersity": 0.1},
            "dynamics": {"scheme": scheme, **{k: values[k] for k in SCHEMES[scheme].keys if k in values}},
            "run": {"steps": steps, "log_every": 3, "progress_seconds": 0.0, "sort_every": 7,
                    "stop_when_absorbed": False, "pair_search": search, "step_kind": step_kind}}


def _with_ghosts(monkeypatch):
    """Every neighbour list made from now on takes ghosts along every axis (the way before periodic cells)."""
    original = NeighbourList.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **{**kwargs, "periodic_unsplit": False})
    monkeypatch.setattr(NeighbourList, "__init__", init)


# (scheme, dim, n, phi, pair search, step kind): large kicks without a list, small ones with a list and the
# sparse step near absorption; the small systems have three or four cells per axis
RUNS = [("bro-pairwise", 3, 500, 0.62, "cells", "dense"),
        ("bro-pairwise", 3, 60, 0.6, "cells", "dense"),
        ("sgd", 3, 500, 0.62, "verlet", "dense"),
        ("bro-nonreciprocal", 2, 400, 0.75, "auto", "dense"),
        ("ro-pairwise", 2, 12, 0.7, "cells", "dense"),
        ("bro-pairwise", 3, 500, 0.55, "verlet", "sparse"),
        ("bro-individual", 2, 400, 0.7, "verlet", "sparse")]


@pytest.mark.parametrize("scheme,dim,n,phi,search,step_kind", RUNS)
def test_periodic_cells_and_ghosts_give_the_same_trajectory(scheme, dim, n, phi, search, step_kind, serial_comm,
                                                            monkeypatch):
    cfg = _config(scheme, dim, n, phi, search, step_kind)
    wrapped = Simulation.from_config(cfg, write=False, comm=serial_comm).run()
    assert sum(wrapped.nlist.cells.periodic) == dim and wrapped.state.n_ghost == 0, wrapped.nlist.cells.dims
    _with_ghosts(monkeypatch)
    ghosts = Simulation.from_config(cfg, write=False, comm=serial_comm).run()
    assert ghosts.state.n_ghost > 0
    assert_same_state(wrapped, ghosts)
    assert (wrapped.sparse_steps > 0) == (step_kind == "sparse")
    assert (wrapped.nlist.cell_passes > 0) == (search != "verlet")


@pytest.mark.mpi(min_size=2)
@pytest.mark.parametrize("scheme,dim,n,phi,search,step_kind", [r for r in RUNS if r[2] >= 400])
def test_periodic_cells_on_any_rank_count_equal_ghosts_on_one(scheme, dim, n, phi, search, step_kind, monkeypatch):
    from mpi4py import MPI
    cfg = _config(scheme, dim, n, phi, search, step_kind)
    wrapped = Simulation.from_config(cfg, write=False, comm=MPI.COMM_WORLD).run()
    grid = wrapped.domain.grid
    assert wrapped.nlist.ghost_axes == [a for a in range(dim) if grid[a] > 1]   # the split axes only
    _with_ghosts(monkeypatch)
    ghosts = Simulation.from_config(cfg, write=False, comm=MPI.COMM_SELF).run()
    assert_same_state(wrapped, ghosts)
