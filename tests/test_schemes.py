"""Every scheme against its equation in the paper: exact two-particle kicks, reciprocity, centre of mass,
sgd at b_f = 1 = gd, and the stochastic approximations' per-step mean and covariance (Eq. 6, A6, A7)."""
import numpy as np
import pytest

from mpisim import Simulation
from mpisim.core import rng
from mpisim.core.fixedpoint import FIXED_SCALE
from mpisim.core.schemes import SCHEMES

EPS = 0.1


def make(scheme, n=2, dim=3, phi=0.01, potential="linear", **dyn):
    """A simulation of ``scheme`` with eps = EPS, alpha = 0.2, b_f = 0.5 (those of its keys), or ``dyn``."""
    defaults = {"kick_size": EPS, "learning_rate": 0.2, "batch_fraction": 0.5}
    dynamics = {"scheme": scheme, "potential": potential,
                **{k: v for k, v in defaults.items() if k in SCHEMES[scheme].keys}}
    dynamics.update(dyn)
    cfg = {"system": {"n": n, "phi": phi, "dim": dim, "seed": 11}, "dynamics": dynamics,
           "run": {"steps": 1, "progress_seconds": 0.0, "stop_when_absorbed": False}}
    return Simulation.from_config(cfg, write=False)


def one_step(sim, positions):
    """Displacements (N, d) of one step from the given positions (MSD reference reset)."""
    sim.set_positions(positions)
    sim.compute()
    sim.advance()
    _, pos, img = sim.snapshot()
    return pos + img * sim.box[:sim.dim] - np.mod(positions, sim.box[:sim.dim])


def pair_geometry(dim=3, r=0.7):
    """Two particles at distance r along a skewed direction; e: unit vector from 1 to 0."""
    e = np.array([0.6, -0.48, 0.64, 0.3, -0.25, 0.4])[:dim]     # d = 4..6: the further axes too
    e /= np.linalg.norm(e)
    x1 = np.full(dim, 1.3)
    return np.array([x1 + r * e, x1]), e


@pytest.mark.parametrize("dim", [2, 3])
def test_bro_pairwise_two_particles_exact(dim):
    sim = make("bro-pairwise", dim=dim)
    x, e = pair_geometry(dim)
    d = one_step(sim, x)
    u = EPS * rng.uniform(11, 0, rng.STREAM_PAIR_UNIFORM, 0, 1)   # Eq. 1: u^{01} ~ U(0, eps)
    np.testing.assert_allclose(d[0], u * e, atol=2 / FIXED_SCALE)
    np.testing.assert_allclose(d[1], -u * e, atol=2 / FIXED_SCALE)


@pytest.mark.parametrize("dim", [2, 3])
def test_bro_individual_three_particles_exact(dim):
    sim = make("bro-individual", n=3, dim=dim)
    x, e = pair_geometry(dim)
    third = x[1] + 0.8 * np.eye(dim)[1]   # overlaps particle 1 only
    x = np.vstack([x, third])
    d = one_step(sim, x)
    u = [EPS * rng.uniform(11, 0, rng.STREAM_PARTICLE_UNIFORM, i, 0) for i in range(3)]  # Eq. A1
    e21 = (x[1] - x[2]) / np.linalg.norm(x[1] - x[2])
    np.testing.assert_allclose(d[0], u[0] * e, atol=4 / FIXED_SCALE)
    np.testing.assert_allclose(d[1], u[1] * (-e + e21), atol=4 / FIXED_SCALE)
    np.testing.assert_allclose(d[2], -u[2] * e21, atol=4 / FIXED_SCALE)


@pytest.mark.parametrize("potential,force", [("linear", lambda o: 0.5), ("harmonic", lambda o: o),
                                             ("hertzian", lambda o: o ** 1.5)])
def test_gd_two_particles_follows_the_potential(potential, force):
    sim = make("gd", potential=potential, learning_rate=0.2)
    x, e = pair_geometry(r=0.7)
    d = one_step(sim, x)
    np.testing.assert_allclose(d[0], 0.2 * force(0.3) * e, atol=2 / FIXED_SCALE)   # -alpha grad_0 U
    np.testing.assert_allclose(d[1], -0.2 * force(0.3) * e, atol=2 / FIXED_SCALE)


def test_non_overlapping_particles_never_move():
    for scheme in ("bro-pairwise", "bro-individual", "sgd", "rcd", "gd", "sa-pairwise", "sa-individual"):
        sim = make(scheme)
        x, _ = pair_geometry(r=1.0 + 1e-9)
        assert not one_step(sim, x).any(), scheme


@pytest.mark.parametrize("scheme", ["bro-pairwise", "sgd", "gd", "sa-pairwise"])
def test_pairwise_schemes_are_reciprocal_and_conserve_centre_of_mass(scheme):
    sim = make(scheme, n=400, phi=0.7, **({"batch_fraction": 0.6} if "batch_fraction" in SCHEMES[scheme].keys else {}))
    _, x, _ = sim.snapshot()
    total = np.zeros(3)
    for _ in range(3):
        d = one_step(sim, x)
        assert np.abs(d).sum() > 0
        # Fixed-point kicks are exactly opposite, so the sum is zero to the last bit of a position.
        np.testing.assert_allclose(d.sum(axis=0), 0.0, atol=400 * 1e-13)
        x = x + d
        total += d.sum(axis=0)


def test_sgd_with_full_batch_equals_gd_step_for_step():
    cfg = lambda dynamics: {"system": {"n": 500, "phi": 0.7, "dim": 3, "seed": 2},  # noqa: E731
                            "dynamics": {"learning_rate": 0.05, **dynamics},
                            "run": {"steps": 40, "log_every": 1, "progress_seconds": 0.0}}
    a = Simulation.from_config(cfg({"scheme": "sgd", "batch_fraction": 1.0}), write=False).run()
    b = Simulation.from_config(cfg({"scheme": "gd"}), write=False).run()
    for x, y in zip(a.snapshot(), b.snapshot()):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(a.observables["energy"], b.observables["energy"])


def _moments(sim, x, samples):
    """Mean and variance along e of particle 0's displacement over independent steps."""
    _, e = pair_geometry()
    proj = np.empty(samples)
    for k in range(samples):
        proj[k] = one_step(sim, x)[0] @ e
    return proj.mean(), proj.var(ddof=1)


def _agree(m, v, mean, var, samples):
    """m, v within 5 standard errors of the exact mean and variance."""
    assert abs(m - mean) < 5 * np.sqrt(var / samples) + 1e-12
    kurt = 3.0  # Gaussian fourth moment; a Bernoulli or uniform has less, so this bound is safe
    assert abs(v - var) < 5 * var * np.sqrt((kurt - 1) / samples) + 1e-12


SAMPLES = 3000


@pytest.mark.parametrize("scheme", ["bro-pairwise", "sa-pairwise"])
def test_pairwise_bro_and_its_approximation_share_mean_and_covariance(scheme):
    # Eq. 1 -> Eq. 4: mean eps/2 e, variance eps^2/12 along e (and zero across: noise on the centre line).
    params = {"kick_size": EPS} if scheme == "bro-pairwise" else {"learning_rate": 4 * EPS / 3,
                                                                  "batch_fraction": 0.75}
    sim = make(scheme, **params)
    x, _ = pair_geometry()
    m, v = _moments(sim, x, SAMPLES)
    _agree(m, v, EPS / 2, EPS ** 2 / 12, SAMPLES)


@pytest.mark.parametrize("scheme", ["sgd", "sa-pairwise"])
def test_sgd_and_its_approximation_share_mean_and_covariance(scheme):
    # Eq. A11: mean alpha b_f |U'|, variance alpha^2 (b_f - b_f^2) |U'|^2 with |U'| = 1/2.
    alpha, bf = 0.2, 0.3
    sim = make(scheme, learning_rate=alpha, batch_fraction=bf)
    x, _ = pair_geometry()
    m, v = _moments(sim, x, SAMPLES)
    _agree(m, v, alpha * bf * 0.5, alpha ** 2 * (bf - bf ** 2) * 0.25, SAMPLES)


@pytest.mark.parametrize("scheme,params,mean,var", [
    ("rcd", {"learning_rate": 0.2, "batch_fraction": 0.3}, 0.2 * 0.3 * 0.5, 0.04 * 0.21 * 0.25),  # Eq. A6
    ("sa-individual", {"learning_rate": 0.2, "batch_fraction": 0.3}, 0.2 * 0.3 * 0.5, 0.04 * 0.21 * 0.25),
    ("bro-individual", {"kick_size": EPS}, EPS / 2, EPS ** 2 / 12),                            # Eq. A2
    ("sa-individual", {"learning_rate": 4 * EPS / 3, "batch_fraction": 0.75}, EPS / 2, EPS ** 2 / 12),
])
def test_individual_schemes_mean_and_covariance(scheme, params, mean, var):
    sim = make(scheme, **params)
    x, _ = pair_geometry()
    m, v = _moments(sim, x, SAMPLES)
    _agree(m, v, mean, var, SAMPLES)
