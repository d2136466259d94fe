"""Recorded observables (mpisim/observables.py) against the stored snapshots: speed_squared, the
instantaneous speed (1/N) sum_i |x_i(k) - x_i(k-1)|^2 of paper 002, and mean_displacement. Rank
independence of every observable is checked by tests/test_domain.py and tests/test_noise_models.py
(MPI), and the exact resume of the displacement sums by tests/test_restart.py."""
import h5py
import numpy as np
import pytest

from analysis.hyperuniformity import speed_squared
from mpisim import Simulation
from mpisim.core.observables import NAMES

DYNAMICS = {
    "sgd": {"scheme": "sgd", "learning_rate": 0.3, "batch_fraction": 0.5},                  # apply_step
    "bro-individual": {"scheme": "bro-individual", "kick_size": 0.1},                       # multiplier
    "sgd-momentum": {"scheme": "sgd", "learning_rate": 0.3, "batch_fraction": 0.5, "momentum": 0.9},
    "langevin": {"scheme": "langevin", "learning_rate": 0.1, "temperature": 0.002},
}


def _frames_and_series(path, dim):
    with h5py.File(path, "r") as f:
        part = f["particles/all"]
        steps = part["position/step"][:]
        unwrapped = part["position/value"][:] + part["image/value"][:] * part["box/edges/value"][0][:dim]
        obs = {name: (f[f"observables/{name}/step"][:], f[f"observables/{name}/value"][:]) for name in NAMES}
    return steps, unwrapped, obs


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("name", sorted(DYNAMICS))
def test_speed_squared_equals_consecutive_snapshots(name, dim, tmp_path):
    out = tmp_path / "run.h5"
    cfg = {"system": {"n": 150, "phi": 0.7 if dim == 2 else 0.5, "dim": dim, "seed": 3},
           "dynamics": DYNAMICS[name],
           "run": {"steps": 25, "log_every": 1, "progress_seconds": 0, "stop_when_absorbed": False},
           "output": {"snapshot_every": 1}}
    Simulation.from_config(cfg, output=out).run()
    steps, x, obs = _frames_and_series(out, dim)
    assert np.array_equal(steps, np.arange(26))
    log_steps, v2 = obs["speed_squared"]
    assert np.array_equal(log_steps, steps)
    ref = speed_squared(x)                     # ref[k - 1]: the step x_{k-1} -> x_k
    assert np.all(ref > 0)                     # every logged step moved something
    assert v2[0] == 0.0                        # no step led to x_0
    np.testing.assert_allclose(v2[1:], ref, rtol=1e-12, atol=0)
    dx = np.linalg.norm(np.diff(x, axis=0), axis=2).mean(axis=1)
    np.testing.assert_allclose(obs["mean_displacement"][1][1:], dx, rtol=1e-8, atol=0)
    # (1/N) sum |dx|^2 >= ((1/N) sum |dx|)^2, equal only if every particle moved by the same amount
    assert np.all(v2[1:] > obs["mean_displacement"][1][1:] ** 2)
