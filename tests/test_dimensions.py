"""Dimensions 4 to 6 (issue 17): positions with d columns, the kernels compiled per d (core/kernels_wide.py)
against the three-column kernels bitwise, the pair list against brute force, output [N, d], exact restart
and the same trajectory on any rank count (the MPI tests run under mpirun -n 2, 3 and 4)."""
from pathlib import Path

import h5py
import numpy as np
import pytest
from scipy.spatial import cKDTree

from mpisim import RunConfig, Simulation
from mpisim.config import ConfigError, Dynamics
from mpisim.core import kernels, kernels_wide, sparse
from mpisim.core.box import storage_width
from mpisim.core.dynamics import DynamicsParams
from mpisim.core.kernels import N_COUNTERS
from mpisim.core.neighbour_list import NeighbourList
from mpisim.core.schemes import SCHEMES
from mpisim.core.state import ParticleState
from mpisim.io import checkpoint_path, read_checkpoint
from mpisim.parallel.comm import SerialComm
from mpisim.parallel.domain import Domain

from .test_restart import assert_same_run

# A value for the parameters a scheme may take (the others keep their defaults).
VALUES = {"kick_size": 0.1, "learning_rate": 0.15, "batch_fraction": 0.5, "noise_amplitude": 0.02,
          "temperature": 0.002, "pair_correlation": 0.5, "direction_correlation": 0.5}
# Packing fractions that keep a small system active for a few dozen steps at these kicks.
PHI = {4: 0.45, 5: 0.3, 6: 0.2}


def table(scheme, **extra):
    return {"scheme": scheme, **{k: VALUES[k] for k in SCHEMES[scheme].keys if k in VALUES}, **extra}


def config(dim, scheme="bro-pairwise", n=500, steps=30, **extra):
    """A small active run; with S(k) every 10 steps (direct sums, a few shells)."""
    return {"system": {"n": n, "phi": PHI[dim], "dim": dim, "seed": 4},
            "dynamics": table(scheme, **extra),
            "run": {"steps": steps, "log_every": 3, "progress_seconds": 0.0, "sort_every": 7, "skin": 0.1},
            "structure_factor": {"every": 10, "k_max": 4.0, "bins": 4}}


# ------------------------------------------------------------------------------------------------ kernels
def _pair_setup(rng, dim, n=300, side=5.0):
    """Wrapped positions in three columns (z = 0 in 2d), radii, box (3,), every pair i < j."""
    box = np.array([side, side, side if dim == 3 else 1.0])
    pos = np.zeros((n, 3))
    pos[:, :dim] = rng.random((n, dim)) * side
    radius = 0.5 * (1 + 0.2 * (2 * rng.random(n) - 1))
    first, second = np.triu_indices(n, 1)
    return pos, radius, box, first.astype(np.int32), second.astype(np.int32)


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_wide_kernels_are_the_three_column_kernels_bitwise(scheme, dim):
    """On a three-column state the kernels compiled for a tuple box give the hand-unrolled kernels' sums,
    bit for bit: the same arithmetic, whatever the width. (DynamicsParams' default dim = 3: random
    organization's pair kicks draw three direction components in both kernels.)"""
    rng = np.random.default_rng(dim)
    pos, radius, box, first, second = _pair_setup(rng, dim)
    n = len(radius)
    ids = rng.permutation(n).astype(np.int64)
    dyn = DynamicsParams(Dynamics.from_table(table(scheme)))
    out = []
    for module, b in ((kernels, box), (kernels_wide, tuple(box))):
        acc = np.zeros((n, 3), dtype=np.int64)
        active = np.zeros(n, dtype=np.uint8)
        counters = np.zeros(N_COUNTERS, dtype=np.int64)
        module.pair_pass(dyn.scheme, dyn.params, dyn.potential, 11, 5, pos, ids, radius, n, b, first, second,
                         len(first), acc, active, counters, True)
        if dyn.reciprocal_noise or SCHEMES[scheme].noise == "memory":
            aux = rng.random((n, dyn.n_aux)) if not out else out[0][3]
            xi = np.zeros((n, dyn.n_aux))
            module.noise_pair_pass(dyn.scheme, dyn.params, 11, 5, dim, pos, ids, radius, active, n, b, first,
                                   second, len(first), aux, xi, acc)
        else:
            aux = None
        out.append((acc, active, counters, aux))
    (acc3, active3, counters3, _), (accw, activew, countersw, _) = out
    assert active3.sum() > 10
    np.testing.assert_array_equal(acc3, accw)
    np.testing.assert_array_equal(active3, activew)
    np.testing.assert_array_equal(counters3, countersw)


@pytest.mark.parametrize("dim,n,edge,skin,extra_cells", [
    (4, 700, 3.2, 0.0, 3), (4, 700, 3.2, 0.3, 1), (5, 900, 3.2, 0.2, 1), (6, 1200, 2.6, 0.1, 1),
    (4, 1500, 5.0, 0.2, 4), (5, 1200, 4.2, 0.0, 4), (6, 1500, 3.3, 0.0, 3)])
def test_pair_list_is_all_pairs_within_reach(dim, n, edge, skin, extra_cells):
    """One rank: periodic cells (or one slab) along every axis, no ghosts (the binned axes are ghosted
    only where a rank grid splits them; the MPI tests run those): every pair within reach is listed once
    per owned end, nothing beyond it (periodic k-d tree in d dimensions as the reference)."""
    rng = np.random.default_rng(dim * n)
    box = np.full(dim, edge)
    pos = rng.uniform(0, edge, size=(n, dim))
    radius = rng.uniform(0.4, 0.5, size=n)
    domain = Domain(box, dim, cutoff=1.0, comm=SerialComm())
    nlist = NeighbourList(box, dim, domain.lo, domain.width, cutoff=1.0, skin=skin)
    state = ParticleState(width=dim)
    state.set_owned(np.arange(n), pos, np.zeros((n, dim), np.int32), radius, pos)
    nlist.update(state, step=0, halo=domain, largest_step=0.0)
    assert list(nlist.cells.dims[3:]) == [extra_cells] * (dim - 3)
    assert state.n_ghost == 0 and list(nlist.cells.periodic) == [1, 1, 1]
    assert list(nlist.cells.dims[:3]) == [extra_cells] * 3       # the same edge and reach on every axis
    pairs, reach = nlist.pairs, nlist.reach
    listed = []
    for a, b in zip(pairs.first[:pairs.n], pairs.second[:pairs.n]):
        if a < state.n_own:
            listed.append((state.ids[a], state.ids[b]))
        if b < state.n_own:
            listed.append((state.ids[b], state.ids[a]))
    got = set(listed)
    assert len(got) == len(listed), "a particle sees the same partner twice"
    tree = cKDTree(pos, boxsize=box)
    both_ways = lambda ps: {(a, b) for p in ps for a, b in (p, p[::-1])}  # noqa: E731
    want = both_ways(tree.query_pairs(reach * (1 - 1e-12)))
    assert len(want) > n and want <= got
    assert got <= both_ways(tree.query_pairs(reach * (1 + 1e-9)))


def test_the_sparse_step_is_three_dimensional_at_most():
    dyn = DynamicsParams(Dynamics.from_table(table("bro-pairwise")))
    assert sparse.supports(dyn, 3) and not any(sparse.supports(dyn, d) for d in (4, 5, 6))
    sim = Simulation.from_config(config(4, steps=3), write=False, comm=SerialComm())
    assert sim.nlist.sparse is None and sim.state.pos.shape[1] == 4


@pytest.mark.parametrize("dim", [2, 3, 4, 5, 6])
def test_storage_width(dim):
    assert storage_width(dim) == max(3, dim)
    assert ParticleState(width=storage_width(dim)).schema.width == 3 * storage_width(dim) + 2


# -------------------------------------------------------------------------------------------- whole runs
@pytest.mark.serial
@pytest.mark.parametrize("dim", [4, 5, 6])
def test_output_positions_are_n_by_d(tmp_path, dim):
    cfg = config(dim, steps=10)
    cfg["output"] = {"path": str(tmp_path / "out.h5"), "snapshot_every": 5}
    sim = Simulation.from_config(cfg).run()
    with h5py.File(tmp_path / "out.h5") as f:
        assert f["particles/all/position/value"].shape == (3, 500, dim)
        assert f["particles/all/image/value"].shape == (3, 500, dim)
        assert int(f["particles/all/box"].attrs["dimension"]) == dim
        np.testing.assert_array_equal(f["particles/all/position/value"][-1], sim.snapshot()[1])
        value, count = f["structure_factor/value"][()], f["structure_factor/count"][()]
        assert value.shape == (2, 4) and (count > 0).sum() >= 2
        np.testing.assert_array_equal(np.isfinite(value), np.broadcast_to(count > 0, value.shape))
    assert np.abs(sim.snapshot()[2]).sum() > 0      # particles crossed periodic faces
    assert sim.observables["activity"][-1] > 0.5    # still active: the test exercised the kicks


def _restart_config(path, dim, scheme, **extra):
    r = {"steps": 60, "log_every": 3, "stop_when_absorbed": False, "checkpoint_every": 20,
         "progress_seconds": 0.0}
    return RunConfig.from_dict({"system": {"n": 400, "phi": PHI[dim], "dim": dim, "seed": 7},
                                "dynamics": table(scheme, **extra), "run": r,
                                "output": {"path": str(path), "snapshot_every": 10, "flush_every": 10}})


@pytest.mark.serial
@pytest.mark.parametrize("dim,scheme,extra", [(4, "bro-pairwise", {}), (5, "pgd", {}),
                                              (6, "sgd", {"momentum": 0.5})])
def test_resume_equals_uninterrupted(tmp_path, dim, scheme, extra):
    """A run stopped after 47 steps and resumed from its checkpoint (step 40) equals the uninterrupted
    run, file and series; per-axis particle state (noise memory, momentum) has d columns."""
    ref = Simulation(_restart_config(tmp_path / "ref.h5", dim, scheme, **extra)).run()
    cfg = _restart_config(tmp_path / "cut.h5", dim, scheme, **extra)
    Simulation(cfg).run(steps=47)
    meta, fields = read_checkpoint(checkpoint_path(tmp_path / "cut.h5"))
    assert meta["step"] == 40 and fields["pos"].shape == (400, dim)
    assert fields["aux"].shape == (400, dim if scheme != "bro-pairwise" else 0)
    sim = Simulation.resume(cfg)
    sim.run()
    assert_same_run(tmp_path / "ref.h5", tmp_path / "cut.h5")
    for k, v in ref.observables.items():
        assert np.array_equal(v, sim.observables[k]), k


# --------------------------------------------------------------------------------------------------- MPI
def _on_ranks(make):
    """make(), skipped when this rank count cannot split the box (every rank raises it alike): the small
    boxes of d = 5, 6 are 2-3 interaction ranges per axis, so 3 ranks (3 subdomains on one axis) may not
    fit; the rank count is then covered by the other cases."""
    try:
        return make()
    except ConfigError as exc:
        if "cannot split this box" in str(exc):
            pytest.skip(str(exc))
        raise


RANK_CASES = ([(4, s, {}) for s in sorted(SCHEMES)]
              + [(5, "bro-pairwise", {}), (5, "pgd", {"spatial_correlation": "reciprocal"}),
                 (6, "bro-nonreciprocal", {}), (6, "gd", {"momentum": 0.5})])


@pytest.mark.mpi(min_size=2)
@pytest.mark.parametrize("dim,scheme,extra", RANK_CASES)
def test_same_trajectory_on_any_rank_count(dim, scheme, extra):
    from mpi4py import MPI
    runs = []
    for comm in (MPI.COMM_WORLD, MPI.COMM_SELF):
        sim = _on_ranks(lambda: Simulation.from_config(config(dim, scheme, n=600, **extra), write=False,
                                                       comm=comm)).run()
        runs.append((sim.snapshot(), sim.observables, sim.structure_factor, sim.domain.grid))
    ((ids, pos, img), obs, sofk, grid), ((ids1, pos1, img1), obs1, sofk1, _) = runs
    assert np.prod(grid) == MPI.COMM_WORLD.size and pos.shape == (600, dim)
    np.testing.assert_array_equal(ids, ids1)
    np.testing.assert_array_equal(pos, pos1)
    np.testing.assert_array_equal(img, img1)
    for name in obs1:
        np.testing.assert_array_equal(obs[name], obs1[name], err_msg=name)
    assert np.abs(img).sum() > 0
    assert len(sofk) == len(sofk1) == 4 and (sofk[0].counts > 0).sum() >= 2     # steps 0, 10, 20, 30
    for a, b in zip(sofk, sofk1):
        np.testing.assert_array_equal(a.S, b.S)


@pytest.mark.mpi(min_size=2)
@pytest.mark.parametrize("dim", [4, 5])
def test_resume_in_parallel(tmp_path, dim):
    """Checkpoint written on P ranks, resumed on P ranks: the same file as an uninterrupted run."""
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    base = Path(comm.bcast(str(tmp_path), root=0))
    _on_ranks(lambda: Simulation(_restart_config(base / "ref.h5", dim, "bro-pairwise"), comm=comm)).run()
    cfg = _restart_config(base / "cut.h5", dim, "bro-pairwise")
    Simulation(cfg, comm=comm).run(steps=47)
    sim = Simulation.resume(cfg, comm=comm)
    assert sim.step == 40
    sim.run()
    comm.Barrier()
    if comm.rank == 0:
        assert_same_run(base / "ref.h5", base / "cut.h5")
