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
VALUES = {"kick_size": 0.08, "learning_rate": 0.15, "batch_fraction": 0.5}


def dynamics(scheme):
    return DynamicsParams(Dynamics.from_table({"scheme": scheme, **{k: VALUES[k] for k in SCHEMES[scheme].keys
                                                                    if k in VALUES}}))


def test_every_stateless_scheme_is_covered():
    assert sorted(STATELESS) == sorted(["bro-pairwise", "bro-individual", "sgd", "rcd", "gd", "sa-pairwise",
                                        "sa-individual", "bro-nonreciprocal"])
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
        self.build_pos = self.pos.copy()           # the list was built at the start

    def start(self, step, first, second, energy):
        """A dense pass, then the sparse bookkeeping takes over."""
        Dense.pair_pass(self, step, first, second, energy)
        self.sp.index(first, second, len(first), len(self.pos))
        self.sp.start(self.active, len(self.pos))

    def pair_pass(self, step, first, second, energy):
        d = self.dyn
        self.counters[:] = 0
        self.sp.pair_pass(d.scheme, d.params, d.potential, 7, step, self.pos, self.ids, self.radius, self.n_own,
                          self.box, first, second, self.acc, self.active, self.counters, energy)

    def apply(self, step):
        d = self.dyn
        self.disp_sums[:] = 0
        disp, travel = self.sp.apply(d.scheme, d.params, 7, step, self.dim, self.pos, self.image, self.ids,
                                     self.n_own, self.box, self.acc, self.travel, self.build_pos, self.from_build,
                                     self.disp_sums)
        self.max_travel = max(self.max_travel, travel)
        return disp

    def move_ghosts(self, rows, new):
        """A halo refresh of the ghost rows ``rows`` (consecutive) to positions ``new``."""
        sp = self.sp
        message = np.concatenate([[len(rows)], np.hstack([np.arange(len(rows))[:, None], new]).ravel()])
        sp.n_changed = sparse.store_changed(self.pos, rows[0], message, sp.dirty, sp.changed, sp.n_changed)


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
    distance = np.sqrt(((b.pos + b.image * b.box - b.build_pos)[own] ** 2).sum(1))
    np.testing.assert_allclose(b.travel[own], distance, rtol=0, atol=1e-12, err_msg=what)
    assert np.all(b.travel[own] <= a.travel[own] + 1e-12) and b.max_travel >= distance.max(), what
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
    dyn = dynamics(scheme)
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
        assert sp.sp.n_active_owned(n_own) == kernels.count_active(dense.active, n_own)
        actives.append(int(dense.active[:n_own].sum()))
        assert dense.apply(step) == sp.apply(step)
        assert_same(dense, sp, f"after step {step}")
    # the sequence runs from many active particles towards few, and stays non-trivial
    assert actives[0] > 0.3 * n_own and actives[-1] < actives[0] and sum(actives[1:]) > 0


def test_index_pairs_finds_every_neighbour():
    rng = np.random.default_rng(3)
    pos, radius, box = configuration(rng, 200, 3, 0.5, 0.0)
    first, second = pair_list(rng, pos, radius, box, 3, 0.4)
    sp = sparse.SparseStep()
    sp.index(first, second, len(first), 200)
    for p in range(200):
        fwd = set(second[sp.fwd_lo[p]:sp.fwd_hi[p]])
        rev = set(sp.rev_first[sp.rev_start[p]:sp.rev_start[p + 1]])
        assert fwd == set(second[first == p]) and rev == set(first[second == p])


def test_index_pairs_rejects_a_list_whose_rows_are_split():
    first = np.array([0, 1, 0], dtype=np.int32)
    second = np.array([1, 2, 2], dtype=np.int32)
    with pytest.raises(ValueError, match="not contiguous"):
        sparse.SparseStep().index(first, second, 3, 3)
