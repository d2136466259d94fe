"""The engine's sparse step (run.step_kind, docs/performance.md) changes speed, never results: runs with
the dense step, the sparse step forced from the first step, the automatic switch, and a switch that picks
dense or sparse at random at every step (independently on each rank) give bitwise the same states,
observables and files, serially and on 2-4 ranks, for every stateless scheme, in 2d and 3d,
polydisperse, to absorption, and across a resume from a checkpoint taken in sparse mode; the schemes it
does not reproduce stay dense."""
from pathlib import Path

import h5py
import numpy as np
import pytest

from mpisim import RunConfig, Simulation
from mpisim import simulation as simulation_module
from mpisim.core.schemes import SCHEMES
from mpisim.core.sparse import SPARSE_SCHEMES

from .run_checks import assert_same_state

STATELESS = sorted(name for name, spec in SCHEMES.items() if spec.id in SPARSE_SCHEMES)
VALUES = {"kick_size": 0.08, "learning_rate": 0.15, "batch_fraction": 0.5, "pair_correlation": 0.5}


def config(scheme, dim, kind, steps=120, polydispersity=0.0, phi=None, stop=False, **run):
    return {"system": {"n": 500 if dim == 3 else 400, "phi": phi or (0.5 if dim == 3 else 0.62), "dim": dim,
                       "seed": 11 + dim, "polydispersity": polydispersity},
            "dynamics": {"scheme": scheme, **{k: VALUES[k] for k in SCHEMES[scheme].keys if k in VALUES}},
            # a thick skin: lists that last many steps, so that most steps can go sparse
            "run": {"steps": steps, "log_every": 4, "stop_when_absorbed": stop, "progress_seconds": 0.0,
                    "sort_every": 13, "step_kind": kind, "skin": 0.5, **run}}


def run(cfg, comm, write=False, output=None):
    sim = Simulation.from_config(cfg, comm=comm, write=write, output=output).run()
    return sim


def switching_at_random(monkeypatch, seed):
    """Each rank takes the sparse or the dense pass at random, step by step (the skin policy of forced
    sparse runs, so that lists last)."""
    rng = np.random.default_rng(seed)
    monkeypatch.setattr(simulation_module.Simulation, "_wants_sparse", lambda self: bool(rng.random() < 0.5))


def compare_kinds(scheme, dim, comm, monkeypatch, **kw):
    """Dense, forced sparse, auto and randomly switching runs of one case on comm; returns them."""
    dense = run(config(scheme, dim, "dense", **kw), comm)
    assert dense.nlist.sparse is None and dense.sparse_steps == 0
    forced = run(config(scheme, dim, "sparse", **kw), comm)
    assert_same_state(dense, forced)
    if not scheme.startswith("ro-"):
        # most steps sparse (the step after a rebuild is dense); random organization keeps most particles
        # active and moving in random directions, so at this kick size its lists last only a few steps
        assert forced.sparse_steps > forced.rebuilds
    else:
        assert forced.sparse_steps > 0
    auto = run(config(scheme, dim, "auto", **kw), comm)
    assert_same_state(dense, auto)
    switching_at_random(monkeypatch, 5 + comm.rank)
    switching = run(config(scheme, dim, "sparse", **kw), comm)
    assert_same_state(dense, switching)
    return dense, forced, switching


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("scheme", STATELESS)
def test_dense_sparse_and_switching_runs_are_bitwise_equal(scheme, dim, serial_comm, monkeypatch):
    dense, forced, switching = compare_kinds(scheme, dim, serial_comm, monkeypatch)
    assert dense.observables["activity"].max() > 0.05     # not trivially inactive
    assert switching.kind_switches >= 20, switching.kind_switches


def test_auto_drops_the_skin_when_its_lists_serve_one_pass(serial_comm):
    """Large kicks near absorption (pairwise BRO, eps = 0.1, phi = 0.55): some particle moves farther than
    half the skin in most steps, so a list kept for the few active particles would serve one dense pass;
    auto then builds without the skin (docs/performance.md, "The skin while few particles are active"),
    forced sparse keeps it, and both runs are bitwise the dense one's."""
    def cfg(kind):
        return {"system": {"n": 1000, "phi": 0.55, "dim": 3, "seed": 3},
                "dynamics": {"scheme": "bro-pairwise", "kick_size": 0.1},
                "run": {"steps": 5000, "log_every": 10, "progress_seconds": 0.0, "step_kind": kind}}

    def skins_while_few_active(sim):
        skins = []
        rebuild = sim.nlist.rebuild

        def recorded(*args):
            rebuild(*args)
            if sim.nlist.few_active:
                skins.append(sim.nlist.skin)
        sim.nlist.rebuild = recorded
        return skins

    runs, skins = {}, {}
    for kind in ("dense", "auto", "sparse"):
        runs[kind] = Simulation.from_config(cfg(kind), comm=serial_comm, write=False)
        skins[kind] = skins_while_few_active(runs[kind])
        runs[kind].run()
    assert 0 < runs["dense"].absorbed_step < 5000
    assert_same_state(runs["dense"], runs["auto"])
    assert_same_state(runs["dense"], runs["sparse"])
    kept = [s > 0 for s in skins["auto"]]
    assert len(kept) >= 20 and sum(kept) < 0.5 * len(kept), kept
    assert all(s > 0 for s in skins["sparse"]) and len(skins["sparse"]) >= 20


# The schemes the sparse step does not reproduce (a particle moves without overlapping) stay dense whatever
# run.step_kind says: the same run, no sparse bookkeeping (docs/performance.md).
STAY_DENSE = [("pgd", {"noise_amplitude": 0.1}), ("spgd", {"noise_amplitude": 0.1, "batch_fraction": 0.5}),
              ("langevin", {"temperature": 1e-3}), ("sgd", {"batch_fraction": 0.5, "momentum": 0.5}),
              ("gd", {"momentum": 0.3})]


@pytest.mark.parametrize("scheme, extra", STAY_DENSE, ids=[s for s, _ in STAY_DENSE])
@pytest.mark.parametrize("kind", ["sparse", "auto"])
def test_schemes_that_stay_dense_ignore_the_step_kind(scheme, extra, kind, serial_comm):
    def cfg(step_kind):
        c = config(scheme, 3, step_kind, steps=40)
        c["dynamics"] = {"scheme": scheme, "learning_rate": 0.15, **extra}
        return c
    dense = run(cfg("dense"), serial_comm)
    other = run(cfg(kind), serial_comm)
    assert other.nlist.sparse is None and other.sparse_steps == 0
    assert_same_state(dense, other)


@pytest.mark.parametrize("scheme", ["bro-pairwise", "rcd"])
def test_polydisperse_to_absorption(scheme, serial_comm, monkeypatch):
    dense, forced, switching = compare_kinds(scheme, 3, serial_comm, monkeypatch, steps=3000,
                                             polydispersity=0.3, phi=0.42, stop=True)
    assert 0 < dense.absorbed_step < 3000                  # absorbed within the run, mostly sparse


def datasets(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()])
                     if isinstance(obj, h5py.Dataset) and not name.startswith("parameters") else None)
    return out


def file_config(scheme, kind, path, **run):
    cfg = config(scheme, 3, kind, steps=150, **run)
    cfg["run"].update(checkpoint_every=40, stop_when_absorbed=True)
    cfg["output"] = {"path": str(path), "snapshot_every": 30, "flush_every": 20}
    return cfg


def test_dense_and_forced_sparse_runs_write_the_same_file(tmp_path, serial_comm):
    a, b = tmp_path / "dense.h5", tmp_path / "sparse.h5"
    run(file_config("bro-pairwise", "dense", a), serial_comm, write=True, output=str(a)).close()
    run(file_config("bro-pairwise", "sparse", b), serial_comm, write=True, output=str(b)).close()
    da, db = datasets(a), datasets(b)
    assert sorted(da) == sorted(db) and "particles/all/position/value" in da
    for name in da:
        np.testing.assert_array_equal(da[name], db[name], err_msg=name)


@pytest.mark.parametrize("resume_kind", ["sparse", "dense", "auto"])
def test_resume_from_a_checkpoint_taken_in_sparse_mode(tmp_path, serial_comm, resume_kind):
    ref_path, cut_path = tmp_path / "ref.h5", tmp_path / "cut.h5"
    ref = run(file_config("sgd", "dense", ref_path), serial_comm, write=True, output=str(ref_path))
    cut = Simulation.from_config(file_config("sgd", "sparse", cut_path), comm=serial_comm, output=str(cut_path))
    cut.run(steps=100)                  # checkpoints at 40 and 80, sparse steps before each
    assert cut.sparse_steps > 0
    cut.close()
    cfg = RunConfig.from_dict(file_config("sgd", resume_kind, cut_path))
    resumed = Simulation.resume(cfg, output=str(cut_path), comm=serial_comm)
    assert resumed.step == 80
    resumed.run()
    assert_same_state(ref, resumed)
    ref.close()
    resumed.close()
    da, db = datasets(ref_path), datasets(cut_path)
    for name in da:
        np.testing.assert_array_equal(da[name], db[name], err_msg=name)


@pytest.mark.mpi(min_size=2)
@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("scheme", STATELESS)
def test_sparse_on_any_rank_count_equals_dense_on_one(scheme, dim, monkeypatch):
    from mpi4py import MPI
    one = run(config(scheme, dim, "dense"), MPI.COMM_SELF)
    forced = run(config(scheme, dim, "sparse"), MPI.COMM_WORLD)
    assert_same_state(one, forced)
    auto = run(config(scheme, dim, "auto"), MPI.COMM_WORLD)
    assert_same_state(one, auto)
    switching_at_random(monkeypatch, 5 + MPI.COMM_WORLD.rank)     # each rank its own choices
    switching = run(config(scheme, dim, "sparse"), MPI.COMM_WORLD)
    assert_same_state(one, switching)
    switches = MPI.COMM_WORLD.allgather(switching.kind_switches)
    assert min(switches) >= 20, switches


@pytest.mark.mpi(min_size=2)
def test_parallel_polydisperse_to_absorption_and_resume(tmp_path, monkeypatch):
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    one = run(config("bro-individual", 3, "dense", steps=3000, polydispersity=0.3, phi=0.42, stop=True),
              MPI.COMM_SELF)
    switching_at_random(monkeypatch, 9 + comm.rank)
    many = run(config("bro-individual", 3, "sparse", steps=3000, polydispersity=0.3, phi=0.42, stop=True), comm)
    assert_same_state(one, many)
    assert 0 < one.absorbed_step < 3000
    base = Path(comm.bcast(str(tmp_path), root=0))
    ref = run(file_config("sa-pairwise", "dense", base / "ref.h5"), MPI.COMM_SELF) if comm.rank == 0 else None
    path = base / "cut.h5"
    cut = Simulation.from_config(file_config("sa-pairwise", "sparse", path), comm=comm, output=str(path))
    cut.run(steps=100)
    cut.close()
    resumed = Simulation.resume(RunConfig.from_dict(file_config("sa-pairwise", "auto", path)), output=str(path),
                                comm=comm)
    resumed.run()
    snap = resumed.snapshot()
    obs = resumed.observables
    resumed.close()
    if comm.rank == 0:
        for x, y in zip(ref.snapshot(), snap):
            np.testing.assert_array_equal(x, y)
        for name in obs:
            np.testing.assert_array_equal(ref.observables[name], obs[name], err_msg=name)


@pytest.mark.mpi(min_size=2)
def test_parallel_dense_and_forced_sparse_runs_write_the_same_file(tmp_path):
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    base = Path(comm.bcast(str(tmp_path), root=0))
    a, b = base / "dense.h5", base / "sparse.h5"
    run(file_config("sgd", "dense", a), comm, write=True, output=str(a)).close()
    sparse_run = run(file_config("sgd", "sparse", b), comm, write=True, output=str(b))
    sparse_run.close()
    assert sparse_run.sparse_steps > sparse_run.rebuilds
    if comm.rank == 0:
        da, db = datasets(a), datasets(b)
        assert sorted(da) == sorted(db) and "particles/all/position/value" in da
        for name in da:
            np.testing.assert_array_equal(da[name], db[name], err_msg=name)


@pytest.mark.parametrize("kind", ["dense", "sparse"])
def test_absorbed_step_does_not_depend_on_logging_or_step_kind(tmp_path, serial_comm, kind):
    """The absorbing check counts the active particles from the sparse step's list when it is current:
    runs logging every step and every 7th find the same absorbed step, last row and frame."""
    runs = {}
    for log_every in (1, 7):
        path = tmp_path / f"{kind}-{log_every}.h5"
        cfg = config("bro-pairwise", 3, kind, steps=3000, phi=0.42, stop=True, log_every=log_every)
        cfg["output"] = {"path": str(path), "snapshot_every": 1000}
        runs[log_every] = run(cfg, serial_comm, write=True, output=str(path))
    a, b = runs[1], runs[7]
    assert 0 < a.absorbed_step == b.absorbed_step == b.step < 3000 and a.absorbed_step % 7
    for name in a.observables:
        assert a.observables[name][-1] == b.observables[name][-1], name
        assert b.observables[name][-2] == a.observables[name][b.observables["step"][-2]], name
    for x, y in zip(a.snapshot(), b.snapshot()):
        np.testing.assert_array_equal(x, y)
    with h5py.File(tmp_path / f"{kind}-1.h5", "r") as fa, h5py.File(tmp_path / f"{kind}-7.h5", "r") as fb:
        for key in ("position", "image"):
            da, db = fa[f"particles/all/{key}"], fb[f"particles/all/{key}"]
            np.testing.assert_array_equal(da["step"][()], db["step"][()])
            np.testing.assert_array_equal(da["value"][-1], db["value"][-1])
        assert fb["particles/all/position/step"][-1] == b.absorbed_step
