"""Noise models beyond selection noise: pgd/spgd (temporally correlated noise), heavy-ball momentum,
langevin (docs/algorithms.md). Serial tests, and MPI tests (run under mpirun -n 2..4) that compare the
parallel run with a serial one on every rank, bit for bit."""
import math
import subprocess
import sys

import numpy as np
import pytest

from mpisim.core import kernels
from mpisim.config import ConfigError, RunConfig
from mpisim.core.dynamics import DynamicsParams
from mpisim.simulation import Simulation

from .run_checks import assert_parallel_equals_serial, assert_restart_is_exact

SCHEMES = {
    "pgd-independent": {"scheme": "pgd", "learning_rate": 0.5, "noise_amplitude": 0.05,
                        "temporal_correlation": -0.5},
    "pgd-reciprocal": {"scheme": "pgd", "learning_rate": 0.5, "noise_amplitude": 0.05,
                       "temporal_correlation": -0.5, "spatial_correlation": "reciprocal"},
    "spgd": {"scheme": "spgd", "learning_rate": 0.5, "batch_fraction": 0.6, "noise_amplitude": 0.05,
             "temporal_correlation": 0.3, "spatial_correlation": "reciprocal"},
    "langevin": {"scheme": "langevin", "learning_rate": 0.1, "temperature": 0.002},
    "gd-momentum": {"scheme": "gd", "learning_rate": 0.1, "momentum": 0.8},
    "sgd-momentum": {"scheme": "sgd", "learning_rate": 0.3, "batch_fraction": 0.5, "momentum": 0.5},
    "rcd-momentum": {"scheme": "rcd", "learning_rate": 0.3, "batch_fraction": 0.5, "momentum": 0.5},
}


def config(dynamics, dim=2, n=300, phi=0.6, steps=60, seed=7, **run):
    return {"system": {"n": n, "phi": phi, "dim": dim, "seed": seed},
            "dynamics": dict(dynamics),
            "run": {"steps": steps, "log_every": 10, "progress_seconds": 0, "stop_when_absorbed": False,
                    **run}}


def unwrapped(sim):
    ids, pos, img = sim.snapshot()
    return pos + img * sim.box[:sim.dim]


# ------------------------------------------------------------------------------------------ config
@pytest.mark.parametrize("dynamics, key", [
    ({"scheme": "pgd", "learning_rate": 0.1}, "dynamics.noise_amplitude"),
    ({"scheme": "pgd", "learning_rate": 0.1, "noise_amplitude": 0.1, "temporal_correlation": -0.8},
     "dynamics.temporal_correlation"),
    ({"scheme": "pgd", "learning_rate": 0.1, "noise_amplitude": 0.1, "spatial_correlation": "opposite"},
     "dynamics.spatial_correlation"),
    ({"scheme": "sgd", "learning_rate": 0.1, "noise_amplitude": 0.1}, "dynamics.noise_amplitude"),
    ({"scheme": "gd", "learning_rate": 0.1, "temporal_correlation": 0.2}, "dynamics.temporal_correlation"),
    ({"scheme": "gd", "learning_rate": 0.1, "spatial_correlation": "reciprocal"},
     "dynamics.spatial_correlation"),
    ({"scheme": "gd", "learning_rate": 0.1, "momentum": 1.0}, "dynamics.momentum"),
    ({"scheme": "pgd", "learning_rate": 0.1, "noise_amplitude": 0.1, "momentum": 0.5}, "dynamics.momentum"),
    ({"scheme": "bro-pairwise", "kick_size": 0.1, "momentum": 0.5}, "dynamics.momentum"),
    ({"scheme": "langevin", "learning_rate": 0.1}, "dynamics.temperature"),
    ({"scheme": "gd", "learning_rate": 0.1, "temperature": 0.1}, "dynamics.temperature"),
])
def test_config_rejects_options_outside_their_schemes(dynamics, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        RunConfig.from_dict(config(dynamics))


@pytest.mark.parametrize("name", sorted(SCHEMES))
def test_config_round_trips_through_toml(name, tmp_path):
    cfg = RunConfig.from_dict(config(SCHEMES[name]))
    path = tmp_path / "c.toml"
    path.write_text(cfg.to_toml())
    assert RunConfig.from_toml(path) == cfg


def test_cli_bad_noise_option_exits_2(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[system]\nn = 100\nphi = 0.5\ndim = 2\n[dynamics]\nscheme = "pgd"\nlearning_rate = 0.1\n'
                    'noise_amplitude = 0.1\ntemporal_correlation = -0.9\n')
    out = tmp_path / "out.h5"
    r = subprocess.run([sys.executable, "-m", "mpisim", "run", str(path), "-o", str(out), "--quiet"],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert "dynamics.temporal_correlation" in r.stderr and "-0.5, 0.5" in r.stderr
    assert not out.exists()


# ------------------------------------------------------------------------------ PGD noise, kernel level
def _pgd_params(c, sigma, spatial="independent"):
    cfg = RunConfig.from_dict(config({"scheme": "pgd", "learning_rate": 0.1, "noise_amplitude": sigma,
                                      "temporal_correlation": c, "spatial_correlation": spatial}))
    return DynamicsParams(cfg.dynamics)


def _free_steps(dyn, n, steps, active):
    """Displacements (steps, n, 2) of n far-apart particles under apply_step (no pair forces)."""
    pos = np.full((n, 3), 50.0)
    pos[:, 2] = 0.0
    image = np.zeros((n, 3), np.int32)
    ids = np.arange(n, dtype=np.int64)
    box = np.array([100.0, 100.0, 1.0])
    acc = np.zeros((n, 3), np.int64)
    aux = np.zeros((n, 3))
    travel = np.zeros(n)
    out = []
    for k in range(steps):
        before = pos.copy()
        kernels.apply_step(dyn.scheme, dyn.params, 11, k, 2, pos, image, ids, n, box, acc,
                           active, aux, np.zeros((n, 3)), travel, np.zeros(kernels.N_DISP, np.int64))
        out.append((pos - before)[:, :2] + image[:, :2] * 0)
    return np.array(out), aux


@pytest.mark.parametrize("c", [-0.5, -0.25, 0.0, 0.4])
def test_pgd_noise_has_the_requested_variance_and_lag_one_correlation(c):
    sigma = 0.01
    dyn = _pgd_params(c, sigma)
    d, _ = _free_steps(dyn, 20000, 4, np.ones(20000, np.uint8))
    x1, x2, x3 = d[1].ravel(), d[2].ravel(), d[3].ravel()   # step 0 starts from zero memory
    assert np.var(x2) / sigma ** 2 == pytest.approx(1.0, abs=0.03)
    assert np.corrcoef(x1, x2)[0, 1] == pytest.approx(c, abs=0.02)
    assert np.corrcoef(x1, x3)[0, 1] == pytest.approx(0.0, abs=0.02)   # one step of memory only


def test_anti_pgd_noise_telescopes():
    """c = -1/2: the kicks sum to sigma (xi_K - xi_0)/sqrt(2), so the noise displacement stays bounded."""
    sigma = 0.01
    d, aux = _free_steps(_pgd_params(-0.5, sigma), 200, 300, np.ones(200, np.uint8))
    total = d.sum(axis=0)
    assert np.allclose(total, sigma * aux[:, :2] / math.sqrt(2), atol=1e-12)
    # An uncorrelated walk of 300 steps would have spread sigma sqrt(300) = 17 sigma.
    assert np.std(total) < 2 * sigma


def test_inactive_particles_neither_move_nor_update_memory():
    dyn = _pgd_params(-0.5, 0.01)
    active = np.zeros(10, np.uint8)
    active[:5] = 1
    d, aux = _free_steps(dyn, 10, 3, active)
    assert np.all(d[:, 5:] == 0) and np.all(aux[5:] == 0)
    assert np.all(d[:, :5] != 0) and np.all(aux[:5, :2] != 0)


@pytest.mark.parametrize("spatial, conserved", [("reciprocal", True), ("independent", False)])
def test_reciprocal_noise_conserves_the_centre_of_mass(spatial, conserved):
    dyn = dict(SCHEMES["pgd-reciprocal"], spatial_correlation=spatial)
    sim = Simulation.from_config(config(dyn, steps=50), write=False)
    com0 = unwrapped(sim).mean(axis=0)
    sim.run()
    shift = np.abs(unwrapped(sim).mean(axis=0) - com0).max()
    if conserved:
        assert shift < 1e-10          # pair kicks are equal and opposite (fixed point), up to wrapping
    else:
        assert shift > 1e-5


def test_pgd_isolated_particle_does_not_move():
    """A particle with no overlap is inactive: no gradient and no noise; an overlapping pair moves."""
    L = 8.0
    cfg = {"system": {"n": 3, "phi": 3 * math.pi * 0.25 / L ** 2, "dim": 2, "seed": 0},
           "dynamics": SCHEMES["pgd-independent"],
           "run": {"steps": 30, "log_every": 1, "progress_seconds": 0, "stop_when_absorbed": False}}
    sim = Simulation.from_config(cfg, write=False)
    sim.set_positions(np.array([[1.0, 1.0], [1.8, 1.0], [5.0, 5.0]]))
    x0 = unwrapped(sim)
    sim.run()
    moved = np.abs(unwrapped(sim) - x0).max(axis=1)
    assert moved[2] == 0 and moved[0] > 0 and moved[1] > 0


# ----------------------------------------------------------------------------------------- momentum
@pytest.mark.parametrize("beta", [0.5, 0.9])
def test_momentum_matches_heavy_ball_recursion(beta):
    """Two overlapping discs (harmonic): separation r_k follows v_{k+1} = beta v_k + alpha (1 - r_k),
    r_{k+1} = r_k + 2 v_{k+1} (each disc moves by v along the line of centres)."""
    alpha = 0.05
    L = 4.0
    phi = 2 * math.pi * 0.25 / L ** 2
    cfg = {"system": {"n": 2, "phi": phi, "dim": 2, "seed": 0},
           "dynamics": {"scheme": "gd", "learning_rate": alpha, "momentum": beta, "potential": "harmonic"},
           "run": {"steps": 40, "log_every": 1, "progress_seconds": 0, "stop_when_absorbed": False}}
    sim = Simulation.from_config(cfg, write=False)
    sim.set_positions(np.array([[1.0, 2.0], [1.4, 2.0]]))
    rs = []
    for _ in range(40):
        sim.compute()
        _, pos, _ = sim.snapshot()
        rs.append(abs(pos[1, 0] - pos[0, 0]))
        sim.advance()
    r, v, ref = 0.4, 0.0, []
    for _ in range(40):
        ref.append(r)
        v = beta * v + alpha * max(1.0 - r, 0.0)
        r = r + 2 * v
    assert np.allclose(rs, ref, atol=1e-9)


def test_momentum_run_is_absorbed_only_when_at_rest():
    """Dilute gd + momentum: overlaps vanish first, then velocities decay to zero and the run stops."""
    cfg = config({"scheme": "gd", "learning_rate": 0.2, "momentum": 0.7}, phi=0.3, steps=5000,
                 stop_when_absorbed=True, log_every=1)
    sim = Simulation.from_config(cfg, write=False).run()
    act = sim.observables["activity"]
    assert sim.absorbed_step > 0 and act[-1] == 0
    first_quiet = int(np.argmax(act == 0))
    assert first_quiet < sim.absorbed_step            # no overlaps before coming to rest
    assert kernels.count_moving(sim.state.aux, sim.state.n_own, 2) == 0


# ----------------------------------------------------------------------------------------- langevin
def _gibbs_bins(T, L, edges):
    """Probabilities of the pair distance r in [edges_i, edges_i+1) (r < 1) and of r >= 1, for two
    discs with harmonic U = (1 - r)^2 / 2 in a periodic L x L box: density ~ exp(-U/T) over the
    separation vector."""
    from scipy.integrate import quad
    w = [quad(lambda r: 2 * math.pi * r * math.exp(-0.5 * (1 - r) ** 2 / T), a, b)[0]
         for a, b in zip(edges[:-1], edges[1:])]
    w.append(L * L - math.pi)
    w = np.array(w)
    return w / w.sum()


def test_langevin_samples_gibbs():
    """Two harmonic discs in a small periodic box: the histogram of their distance is Gibbs at
    T = alpha sigma^2 / 2 (block-averaged errors), and not Gibbs at 2T (the test can fail). The Euler
    step biases the density by O(alpha) (about 1% here), well inside the tolerance."""
    L, T, alpha, steps = 2.1, 0.1, 0.01, 80000
    cfg = {"system": {"n": 2, "phi": 2 * math.pi * 0.25 / L ** 2, "dim": 2, "seed": 1},
           "dynamics": {"scheme": "langevin", "learning_rate": alpha, "temperature": T,
                        "potential": "harmonic"},
           "run": {"steps": steps, "log_every": 1, "progress_seconds": 0, "stop_when_absorbed": False}}
    energy = Simulation.from_config(cfg, write=False).run().observables["energy"][1000:]
    r = np.where(energy > 0, 1.0 - np.sqrt(2.0 * energy), 2.0)
    edges = np.array([0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    idx = np.searchsorted(edges, r, side="right") - 1
    idx[r >= 1.0] = len(edges) - 1
    onehot = np.eye(len(edges))[idx]
    blocks = onehot[:len(onehot) // 2000 * 2000].reshape(-1, 2000, len(edges)).mean(axis=1)
    mean, err = blocks.mean(axis=0), blocks.std(axis=0, ddof=1) / math.sqrt(len(blocks))
    z = (mean - _gibbs_bins(T, L, edges)) / err
    assert np.abs(z).max() < 4, (mean, _gibbs_bins(T, L, edges), z)
    z_wrong = (mean - _gibbs_bins(2 * T, L, edges)) / err
    assert np.abs(z_wrong).max() > 4


def test_langevin_is_never_absorbed():
    cfg = config(SCHEMES["langevin"], phi=0.05, n=20, steps=40, stop_when_absorbed=True)
    sim = Simulation.from_config(cfg, write=False).run()
    assert sim.absorbed_step < 0 and sim.step == 40


# ----------------------------------------------------------------------------------- restart (serial)
@pytest.mark.parametrize("name", sorted(SCHEMES))
def test_restart_from_checkpoint_is_exact(name, tmp_path):
    """Interrupted after a checkpoint, resumed, equals the uninterrupted run: the velocity / noise
    memory is in the checkpoint (aux)."""
    assert_restart_is_exact(config(SCHEMES[name], steps=40, checkpoint_every=20), tmp_path, cut_at=30,
                            aux=True)


# ------------------------------------------------------------------------ MPI: any rank count, bitwise
@pytest.mark.mpi
@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("name", sorted(SCHEMES))
def test_parallel_run_equals_serial_run(name, dim):
    n = 400 if dim == 2 else 700
    assert_parallel_equals_serial(config(SCHEMES[name], dim=dim, n=n, steps=80, sort_every=7), aux=True)
