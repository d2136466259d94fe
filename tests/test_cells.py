"""Cell list and Verlet list against brute-force all pairs (scipy's periodic k-d tree as the reference)."""
import numpy as np
import pytest
from scipy.spatial import cKDTree

from mpisim.core.cells import PairList
from mpisim.core.neighbour_list import NeighbourList
from mpisim.core.state import ParticleState
from mpisim.parallel.comm import SerialComm
from mpisim.parallel.domain import Domain


def _owned_partners(state, pairs):
    """(owned id, partner id) for every owned end of every listed pair. A pair across a periodic face
    on one rank is listed as (i, ghost of j) and (ghost of i, j): each owned end exactly once."""
    out = []
    for a, b in zip(pairs.first[:pairs.n], pairs.second[:pairs.n]):
        if a < state.n_own:
            out.append((state.ids[a], state.ids[b]))
        if b < state.n_own:
            out.append((state.ids[b], state.ids[a]))
    return out


@pytest.mark.parametrize("dim,n,edge,skin", [(3, 800, 9.0, 0.0), (3, 800, 9.0, 0.3), (2, 600, 14.0, 0.2),
                                             (3, 60, 2.05, 0.0), (2, 40, 2.2, 0.1)])
def test_pair_list_is_all_pairs_within_reach(dim, n, edge, skin):
    rng = np.random.default_rng(dim * n)
    box = np.array([edge, edge, edge if dim == 3 else 1.0])
    pos = np.zeros((n, 3))
    pos[:, :dim] = rng.uniform(0, edge, size=(n, dim))
    radius = rng.uniform(0.4, 0.5, size=n)
    domain = Domain(box, dim, cutoff=1.0, comm=SerialComm())
    nlist = NeighbourList(box, dim, domain.lo, domain.width, cutoff=1.0, skin=skin)
    nlist.pairs = PairList(capacity=8)  # too small on purpose: the build must grow it
    state = ParticleState()
    state.set_owned(np.arange(n), pos, np.zeros((n, 3), np.int32), radius, pos)
    nlist.update(state, step=0, halo=domain, largest_step=0.0)   # stale at first: a full rebuild
    assert nlist.rebuilds == 1 and not nlist.stale
    pairs, reach = nlist.pairs, nlist.reach
    listed = _owned_partners(state, pairs)
    got = set(listed)
    assert len(got) == len(listed), "a particle sees the same partner twice"
    tree = cKDTree(pos[:, :dim], boxsize=box[:dim])
    both_ways = lambda ps: {(a, b) for p in ps for a, b in (p, p[::-1])}  # noqa: E731
    assert both_ways(tree.query_pairs(reach * (1 - 1e-12))) <= got
    # Nothing listed beyond the reach (plus the rounding margin).
    assert got <= both_ways(tree.query_pairs(reach * (1 + 1e-9)))


def _pairs_within(state, dim, box, distance):
    """(id, id) both ways of every pair of owned particles closer than ``distance`` (brute force)."""
    tree = cKDTree(state.pos[:state.n_own, :dim], boxsize=box[:dim])
    ids = state.ids[:state.n_own]
    return {(ids[a], ids[b]) for p in tree.query_pairs(distance) for a, b in (p, p[::-1])}


@pytest.mark.parametrize("dim", [2, 3])
def test_list_stays_complete_until_a_particle_travels_half_the_skin(dim):
    """The rebuild policy: after every particle moved less than skin/2 the old list (ghosts refreshed)
    still holds every pair in contact; a longer move votes for a rebuild."""
    from mpisim.core.box import wrapped_positions
    n, edge, skin = (700, 8.0, 0.3) if dim == 3 else (500, 16.0, 0.3)
    rng = np.random.default_rng(dim)
    box = np.array([edge, edge, edge if dim == 3 else 1.0])
    pos = np.zeros((n, 3))
    pos[:, :dim] = rng.uniform(0, edge, size=(n, dim))
    domain = Domain(box, dim, cutoff=1.0, comm=SerialComm())
    nlist = NeighbourList(box, dim, domain.lo, domain.width, cutoff=1.0, skin=skin)
    state = ParticleState()
    state.set_owned(np.arange(n), pos, np.zeros((n, 3), np.int32), np.full(n, 0.5), pos)
    nlist.update(state, step=0, halo=domain, largest_step=0.0)
    assert nlist.skin == skin
    for _ in range(3):   # three moves of 0.16 skin each: 0.48 skin in all, at most
        step = rng.normal(size=(n, 3))
        step[:, dim:] = 0
        step *= 0.16 * skin / np.linalg.norm(step, axis=1)[:, None]
        state.pos[:n] = wrapped_positions(state.pos[:n, :dim] + step[:, :dim], box, dim)
        state.travel[:n] += 0.16 * skin
        assert nlist.travelled_too_far(state.travel[:n].max()) == 0.0
        nlist.update(state, step=1, halo=domain, largest_step=0.16 * skin)   # not stale: ghosts refreshed
    assert nlist.rebuilds == 1
    assert _pairs_within(state, dim, box, 1.0) <= set(_owned_partners(state, nlist.pairs))
    assert nlist.travelled_too_far(0.51 * skin) == 1.0


def test_skin_choice_and_its_limit():
    box = np.array([2.2, 2.2, 2.2])
    nlist = NeighbourList(box, 3, np.zeros(3), box, cutoff=1.0, skin=0.5)
    assert 0.09 < nlist.max_skin < 0.1          # a cell and a unique pair image must fit in the box
    assert nlist.choose_skin(0.01) == nlist.max_skin    # the list lasts at least three steps ...
    assert nlist.choose_skin(0.02) == 0.0               # ... or is rebuilt every step without a skin


def test_skin_kept_for_few_active_particles_while_its_lists_last():
    box = np.full(3, 10.0)
    nlist = NeighbourList(box, 3, np.zeros(3), box, cutoff=1.0, skin=0.2)
    s = nlist.max_skin
    assert s == 0.2 and nlist.choose_skin(0.15) == 0.0        # many active: no skin at this step size
    nlist.few_active = True
    assert nlist.choose_skin(0.15) == s                       # few active, no list with the skin yet: try it
    nlist.skin_lifetime = 1                                   # the last one served one pass ...
    assert nlist.choose_skin(0.15) == 0.0                     # ... and the last step was longer than skin/2
    assert nlist.choose_skin(0.09) == s                       # shorter: the next list may outlive its first pass
    assert nlist.choose_skin(0.03) == s                       # (and at < skin/6 always)
    nlist.skin_lifetime = 2
    assert nlist.choose_skin(0.15) == s
    forced = NeighbourList(box, 3, np.zeros(3), box, cutoff=1.0, skin=0.2, always_keep_skin=True)
    forced.few_active, forced.skin_lifetime = True, 1
    assert forced.choose_skin(0.15) == s                      # run.step_kind = "sparse" keeps it
    nlist.invalidate()
    assert nlist.skin_lifetime is None


def _serial_setup(n, edge, seed, periodic_unsplit=True):
    """One rank's domain, a neighbour list with skin 0.2 (periodic_unsplit=False: ghosts instead of periodic
    cells), and a state of n random monodisperse particles in a cube (and their positions)."""
    box = np.full(3, edge)
    domain = Domain(box, 3, cutoff=1.0, comm=SerialComm())
    nlist = NeighbourList(box, 3, domain.lo, domain.width, cutoff=1.0, skin=0.2, periodic_unsplit=periodic_unsplit)
    pos = np.random.default_rng(seed).uniform(0, edge, size=(n, 3))
    state = ParticleState()
    state.set_owned(np.arange(n), pos, np.zeros((n, 3), np.int32), np.full(n, 0.5), pos)
    return domain, nlist, state, pos


def test_lifetime_of_the_lists_built_with_the_skin():
    domain, nlist, state, _ = _serial_setup(200, 8.0, seed=7)
    nlist.update(state, step=0, halo=domain, largest_step=0.0)        # skin (6 x 0 < skin)
    assert nlist.skin == 0.2 and nlist.skin_lifetime is None
    for step in (1, 2):
        nlist.update(state, step=step, halo=domain, largest_step=0.0)  # not stale: the same list
    nlist.stale = True
    nlist.update(state, step=3, halo=domain, largest_step=0.15)        # many active: no skin
    assert nlist.skin == 0.0 and nlist.skin_lifetime == 3
    nlist.few_active = True
    nlist.stale = True
    nlist.update(state, step=4, halo=domain, largest_step=0.15)
    assert nlist.skin == 0.2 and nlist.skin_lifetime == 3              # the list without skin: not counted
    nlist.stale = True
    nlist.update(state, step=5, halo=domain, largest_step=0.15)
    assert nlist.skin_lifetime == 1 and nlist.skin == 0.0              # it served one pass: dropped
    nlist.stale = True
    nlist.update(state, step=6, halo=domain, largest_step=0.08)
    assert nlist.skin == 0.2                                           # a short step: tried again


def test_ghost_rows_hold_no_owned_only_fields():
    n = 300
    domain, nlist, state, pos = _serial_setup(n, 6.0, seed=8, periodic_unsplit=False)
    nlist.update(state, step=0, halo=domain, largest_step=0.0)
    rows = state.n_own + state.n_ghost
    assert state.n_ghost > n                                  # (a small box: more ghosts than owned rows)
    for name in ParticleState.OWNED_ONLY:
        assert n <= getattr(state, name).shape[0] < rows, name
    for name in ("pos", "shift", "ids", "radius", "acc", "active"):
        assert getattr(state, name).shape[0] >= rows, name
    np.testing.assert_array_equal(state.x0[:n], pos[state.ids[:n]])    # kept through the growth


def test_rebuilds_sort_every_sort_every_steps():
    n, edge = 400, 8.0
    rng = np.random.default_rng(5)
    box = np.full(3, edge)
    domain = Domain(box, 3, cutoff=1.0, comm=SerialComm())
    nlist = NeighbourList(box, 3, domain.lo, domain.width, cutoff=1.0, skin=0.2, sort_every=10)
    state = ParticleState()
    pos = rng.uniform(0, edge, size=(n, 3))
    state.set_owned(np.arange(n), pos, np.zeros((n, 3), np.int32), np.full(n, 0.5), pos)
    sorted_steps = []
    for step in range(0, 25, 4):    # a rebuild every fourth step, from shuffled rows
        order = rng.permutation(n)
        state.set_owned(state.ids[order], state.pos[order], state.image[order], state.radius[order],
                        state.x0[order])
        nlist.stale = True
        nlist.update(state, step, domain, largest_step=0.0)
        cell = (state.pos[:n] // nlist.cells.width).astype(np.int64)
        key = (cell[:, 2] * nlist.cells.dims[1] + cell[:, 1]) * nlist.cells.dims[0] + cell[:, 0]
        if np.all(np.diff(key) >= 0):
            sorted_steps.append(step)
    assert sorted_steps == [0, 12, 24]
