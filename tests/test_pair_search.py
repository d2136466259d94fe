"""run.pair_search (docs/performance.md, "Large kicks") changes speed, never results: the pair pass over the
Verlet list, the pass that searches the cells without a list (kernels.cell_pair_pass), the automatic choice
(cells at skin 0) and a choice made at random at every build give bitwise the same states and observables,
for every scheme, in 2d and 3d, polydisperse, serially and on 2-4 ranks. The cell pass visits the pairs in
another order than the list: fixed-point sums and draws keyed by ids make that order irrelevant."""
import numpy as np
import pytest

from mpisim import Simulation
from mpisim.config import ConfigError
from mpisim.core.cells import PairList
from mpisim.core.dynamics import DynamicsParams
from mpisim.core.neighbour_list import NeighbourList
from mpisim.core.schemes import SCHEMES

from .run_checks import assert_same_state

# Kicks large enough that the skin adapts to 0 (the cell pass under auto) for most steps.
VALUES = {"kick_size": 0.15, "learning_rate": 0.2, "batch_fraction": 0.5, "noise_amplitude": 0.05,
          "temperature": 0.002, "pair_correlation": 0.5}


def config(scheme, dim, search, steps=40, polydispersity=0.0, potential="linear"):
    return {"system": {"n": 500 if dim == 3 else 400, "phi": 0.62 if dim == 3 else 0.75, "dim": dim, "seed": 3,
                       "polydispersity": polydispersity},
            "dynamics": {"scheme": scheme, "potential": potential,
                         **{k: VALUES[k] for k in SCHEMES[scheme].keys if k in VALUES}},
            "run": {"steps": steps, "log_every": 3, "progress_seconds": 0.0, "sort_every": 7,
                    "stop_when_absorbed": False, "pair_search": search}}


def run(cfg, comm):
    return Simulation.from_config(cfg, write=False, comm=comm).run()


def needs_list(scheme):
    """The reciprocal pair noise reads the list: such a dynamics never takes the cell pass."""
    from mpisim.config import RunConfig
    return DynamicsParams(RunConfig.from_dict(config(scheme, 3, "auto")).dynamics).reciprocal_noise


def choosing_at_random(monkeypatch, seed):
    """Cells or list at random at every build; the same sequence on every rank (the choice is global:
    without a list every rank rebuilds at every step)."""
    rng = np.random.default_rng(seed)
    monkeypatch.setattr(NeighbourList, "use_cells",
                        lambda self, skin, state: self.cells_ok and bool(rng.random() < 0.5))


def compare_searches(scheme, dim, comm, one_comm, monkeypatch, **kw):
    verlet = run(config(scheme, dim, "verlet", **kw), one_comm)
    assert verlet.nlist.cell_passes == 0
    auto = run(config(scheme, dim, "auto", **kw), comm)
    assert_same_state(verlet, auto)
    if needs_list(scheme):
        assert auto.nlist.cell_passes == 0
        with pytest.raises(ConfigError, match='run.pair_search = "cells".*Verlet list'):
            run(config(scheme, dim, "cells", **kw), comm)
        return
    assert auto.nlist.cell_passes > auto.step // 2      # large kicks: mostly without a list
    cells = run(config(scheme, dim, "cells", **kw), comm)
    assert_same_state(verlet, cells)
    assert cells.nlist.cell_passes == cells.step + 1 and cells.nlist.pairs.n == 0
    choosing_at_random(monkeypatch, 17)
    switching = run(config(scheme, dim, "verlet", **kw), comm)
    assert_same_state(verlet, switching)
    assert 5 < switching.nlist.cell_passes < switching.step - 5


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_list_cells_auto_and_switching_are_bitwise_equal(scheme, dim, serial_comm, monkeypatch):
    compare_searches(scheme, dim, serial_comm, serial_comm, monkeypatch)


@pytest.mark.parametrize("potential", ["harmonic", "hertzian"])
def test_polydisperse_with_other_potentials(potential, serial_comm, monkeypatch):
    compare_searches("bro-nonreciprocal", 3, serial_comm, serial_comm, monkeypatch, polydispersity=0.3,
                     potential=potential)


def test_the_cell_pass_grows_its_buffer_and_splits_blocks(serial_comm):
    """A buffer of 8 pairs and blocks of every row at once: each block is halved down to one row, whose
    pairs then need a larger buffer; none of it changes a bit."""
    verlet = run(config("sgd", 3, "verlet"), serial_comm)
    sim = Simulation.from_config(config("sgd", 3, "cells"), write=False, comm=serial_comm)
    sim.nlist.block = PairList(8)
    sim.nlist.rows_per_block = 10 ** 6
    sim.compute()
    assert sim.nlist.block.first.shape[0] > 8 and sim.nlist.rows_per_block == 1
    sim.run()
    assert_same_state(verlet, sim)


def test_pair_search_is_validated():
    from mpisim.config import RunConfig
    with pytest.raises(ConfigError, match="run.pair_search.*allowed: auto, verlet, cells"):
        RunConfig.from_dict(config("sgd", 3, "kdtree"))
    cfg = config("sgd", 3, "cells")
    cfg["run"]["step_kind"] = "sparse"
    with pytest.raises(ConfigError, match="run.pair_search.*sparse"):
        RunConfig.from_dict(cfg)


@pytest.mark.mpi(min_size=2)
@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_searches_on_any_rank_count_equal_the_list_on_one(scheme, dim, monkeypatch):
    from mpi4py import MPI
    compare_searches(scheme, dim, MPI.COMM_WORLD, MPI.COMM_SELF, monkeypatch)
