"""The sparse step's kernels (mpisim/core/sparse.py) against the dense kernels, bitwise: random
configurations, multi-step sequences, every stateless scheme, 2d and 3d, with ghost rows (some of them
moved between steps, as a halo refresh would) and pairs listed in either orientation."""
import numpy as np
import pytest

from mpisim.config import Dynamics
from mpisim.core import kernels, sparse
from mpisim.core.dynamics import DynamicsParams
from mpisim.core.kernels import N_COUNTERS, N_DISP
from mpisim.core.schemes import SCHEMES

STATELESS = [name for name, spec in SCHEMES.items() if spec.id in sparse.SPARSE_SCHEMES]
VALUES = {"kick_size": 0.08, "learning_rate": 0.15, "batch_fraction": 0.5, "pair_correlation": 0.5}


def dynamics(scheme, dim=3):
    return DynamicsParams(Dynamics.from_table({"scheme": scheme, **{k: VALUES[k] for k in SCHEMES[scheme].keys
                                                                    if k in VALUES}}), dim=dim)


def test_every_stateless_scheme_is_covered():
    assert sorted(STATELESS) == sorted(["bro-pairwise", "bro-individual", "sgd", "rcd", "gd", "sa-pairwise",
                                        "sa-individual", "bro-nonreciprocal", "bro-correlated",
                                        "sgd-correlated", "sa-pairwise-correlated", "ro-pairwise",
                                        "ro-individual"])
    assert not sparse.supports(DynamicsParams(Dynamics.from_table(
        {"scheme": "sgd", "learning_rate": 0.1, "batch_fraction": 0.5, "momentum": 0.5})))
    assert not sparse.supports(DynamicsParams(Dynamics.from_table(
        {"scheme": "langevin", "learning_rate": 0.1, "temperature": 1e-3})))


def configuration(rng, n, dim, phi, polydispersity):
    """Wrapped positions (n, 3), radii, box (3,) at packing fraction phi (diameter-1 spheres/discs)."""
    radius = 0.5 * (1 + polydispersity * (2 * rng.random(n) - 1))
    vol = np.sum(np.pi * radius ** 2) if dim == 2 else np.sum(4 / 3 * np.pi * radius ** 3)
    side = (vol / phi) ** (1 / dim)
    box = np.array([side, side, side if dim == 3 else 1.0])
    pos = np.zeros((n, 3))
    pos[:, :dim] = rng.random((n, dim)) * side
    return pos, radius, box


def pair_list(rng, pos, radius, box, dim, reach_extra):
    """Pairs within contact + reach_extra (minimum image), as the list builder lays them out: the pairs
    of a row contiguous, rows in random order, each pair in a random orientation."""
    n = len(pos)
    d = pos[:, None, :dim] - pos[None, :, :dim]
    d -= box[:dim] * np.round(d / box[:dim])
    close = np.sqrt((d ** 2).sum(-1)) < radius[:, None] + radius[None, :] + reach_extra
    i, j = np.nonzero(np.triu(close, 1))
    flip = rng.random(len(i)) < 0.5
    a, b = np.where(flip, j, i), np.where(flip, i, j)
    runs = rng.permutation(n)
    rank = np.empty(n, dtype=np.int64)
    rank[runs] = np.arange(n)
    o = np.lexsort((rng.random(len(a)), rank[a]))
    return a[o].astype(np.int32), b[o].astype(np.int32)


class Dense:
    """The engine's dense step on plain arrays."""

    def __init__(self, dyn, pos, radius, box, n_own, dim):
        n = len(pos)
        self.dyn, self.dim, self.n_own, self.box = dyn, dim, n_own, box
        self.pos, self.radius = pos.copy(), radius
        self.ids = np.arange(n, dtype=np.int64)[::-1].copy()     # ids not in row order
        self.image = np.zeros((n, 3), dtype=np.int32)
        self.acc = np.zeros((n, 3), dtype=np.int64)
        self.active = np.zeros(n, dtype=np.uint8)
        self.travel = np.zeros(n)
        self.aux = np.zeros((n, 0))
        self.counters = np.zeros(N_COUNTERS, dtype=np.int64)
        self.disp_sums = np.zeros(N_DISP, dtype=np.int64)
        self.max_travel = 0.0

    def pair_pass(self, step, first, second, energy):
        d = self.dyn
        self.acc[:] = 0
        self.active[:] = 0
        self.counters[:] = 0
        kernels.pair_pass(d.scheme, d.params, d.potential, 7, step, self.pos, self.ids, self.radius, self.n_own,
                          self.box, first, second, len(first), self.acc, self.active, self.counters, energy)

    def apply(self, step):
        d = self.dyn
        self.disp_sums[:] = 0
        disp, self.max_travel = kernels.apply_step(d.scheme, d.params, 7, step, self.dim, self.pos, self.image,
                                                   self.ids, self.n_own, self.box, self.acc, self.active,
                                                   self.aux, self.aux, self.travel, self.disp_sums)
        return disp


class Sparse(Dense):
    def __init__(self, *args, from_build=True):
        super().__init__(*args)
        self.from_build = from_build
        self.sp = sparse.SparseStep()
        self.build_pos = self.pos.copy()           # the list was built at the start (float64 reference)
        self.sp.save_build_positions(self.pos, self.image, self.box, self.n_own)

    def start(self, step, first, second, energy):
        """A dense pass, then the sparse bookkeeping takes over (its index borrows a copy of ``first``
        and two arrays standing for the cell list's)."""
        self.first = first.copy()
        Dense.pair_pass(self, step, self.first, second, energy)
        n = len(self.pos)
        self.sp.index(self.first, second, len(first), n, np.zeros(n, np.int32), np.zeros(n, np.int32))
        self.sp.start(self.active, n, self.n_own, n)

    def pair_pass(self, step, first, second, energy):
        d = self.dyn
        self.counters[:] = 0
        self.sp.pair_pass(d.scheme, d.params, d.potential, 7, step, self.pos, self.ids, self.radius, self.n_own,
                          self.box, self.first, second, self.acc, self.active, self.counters, energy)

    def apply(self, step):
        d = self.dyn
        self.disp_sums[:] = 0
        disp, travel = self.sp.apply(d.scheme, d.params, 7, step, self.dim, self.pos, self.image, self.ids,
                                     self.n_own, self.box, self.acc, self.travel, self.from_build, self.disp_sums)
        self.max_travel = max(self.max_travel, travel)
        return disp

    def move_ghosts(self, rows, new):
        """A halo refresh of the ghost rows ``rows`` (consecutive) to positions ``new``."""
        sp = self.sp
        message = np.concatenate([[len(rows)], np.hstack([np.arange(len(rows))[:, None], new]).ravel()])
        sp.reserve_changed(sp.n_changed + len(rows))
        sp.n_changed = sparse.store_changed(self.pos, rows[0], message, sp.dirty, sp.changed, sp.n_changed, True)


def assert_same(a, b, what):
    n = len(a.pos)
    for name in ("pos", "image", "counters", "disp_sums"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=f"{name} {what}")
    # travel (speed only): the sparse step's is the distance from the list build, at most the path length
    # that the dense step adds up, and its running maximum bounds every particle's distance
    own = slice(0, a.n_own)
    if not b.from_build:      # the path length, as the dense update
        np.testing.assert_array_equal(a.travel, b.travel, err_msg=what)
        assert a.max_travel == b.max_travel, what
        return
    # (build positions kept as float32: travel is the distance plus a slack of ~1e-6 here, never less)
    distance = np.sqrt(((b.pos + b.image * b.box - b.build_pos)[own] ** 2).sum(1))
    moved = b.travel[own] > 0
    assert np.all(b.travel[own][moved] >= distance[moved]), what
    np.testing.assert_allclose(b.travel[own][moved], distance[moved], rtol=0, atol=1e-5, err_msg=what)
    assert np.all(distance[~moved] == 0) and b.max_travel >= distance.max(), what
    assert np.all(b.travel[own] <= a.travel[own] + 1e-5), what
    # acc and active of every row (ghost rows included) after the pass; checked before the update
    np.testing.assert_array_equal(a.active[:n], b.active[:n], err_msg=f"active {what}")


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("scheme", STATELESS)
def test_sparse_steps_equal_dense_steps_bitwise(scheme, dim):
    check_sparse_against_dense(scheme, dim, from_build=True)


@pytest.mark.parametrize("scheme", ["bro-pairwise", "rcd"])
def test_sparse_travel_may_be_the_path_length(scheme):
    check_sparse_against_dense(scheme, 3, from_build=False)


def check_sparse_against_dense(scheme, dim, from_build):
    rng = np.random.default_rng(SCHEMES[scheme].id * 10 + dim)
    n = 400 if dim == 3 else 300
    pos, radius, box = configuration(rng, n, dim, phi=0.62 if dim == 3 else 0.8, polydispersity=0.2)
    first, second = pair_list(rng, pos, radius, box, dim, 0.3)
    n_own = n - 40                                     # the last rows play ghosts: never updated here
    dyn = dynamics(scheme, dim)
    dense = Dense(dyn, pos, radius, box, n_own, dim)
    sp = Sparse(dyn, pos, radius, box, n_own, dim, from_build=from_build)
    dense.pair_pass(0, first, second, True)
    sp.start(0, first, second, True)
    actives = []
    for step in range(40):
        energy = step % 3 == 0
        if step:
            if step % 5 == 0:      # a halo refresh moves a few ghosts (their owners moved them)
                rows = np.arange(n_own + 5, n_own + 12)
                new = dense.pos[rows] + np.where(np.arange(3) < dim, 0.02, 0.0)
                new[2] = dense.pos[rows[2]]             # one refreshed but unchanged
                dense.pos[rows] = new
                sp.move_ghosts(rows, new)
            dense.pair_pass(step, first, second, energy)
            sp.pair_pass(step, first, second, energy)
        np.testing.assert_array_equal(dense.acc, sp.acc, err_msg=f"acc at step {step}")
        assert sp.sp.n_active == int(dense.active.sum())
        assert sp.sp.n_active_own == kernels.count_active(dense.active, n_own)
        listed = sp.sp.active_rows[:sp.sp.n_active]
        assert sorted(listed) == list(np.flatnonzero(dense.active))
        actives.append(int(dense.active[:n_own].sum()))
        # what the update will report, read before it moves anything (the early reduction of a step)
        d, spp = dyn, sp.sp
        seen = (d.scheme, d.params, 7, step, dim)
        dense_preview = sparse.preview_step(*seen, dense.pos, dense.image, dense.ids, n_own, box, dense.acc,
                                            dense.active, spp.active_rows, 0, True, dense.travel, spp.build_pos,
                                            False)
        sparse_preview = sparse.preview_step(*seen, sp.pos, sp.image, sp.ids, n_own, box, sp.acc, sp.active,
                                             spp.active_rows, spp.n_active, False, sp.travel, spp.build_pos,
                                             from_build)
        running = sp.max_travel
        disp = dense.apply(step)
        assert disp == sp.apply(step)
        assert disp == dense_preview[0] == sparse_preview[0]
        assert dense.max_travel <= dense_preview[1] <= dense.max_travel + 1e-8
        assert sp.max_travel <= max(running, sparse_preview[1]) <= sp.max_travel + 1e-8
        assert_same(dense, sp, f"after step {step}")
    # the sequence runs from many active particles towards few, and stays non-trivial
    assert actives[0] > 0.3 * n_own and actives[-1] < actives[0] and sum(actives[1:]) > 0


def test_index_pairs_finds_every_neighbour_and_gives_first_back():
    rng = np.random.default_rng(3)
    pos, radius, box = configuration(rng, 200, 3, 0.5, 0.0)
    first, second = pair_list(rng, pos, radius, box, 3, 0.4)
    borrowed = first.copy()
    sp = sparse.SparseStep()
    sp.index(borrowed, second, len(first), 200, np.zeros(200, np.int32), np.zeros(200, np.int32))
    assert sp.rev_first is borrowed and sp.indexed
    for p in range(200):
        fwd = set(second[sp.fwd_lo[p]:sp.fwd_hi[p]])
        rev = list(sp.rev_first[sp.rev_start[p]:sp.rev_start[p + 1]])
        assert fwd == set(second[first == p]) and sorted(rev) == sorted(first[second == p])
    sp.release(borrowed)
    np.testing.assert_array_equal(borrowed, first)
    assert not sp.indexed
    held, own_offsets = sp.nbytes, sp.rev_start.nbytes
    for room, used in ((np.zeros(150, np.int32), False), (np.zeros(201, np.int32), True)):
        # the reverse offsets go into an idle array (the cell list's cell_start) only if it is long enough
        sp.index(borrowed, second, len(first), 200, np.zeros(200, np.int32), np.zeros(200, np.int32), room=room)
        assert (sp.rev_start is room) == used
        assert sp.nbytes == (held - own_offsets if used else held)
        for p in range(200):
            rev = list(sp.rev_first[sp.rev_start[p]:sp.rev_start[p + 1]])
            assert sorted(rev) == sorted(first[second == p])
        sp.release(borrowed)
    sp.forget_index()
    assert sp.rev_start.shape[0] == 0 and not sp.indexed      # holds nothing of the replaced cell list


def test_index_pairs_rejects_a_list_whose_rows_are_split():
    first = np.array([0, 1, 0], dtype=np.int32)
    second = np.array([1, 2, 2], dtype=np.int32)
    with pytest.raises(ValueError, match="not contiguous"):
        sparse.SparseStep().index(first, second, 3, 3, np.zeros(3, np.int32), np.zeros(3, np.int32))


def test_a_dense_pass_with_many_active_rows_is_counted_not_listed():
    rng = np.random.default_rng(4)
    active = (rng.random(300) < 0.3).astype(np.uint8)
    sp = sparse.SparseStep()
    sp.start(active, 300, 250, limit=15)
    assert not sp.listed and sp.n_active == active.sum() and sp.n_active_own == active[:250].sum()
    assert sp.nbytes == 0                          # nothing held while many rows are active
    sp.start(active, 300, 250, limit=300)
    assert sp.listed and list(sp.active_rows[:sp.n_active]) == list(np.flatnonzero(active))


def test_more_new_active_rows_than_the_list_has_room_for():
    """Ghosts moved onto owned particles make many rows active at once: the list, sized by use at the
    last pass, is short; the pass still gives the dense pass's sums and lists every active row."""
    rng = np.random.default_rng(5)
    n, n_own, dim = 400, 300, 3
    pos, radius, box = configuration(rng, n, dim, phi=0.05, polydispersity=0.0)
    pos[n_own:] = pos[:n - n_own]                   # ghost rows: copies, then moved away
    pos[n_own:, 0] = (pos[n_own:, 0] + 0.5 * box[0]) % box[0]
    first, second = pair_list(rng, pos, radius, box, dim, box[0])          # every pair listed
    dyn = dynamics("bro-pairwise")
    dense = Dense(dyn, pos, radius, box, n_own, dim)
    sp = Sparse(dyn, pos, radius, box, n_own, dim)
    dense.pair_pass(0, first, second, True)
    sp.start(0, first, second, True)
    before = sp.sp.n_active
    sp.sp.active_rows = sp.sp.active_rows[:before].copy()       # exactly as long as the last pass needed
    rows = np.arange(n_own, n)
    new = (pos[:n - n_own] + 0.3 * rng.random((n - n_own, 3))) % box
    dense.pos[rows] = new
    sp.move_ghosts(rows, new)
    dense.pair_pass(1, first, second, True)
    sp.pair_pass(1, first, second, True)
    assert sp.sp.n_active > before + 50
    np.testing.assert_array_equal(dense.acc, sp.acc)
    np.testing.assert_array_equal(dense.active, sp.active)
    assert sorted(sp.sp.active_rows[:sp.sp.n_active]) == list(np.flatnonzero(dense.active))
    assert sp.sp.n_active_own == kernels.count_active(dense.active, n_own)
    np.testing.assert_array_equal(dense.counters, sp.counters)
