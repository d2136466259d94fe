"""The steps between events in one compiled call (core/steploop.py, docs/performance.md "Small systems"):
a run that hands its cell-pass steps to the loop and the same run step by step give bitwise the same
states, observables, files and bookkeeping (builds, cell passes, the skin's inputs), for the sweeps'
configurations: large kicks with the dense step, the automatic step kind into the sparse regime and to
absorption, SGD, polydisperse, a checkpoint, and a resume."""
import h5py
import numpy as np
import pytest

from mpisim import Simulation
from mpisim import simulation as simulation_module
from mpisim.core import steploop
from mpisim.io import format as fmt

from .run_checks import assert_same_state

pytestmark = pytest.mark.serial


def config(scheme="bro-pairwise", phi=0.5575, kind="dense", steps=700, n=400, poly=0.0, **dyn):
    dynamics = {"scheme": scheme, **(dyn or {"kick_size": 0.1})}
    return {"system": {"n": n, "phi": phi, "dim": 3, "seed": 5, "polydispersity": poly},
            "dynamics": dynamics,
            "run": {"steps": steps, "log_every": 50, "stop_when_absorbed": True, "stop_when_steady": True,
                    "steady_every": 200, "steady_min_steps": 400, "progress_seconds": 0.0, "step_kind": kind,
                    "checkpoint_every": 300},
            "output": {"snapshot_every": 250}}


def run(cfg, path, loop, monkeypatch):
    """The run with the compiled loop (counting its calls) or without it (every step in Python)."""
    calls = []
    real = steploop.cell_steps

    def counting(*args):
        out = real(*args)
        calls.append(out[0])
        return out
    with monkeypatch.context() as m:
        m.setattr(steploop, "cell_steps", counting)
        if not loop:
            m.setattr(simulation_module.Simulation, "_cell_steps_fit", lambda self, ops: False)
        sim = Simulation.from_config(cfg, output=str(path)).run()
    return sim, calls


def assert_same(a, b, pa, pb):
    """``assert_same_state``, the step loop's bookkeeping and the two files' series."""
    assert_same_state(a, b)
    assert a.stop_reason == b.stop_reason
    assert (a.max_disp, a.activity_fraction) == (b.max_disp, b.activity_fraction)
    np.testing.assert_array_equal(a.disp_sums, b.disp_sums)
    for name in ("rebuilds", "cell_passes", "built_at", "skin", "stale", "few_active", "max_travel",
                 "sparse_valid", "rows_per_block"):
        assert getattr(a.nlist, name) == getattr(b.nlist, name), name
    assert (a.sparse_steps, a.kind_switches) == (b.sparse_steps, b.kind_switches)
    with h5py.File(pa, "r") as fa, h5py.File(pb, "r") as fb:
        np.testing.assert_array_equal(fmt.frame_steps(fa), fmt.frame_steps(fb))
        for name in ("activity", "energy", "msd", "max_displacement"):
            for x, y in zip(fmt.read_series(fa, name), fmt.read_series(fb, name)):
                np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("cfg", [
    config(),                                                              # large kicks, dense (fig5b eps 0.1)
    config(phi=0.45, steps=3000),                                          # the same to absorption
    config(kind="auto", phi=0.6, kick_size=0.05, steps=3000),              # auto: into the sparse regime
    config(scheme="sgd", phi=0.52, learning_rate=0.2, batch_fraction=0.5),  # SGD (fig5b eps 0.1)
    config(kind="auto", phi=0.55, poly=0.2, kick_size=0.1),                # polydisperse
], ids=["bro-dense", "bro-absorbs", "bro-auto", "sgd", "polydisperse"])
def test_the_compiled_steps_are_the_python_steps(cfg, tmp_path, monkeypatch):
    a, calls = run(cfg, tmp_path / "loop.h5", True, monkeypatch)
    b, none = run(cfg, tmp_path / "python.h5", False, monkeypatch)
    assert calls and not none          # the loop made steps (and the reference none)
    assert_same(a, b, tmp_path / "loop.h5", tmp_path / "python.h5")


def test_the_loop_stops_for_its_events(tmp_path, monkeypatch):
    """Absorption ends a loop after its pass (AFTER_PASS; events, sorts and the skin choice end it before
    one); a resume from a checkpoint taken between loops continues bitwise."""
    a, calls = run(config(phi=0.45, steps=3000), tmp_path / "loop.h5", True, monkeypatch)
    assert a.stop_reason == "absorbed" and calls == [steploop.BEFORE_PASS, steploop.AFTER_PASS]
    assert a.absorbed_step % 50                     # absorbed inside a loop (not at a logged step)
    cfg = config(steps=700)
    first = Simulation.from_config(cfg, output=str(tmp_path / "r.h5"))
    first.run(steps=430)          # a checkpoint at 300
    first.close()
    resumed = Simulation.resume(str(tmp_path / "r.h5"))
    resumed.run()
    whole, _ = run(cfg, tmp_path / "whole.h5", False, monkeypatch)
    for x, y in zip(resumed.snapshot(), whole.snapshot()):
        np.testing.assert_array_equal(x, y)
    for k in whole.observables:
        np.testing.assert_array_equal(resumed.observables[k], whole.observables[k], err_msg=k)
