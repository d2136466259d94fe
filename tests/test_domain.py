"""Domain decomposition: the same trajectory on any number of ranks, bit for bit; rank-grid limits; a
failing rank ends the job. The MPI tests run under mpirun -n 2, 3 and 4 (launch/test); P = 6 and 8 are
checked by launch/check_ranks."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from mpisim import Simulation
from mpisim.config import ConfigError
from mpisim.parallel.comm import rank_grid
from mpisim.core.schemes import SCHEMES

from .conftest import clean_env, mpirun_command

# A value for the parameters a scheme may take (Scheme.keys; the others keep their defaults).
VALUES = {"kick_size": 0.08, "learning_rate": 0.15, "batch_fraction": 0.5, "noise_amplitude": 0.02,
          "temperature": 0.002, "pair_correlation": 0.5}


def _run(comm, scheme, dim, potential="linear", polydispersity=0.0):
    dynamics = {"scheme": scheme, "potential": potential,
                **{k: VALUES[k] for k in SCHEMES[scheme].keys if k in VALUES}}
    cfg = {"system": {"n": 1200 if dim == 3 else 900, "phi": 0.68, "dim": dim, "seed": 4,
                      "polydispersity": polydispersity},
           "dynamics": dynamics,
           "run": {"steps": 40, "log_every": 3, "progress_seconds": 0.0, "sort_every": 7, "skin": 0.1}}
    sim = Simulation.from_config(cfg, write=False, comm=comm).run()
    return sim.snapshot(), sim.observables, sim.rebuilds


@pytest.mark.mpi(min_size=2)
@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_same_trajectory_on_any_rank_count(scheme, dim):
    from mpi4py import MPI
    world = MPI.COMM_WORLD
    (ids, pos, img), obs, _ = _run(world, scheme, dim)
    (ids1, pos1, img1), obs1, _ = _run(MPI.COMM_SELF, scheme, dim)
    np.testing.assert_array_equal(ids, ids1)
    np.testing.assert_array_equal(pos, pos1)
    np.testing.assert_array_equal(img, img1)
    for name in obs1:
        np.testing.assert_array_equal(obs[name], obs1[name], err_msg=name)
    assert np.abs(img).sum() > 0 or dim == 3  # in 2d particles crossed the periodic faces


@pytest.mark.mpi(min_size=2)
@pytest.mark.parametrize("potential", ["harmonic", "hertzian"])
def test_polydisperse_and_other_potentials_are_rank_independent(potential):
    from mpi4py import MPI
    a = _run(MPI.COMM_WORLD, "sa-pairwise", 3, potential, polydispersity=0.2)
    b = _run(MPI.COMM_SELF, "sa-pairwise", 3, potential, polydispersity=0.2)
    for x, y in zip(a[0], b[0]):
        np.testing.assert_array_equal(x, y)


@pytest.mark.mpi(min_size=2)
def test_close_frees_the_rank_grid():
    from mpi4py import MPI
    cfg = {"system": {"n": 400, "phi": 0.6, "dim": 3, "seed": 2},
           "dynamics": {"scheme": "bro-pairwise", "kick_size": 0.05},
           "run": {"steps": 3, "progress_seconds": 0.0}}
    with Simulation.from_config(cfg, write=False, comm=MPI.COMM_WORLD) as sim:
        sim.run()
        cart = sim.domain.cart
        assert cart != MPI.COMM_NULL
    assert sim.domain.cart is None and cart == MPI.COMM_NULL    # Free() nulls the handle
    sim.close()                                                  # idempotent


def test_skin_changes_speed_not_results(serial_comm):
    cfgs = []
    for skin in (0.0, 0.05, 0.4):
        cfg = {"system": {"n": 600, "phi": 0.7, "dim": 3, "seed": 9},
               "dynamics": {"scheme": "bro-pairwise", "kick_size": 0.05},
               "run": {"steps": 50, "progress_seconds": 0.0, "skin": skin}}
        sim = Simulation.from_config(cfg, write=False, comm=serial_comm).run()
        cfgs.append((sim.snapshot(), sim.rebuilds))
    assert cfgs[0][1] > cfgs[2][1]  # a larger skin rebuilds less often ...
    for (snap, _) in cfgs[1:]:      # ... and gives the same trajectory
        for x, y in zip(snap, cfgs[0][0]):
            np.testing.assert_array_equal(x, y)


def test_rank_grid_names_the_largest_rank_count_that_fits():
    box = np.array([3.5, 3.5, 3.5])
    assert rank_grid(8, 3, box, 1.0) == [2, 2, 2]
    with pytest.raises(ValueError, match="largest rank count that fits is 27"):
        rank_grid(64, 3, box, 1.0)
    assert rank_grid(3, 2, np.array([10.0, 4.0, 1.0]), 1.0) == [3, 1, 1]


def test_too_many_ranks_is_a_config_error():
    from mpisim.parallel.comm import SerialComm

    class Fake(SerialComm):
        size = 1000

    cfg = {"system": {"n": 500, "phi": 0.5, "dim": 3}, "dynamics": {"scheme": "gd", "learning_rate": 0.1}}
    with pytest.raises(ConfigError, match="mpirun -n 1000"):
        Simulation.from_config(cfg, write=False, comm=Fake())


FAILING = textwrap.dedent("""
    import sys
    from mpisim import Simulation
    from mpisim.cli import guarded
    from mpisim.parallel.comm import world
    comm = world()
    def work():
        cfg = {"system": {"n": 400, "phi": 0.7, "dim": 2},
               "dynamics": {"scheme": "bro-pairwise", "kick_size": 0.05},
               "run": {"steps": 100000, "progress_seconds": 0.0, "stop_when_absorbed": False}}
        sim = Simulation.from_config(cfg, write=False, comm=comm)
        advance = sim.advance
        def failing_advance():
            if comm.rank == 1 and sim.step == 5:
                raise RuntimeError("injected failure")
            advance()
        sim.advance = failing_advance
        sim.run()
    sys.exit(guarded(comm, work))
""")


def test_a_failing_rank_aborts_the_whole_job(tmp_path):
    script = tmp_path / "fail.py"
    script.write_text(FAILING)
    out = subprocess.run(mpirun_command(2) + [sys.executable, str(script)], capture_output=True,
                         text=True, timeout=120, env=clean_env())
    assert out.returncode != 0
    assert "rank 1 failed: RuntimeError: injected failure" in out.stderr
