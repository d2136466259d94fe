"""Checks that every scheme's runs must pass, shared by the scheme tests (test_bro_nonreciprocal.py,
test_correlated_schemes.py, test_noise_models.py): an interrupted and resumed run equals the straight
run, and a run on all ranks of the job equals the serial run, bit for bit; ``assert_same_state``, the
bitwise comparison of two finished simulations that these and the step-kind, pair-search and step-loop
tests share."""
import numpy as np

from mpisim import RunConfig, Simulation


def assert_same_state(a, b):
    """Two finished ``Simulation``s bitwise alike: snapshot (gathered by id), every observable series,
    the step reached and the absorbing step."""
    for x, y in zip(a.snapshot(), b.snapshot()):
        np.testing.assert_array_equal(x, y)
    assert sorted(a.observables) == sorted(b.observables)
    for name in a.observables:
        np.testing.assert_array_equal(a.observables[name], b.observables[name], err_msg=name)
    assert (a.step, a.absorbed_step) == (b.step, b.absorbed_step)


def assert_restart_is_exact(cfg, tmp_path, cut_at, aux=False):
    """Run ``cfg`` (a dict with run.checkpoint_every and run.steps) straight, and cut at step ``cut_at``
    (after a checkpoint) then resumed: same snapshot (and aux, sorted by id, if ``aux``) and observables."""
    config = RunConfig.from_dict(cfg)
    full = Simulation(config, output=tmp_path / "full.h5").run()
    Simulation(config, output=tmp_path / "cut.h5").run(steps=cut_at)       # dies after its checkpoint
    resumed = Simulation.resume(config, output=tmp_path / "cut.h5").run()
    assert_same_state(full, resumed)
    if aux:
        assert np.array_equal(full.state.owned(2)[5], resumed.state.owned(2)[5])
    return full, resumed


def assert_parallel_equals_serial(cfg, aux=False):
    """Run ``cfg`` on MPI.COMM_WORLD and on COMM_SELF: same snapshot, observables (and per-particle aux,
    gathered by id, if ``aux``), with at least two list rebuilds. Returns (parallel, serial)."""
    from mpi4py import MPI
    par = Simulation.from_config(cfg, comm=MPI.COMM_WORLD, write=False).run()
    ser = Simulation.from_config(cfg, comm=MPI.COMM_SELF, write=False).run()
    assert par.rebuilds > 1
    assert_same_state(par, ser)
    if aux:
        dim = ser.dim
        ids, values = par.state.owned(dim)[0], par.state.owned(dim)[5]
        parts = MPI.COMM_WORLD.allgather((ids, values))
        ids = np.concatenate([p[0] for p in parts])
        values = np.concatenate([p[1] for p in parts])[np.argsort(ids)]
        assert np.array_equal(values, ser.state.owned(dim)[5])
    return par, ser
