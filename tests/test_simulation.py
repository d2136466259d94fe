"""Whole runs: the paper's statistical statements on small systems, and the Python API."""
import numpy as np
import pytest

from mpisim import Simulation


def run(scheme, n=1000, phi=0.63, dim=3, steps=1000, seed=1, init_seed=7, log_every=10, **dyn):
    cfg = {"system": {"n": n, "phi": phi, "dim": dim, "seed": seed, "init_seed": init_seed},
           "dynamics": dict(scheme=scheme, **dyn),
           "run": {"steps": steps, "log_every": log_every, "progress_seconds": 0.0}}
    return Simulation.from_config(cfg, write=False).run()


def test_msd_of_sgd_bro_and_approximation_agree_at_small_kick():
    """Fig. 5a / S1a: at eps = 0.002 the MSD after 10^4 steps of pairwise BRO, SGD (alpha = 4 eps / 3,
    b_f = 3/4) and Eq. A13 agree; noise realisations differ, the initial condition is shared."""
    eps = 0.002
    schemes = {"bro-pairwise": {"kick_size": eps},
               "sgd": {"learning_rate": 4 * eps / 3, "batch_fraction": 0.75},
               "sa-pairwise": {"learning_rate": 4 * eps / 3, "batch_fraction": 0.75}}
    msd = {name: [run(name, steps=10_000, log_every=10_000, seed=s, **dyn).observables["msd"][-1]
                  for s in (1, 2)] for name, dyn in schemes.items()}
    means = {k: np.mean(v) for k, v in msd.items()}
    ref = means["bro-pairwise"]
    assert ref > 0.05  # the particles did move
    for name, m in means.items():
        assert abs(m - ref) < 0.05 * ref, (name, means)


@pytest.mark.parametrize("scheme,dyn", [("bro-pairwise", {"kick_size": 0.2}),
                                        ("sgd", {"learning_rate": 0.4, "batch_fraction": 0.5}),
                                        ("rcd", {"learning_rate": 0.4, "batch_fraction": 0.5})])
def test_dilute_absorbs_dense_stays_active(scheme, dyn):
    dilute = run(scheme, phi=0.3, steps=3000, **dyn)
    assert dilute.absorbed_step > 0
    assert dilute.observables["activity"][-1] == 0.0
    assert dilute.observables["step"][-1] == dilute.absorbed_step
    dense = run(scheme, phi=0.75, steps=300, **dyn)
    assert dense.absorbed_step == -1
    assert dense.observables["activity"][-1] > 0.5


@pytest.mark.parametrize("potential,dim", [("harmonic", 3), ("harmonic", 2), ("hertzian", 3)])
def test_gd_energy_never_increases(potential, dim):
    # Smooth potentials and a step below their stability limit. (The linear potential has a jump in
    # its force at contact, so a finite GD step can overshoot and raise V: not tested.)
    sim = run("gd", phi=0.8, dim=dim, n=600, steps=300, log_every=1, learning_rate=0.02,
              potential=potential)
    energy = sim.observables["energy"]
    assert energy[0] > energy[-1] > 0
    assert np.all(np.diff(energy) <= 1e-12 * energy[0])


def test_polydisperse_run_counts_overlaps_by_contact_distance():
    cfg = {"system": {"n": 800, "phi": 0.6, "dim": 2, "radii": [0.5, 0.7], "fractions": [0.5, 0.5]},
           "dynamics": {"scheme": "bro-pairwise", "kick_size": 0.05},
           "run": {"steps": 0, "progress_seconds": 0.0}}
    sim = Simulation.from_config(cfg, write=False)
    sim.compute()
    values = sim.measure()
    ids, pos, _ = sim.snapshot()
    radii = np.where(ids < 400, 0.5, 0.7)
    d = pos[:, None, :] - pos[None, :, :]
    d -= sim.box[:2] * np.rint(d / sim.box[:2])
    r = np.linalg.norm(d, axis=-1)
    overlap = (r < radii[:, None] + radii[None, :]) & ~np.eye(len(ids), dtype=bool)
    assert values["active_pairs"] == overlap.sum() // 2
    assert values["activity"] == overlap.any(axis=1).mean()


def test_run_continues_from_an_earlier_output(tmp_path):
    first = tmp_path / "first.h5"
    cfg = {"system": {"n": 300, "phi": 0.5, "dim": 3}, "dynamics": {"scheme": "bro-pairwise", "kick_size": 0.1},
           "run": {"steps": 20, "progress_seconds": 0.0, "stop_when_absorbed": False}}
    a = Simulation.from_config(cfg, output=str(first)).run()
    cfg["system"]["init"] = str(first)
    b = Simulation.from_config(cfg, write=False)
    np.testing.assert_array_equal(b.snapshot()[1], a.snapshot()[1])


def test_run_in_pieces_equals_one_run(tmp_path):
    """Notebook habit: run(steps=...) several times; the file and series equal those of one run."""
    import h5py
    cfg = {"system": {"n": 300, "phi": 0.7, "dim": 2, "seed": 3},
           "dynamics": {"scheme": "sgd", "learning_rate": 0.1, "batch_fraction": 0.5},
           "run": {"steps": 30, "log_every": 5, "progress_seconds": 0.0, "stop_when_absorbed": False},
           "output": {"snapshot_every": 10}}
    whole = Simulation.from_config(cfg, output=str(tmp_path / "whole.h5")).run()
    # Pieces ending off the logging grid add a row at their last step, once.
    odd = Simulation.from_config(cfg, write=False)
    for steps in (7, 13, 10):
        odd.run(steps=steps)
    assert list(odd.observables["step"]) == [0, 5, 7, 10, 15, 20, 25, 30]
    pieces = Simulation.from_config(cfg, output=str(tmp_path / "pieces.h5"))
    for steps in (10, 10, 10):
        pieces.run(steps=steps)
    for name in whole.observables:
        np.testing.assert_array_equal(pieces.observables[name], whole.observables[name], err_msg=name)
    with h5py.File(tmp_path / "whole.h5") as a, h5py.File(tmp_path / "pieces.h5") as b:
        np.testing.assert_array_equal(a["observables/activity/step"][:], b["observables/activity/step"][:])
        np.testing.assert_array_equal(a["observables/energy/value"][:], b["observables/energy/value"][:])
        last_a, last_b = a["particles/all/position/value"][-1], b["particles/all/position/value"][-1]
        np.testing.assert_array_equal(last_a, last_b)


def test_run_after_the_end_adds_nothing():
    """A run() at a step the last call finished (absorbed with stop_when_absorbed, or steps=0) neither
    moves nor records; a later run() of a run without absorption continues from there."""
    cfg = {"system": {"n": 300, "phi": 0.3, "dim": 2, "seed": 1},
           "dynamics": {"scheme": "bro-pairwise", "kick_size": 0.2},
           "run": {"steps": 3000, "log_every": 10, "progress_seconds": 0.0}}
    sim = Simulation.from_config(cfg, write=False).run()
    assert sim.absorbed_step > 0 and sim.step == sim.absorbed_step
    rows, x = len(sim.observables["step"]), sim.snapshot()[1]
    sim.run(steps=50)
    sim.run(steps=0)
    assert sim.step == sim.absorbed_step and len(sim.observables["step"]) == rows
    np.testing.assert_array_equal(sim.snapshot()[1], x)
    cfg["run"]["stop_when_absorbed"] = False
    sim = Simulation.from_config(cfg, write=False).run(steps=3)
    sim.run(steps=0)
    sim.run(steps=2)
    assert list(sim.observables["step"]) == [0, 3, 5]


def test_absorbing_step_does_not_depend_on_log_every():
    steps = {}
    for log_every in (1, 7):
        cfg = {"system": {"n": 300, "phi": 0.3, "dim": 2, "seed": 1},
               "dynamics": {"scheme": "bro-pairwise", "kick_size": 0.2},
               "run": {"steps": 400, "log_every": log_every, "progress_seconds": 0.0,
                       "stop_when_absorbed": False}}
        steps[log_every] = Simulation.from_config(cfg, write=False).run().absorbed_step
    assert steps[1] > 0 and steps[1] == steps[7]
