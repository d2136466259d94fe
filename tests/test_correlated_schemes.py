"""Random organization and the pair-noise correlation (issue 17; docs/algorithms.md, "Random organization"
and "Pair-noise correlation"): ro-individual, ro-pairwise, bro-correlated, sgd-correlated and
sa-pairwise-correlated. Exact two- and three-particle kicks from the keyed draws, the moments and the
correlation of the two sides of a pair, the reciprocal ends bit for bit, bad values refused (exit 2),
exact restart, and the same trajectory on any rank count (serial here and under mpirun -n 2..4;
tests/test_domain.py and tests/test_sparse.py run them with every other registered scheme too)."""
import math
import subprocess
import sys

import numpy as np
import pytest

from mpisim import Simulation
from mpisim.config import ConfigError, RunConfig
from mpisim.core import rng
from mpisim.core.fixedpoint import FIXED_SCALE
from mpisim.core.schemes import SCHEMES
from mpisim.core.schemes.pair_correlation import copula_rho

from .run_checks import assert_parallel_equals_serial, assert_restart_is_exact
from .test_schemes import EPS, make as make_sim, one_step, pair_geometry

SEED = 11              # test_schemes.make's system.seed
ALPHA, BF = 0.2, 0.5   # test_schemes.make's learning rate and batch fraction
HALF = 0.5             # |U'| of the linear potential
TOL = 4 / FIXED_SCALE


def make(scheme, dim=3, **kw):
    """test_schemes.make with a box of edge ~6 in d = 4, 5 as well (the few particles of a test touch only
    where they are placed to)."""
    return make_sim(scheme, dim=dim, phi=0.01 if dim <= 3 else 10.0 ** (1 - dim), **kw)


def phi_cdf(z):
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def normals(stream, lo, hi, r, step=0):
    """(z_lo, z_hi) of pair_correlation.correlated_normals, from the keyed draws."""
    z_lo = rng.normal(SEED, step, stream, lo, hi)
    w = rng.normal(SEED, step, stream, hi, lo)
    return z_lo, r * z_lo + math.sqrt(max(1 - r * r, 0.0)) * w


def sizes(c, lo, hi, step=0):
    """(u_lo, u_hi) of the correlated kick sizes (Gaussian copula), eps U each."""
    z_lo, z_hi = normals(rng.STREAM_PAIR_NORMAL, lo, hi, copula_rho(c), step)
    return EPS * phi_cdf(z_lo), EPS * phi_cdf(z_hi)


def pair_directions(lo, hi, dim, c_dir, step=0):
    """Unit vectors (n_lo, n_hi) of ro-pairwise's two kicks."""
    g = np.array([normals(rng.STREAM_PAIR_DIRECTION + a, lo, hi, c_dir, step) for a in range(dim)])
    return g[:, 0] / np.linalg.norm(g[:, 0]), g[:, 1] / np.linalg.norm(g[:, 1])


def particle_kick(pid, dim, step=0):
    """u^i n^i of ro-individual."""
    g = np.array([rng.normal(SEED, step, rng.STREAM_PARTICLE_DIRECTION, pid, a) for a in range(dim)])
    return EPS * rng.uniform(SEED, step, rng.STREAM_PARTICLE_UNIFORM, pid, 0) * g / np.linalg.norm(g)


def three(dim):
    """Particles 0-1 and 1-2 overlap, 0-2 do not; e, e21: unit vectors from 1 to 0 and from 2 to 1."""
    x, e = pair_geometry(dim)
    x = np.vstack([x, x[1] + 0.8 * np.eye(dim)[1]])
    return x, e, (x[1] - x[2]) / np.linalg.norm(x[1] - x[2])


# ---------------------------------------------------------------------------------- exact kicks
@pytest.mark.parametrize("dim", [2, 3, 4])
@pytest.mark.parametrize("c", [0.0, 0.4, 1.0])
def test_bro_correlated_two_and_three_particles_exact(dim, c):
    x, e = pair_geometry(dim)
    d = one_step(make("bro-correlated", dim=dim, pair_correlation=c), x)
    u_lo, u_hi = sizes(c, 0, 1)
    np.testing.assert_allclose(d[0], u_lo * e, atol=TOL)
    np.testing.assert_allclose(d[1], -u_hi * e, atol=TOL)
    if c == 1.0:
        assert u_lo == u_hi and np.array_equal(d[0], -d[1])     # reciprocal: the centre of mass stays
    else:
        assert abs(u_lo - u_hi) > 1e-4
    x, e, e21 = three(dim)
    d = one_step(make("bro-correlated", n=3, dim=dim, pair_correlation=c), x)
    (a01, a10), (a12, a21) = sizes(c, 0, 1), sizes(c, 1, 2)
    np.testing.assert_allclose(d[0], a01 * e, atol=TOL)
    np.testing.assert_allclose(d[1], -a10 * e + a12 * e21, atol=TOL)
    np.testing.assert_allclose(d[2], -a21 * e21, atol=TOL)


@pytest.mark.parametrize("dim", [2, 3, 4])
@pytest.mark.parametrize("c", [0.0, 0.6])
def test_sgd_correlated_two_and_three_particles_exact(dim, c):
    """Each side is selected on its own: P(both) = b^2 + c b (1 - b), P(one side) = b (1 - b)(1 - c);
    over 40 steps every outcome occurs, and each step's kicks follow the thresholds on sgd's draw."""
    sim = make("sgd-correlated", dim=dim, pair_correlation=c)
    x, e = pair_geometry(dim)
    both = BF * BF + c * BF * (1 - BF)
    one = BF * (1 - BF) * (1 - c)
    seen = set()
    for step in range(40):
        v = rng.uniform(SEED, step, rng.STREAM_PAIR_UNIFORM, 0, 1)
        theta = (1, 1) if v < both else (1, 0) if v < both + one else (0, 1) if v < both + 2 * one else (0, 0)
        seen.add(theta)
        d = one_step(sim, x)
        np.testing.assert_allclose(d[0], theta[0] * ALPHA * HALF * e, atol=TOL)
        np.testing.assert_allclose(d[1], -theta[1] * ALPHA * HALF * e, atol=TOL)
    assert seen == {(1, 1), (1, 0), (0, 1), (0, 0)}
    x, e, e21 = three(dim)
    d = one_step(make("sgd-correlated", n=3, dim=dim, pair_correlation=c), x)

    def th(lo, hi):
        v = rng.uniform(SEED, 0, rng.STREAM_PAIR_UNIFORM, lo, hi)
        return (v < both or both <= v < both + one), (v < both or both + one <= v < both + 2 * one)
    (t01, t10), (t12, t21) = th(0, 1), th(1, 2)
    g = ALPHA * HALF
    np.testing.assert_allclose(d[0], t01 * g * e, atol=TOL)
    np.testing.assert_allclose(d[1], -t10 * g * e + t12 * g * e21, atol=TOL)
    np.testing.assert_allclose(d[2], -t21 * g * e21, atol=TOL)


@pytest.mark.parametrize("dim", [2, 3, 4])
def test_sa_pairwise_correlated_two_and_three_particles_exact(dim):
    c = 0.3
    sim = make("sa-pairwise-correlated", dim=dim, pair_correlation=c)
    x, e = pair_geometry(dim)
    d = one_step(sim, x)
    amp = math.sqrt(BF - BF * BF)
    z_lo, z_hi = normals(rng.STREAM_PAIR_NORMAL, 0, 1, c)
    np.testing.assert_allclose(d[0], HALF * ALPHA * (BF + amp * z_lo) * e, atol=TOL)
    np.testing.assert_allclose(d[1], -HALF * ALPHA * (BF + amp * z_hi) * e, atol=TOL)
    x, e, e21 = three(dim)
    d = one_step(make("sa-pairwise-correlated", n=3, dim=dim, pair_correlation=c), x)
    (z01, z10), (z12, z21) = normals(rng.STREAM_PAIR_NORMAL, 0, 1, c), normals(rng.STREAM_PAIR_NORMAL, 1, 2, c)
    k = HALF * ALPHA
    np.testing.assert_allclose(d[0], k * (BF + amp * z01) * e, atol=TOL)
    np.testing.assert_allclose(d[1], -k * (BF + amp * z10) * e + k * (BF + amp * z12) * e21, atol=TOL)
    np.testing.assert_allclose(d[2], -k * (BF + amp * z21) * e21, atol=TOL)


@pytest.mark.parametrize("dim", [2, 3, 4, 5])
@pytest.mark.parametrize("c, c_dir", [(0.5, 1.0), (1.0, 1.0), (0.0, 0.0), (0.7, 0.3)])
def test_ro_pairwise_two_and_three_particles_exact(dim, c, c_dir):
    x, e = pair_geometry(dim)
    d = one_step(make("ro-pairwise", dim=dim, pair_correlation=c, direction_correlation=c_dir), x)
    (u_lo, u_hi), (n_lo, n_hi) = sizes(c, 0, 1), pair_directions(0, 1, dim, c_dir)
    np.testing.assert_allclose(d[0], u_lo * n_lo, atol=TOL)
    np.testing.assert_allclose(d[1], -u_hi * n_hi, atol=TOL)
    assert abs(abs(d[0] @ e) - np.linalg.norm(d[0])) > 1e-3      # not along the line of centres
    if c == c_dir == 1.0:
        assert np.array_equal(d[0], -d[1])                        # equal and opposite
    x, e, e21 = three(dim)
    d = one_step(make("ro-pairwise", n=3, dim=dim, pair_correlation=c, direction_correlation=c_dir), x)
    (a01, a10), (n01, n10) = sizes(c, 0, 1), pair_directions(0, 1, dim, c_dir)
    (a12, a21), (n12, n21) = sizes(c, 1, 2), pair_directions(1, 2, dim, c_dir)
    np.testing.assert_allclose(d[0], a01 * n01, atol=TOL)
    np.testing.assert_allclose(d[1], -a10 * n10 + a12 * n12, atol=TOL)
    np.testing.assert_allclose(d[2], -a21 * n21, atol=TOL)


@pytest.mark.parametrize("dim", [2, 3, 4, 5])
def test_ro_individual_kicks_each_active_particle_once(dim):
    """Particle 1 overlaps two others and gets one kick, not two; a particle without overlap stays."""
    x, e, e21 = three(dim)
    x = np.vstack([x, x[0] + 3.0 * np.eye(dim)[0]])                # particle 3: isolated
    d = one_step(make("ro-individual", n=4, dim=dim), x)
    for pid in range(3):
        np.testing.assert_allclose(d[pid], particle_kick(pid, dim), atol=TOL)
        assert abs(np.linalg.norm(d[pid]) - np.linalg.norm(particle_kick(pid, dim))) < TOL
    assert np.array_equal(d[3], np.zeros(dim))


# ----------------------------------------------------------------------- the reciprocal end, bitwise
def run_of(scheme, **dyn):
    cfg = {"system": {"n": 400, "phi": 0.6, "dim": 2, "seed": 5},
           "dynamics": {"scheme": scheme, "learning_rate": 0.3, "batch_fraction": 0.6, **dyn},
           "run": {"steps": 30, "progress_seconds": 0.0, "stop_when_absorbed": False}}
    sim = Simulation.from_config(cfg, write=False).run()
    return sim.snapshot(), sim.observables


@pytest.mark.parametrize("plain", ["sgd", "sa-pairwise"])
def test_full_correlation_is_the_reciprocal_scheme_bit_for_bit(plain):
    (ids, pos, img), obs = run_of(plain)
    (ids1, pos1, img1), obs1 = run_of(f"{plain}-correlated", pair_correlation=1.0)
    assert np.array_equal(pos, pos1) and np.array_equal(img, img1)
    for k in obs:
        assert np.array_equal(obs[k], obs1[k]), k
    _, pos2, _ = run_of(f"{plain}-correlated", pair_correlation=0.9)[0]
    assert not np.array_equal(pos, pos2)


# ----------------------------------------------------------------------------------------- moments
def kick_samples(scheme, samples, dim=2, n=2, **dyn):
    """(samples, n, dim) displacements of one step from the same positions at steps 0, 1, ..."""
    x, _ = pair_geometry(dim)
    sim = make(scheme, n=n, dim=dim, **dyn)
    return np.array([one_step(sim, x) for _ in range(samples)]), pair_geometry(dim)[1]


def assert_close(value, want, err, what):
    assert abs(value - want) < 5 * err, f"{what}: {value} vs {want} +- {err}"


@pytest.mark.parametrize("c", [0.0, 0.5, 0.9])
def test_bro_correlated_sides_are_uniform_with_correlation_c(c):
    samples = 2500
    d, e = kick_samples("bro-correlated", samples, pair_correlation=c)
    a, b = d[:, 0] @ e, -d[:, 1] @ e
    for s in (a, b):
        assert_close(s.mean(), EPS / 2, EPS / math.sqrt(12 * samples), "mean")
        assert_close(s.var(ddof=1), EPS ** 2 / 12, EPS ** 2 / 12 * math.sqrt(0.8 / samples), "variance")
        assert s.min() >= 0 and s.max() < EPS
    assert_close(np.corrcoef(a, b)[0, 1], c, (1 - c * c) / math.sqrt(samples) + 1e-3, "correlation")


@pytest.mark.parametrize("c", [0.0, 0.5])
def test_sgd_correlated_selection_moments(c):
    samples = 2500
    d, e = kick_samples("sgd-correlated", samples, pair_correlation=c)
    a, b = (d[:, 0] @ e) / (ALPHA * HALF), (-d[:, 1] @ e) / (ALPHA * HALF)
    assert set(np.round(a, 9)) <= {0.0, 1.0} and set(np.round(b, 9)) <= {0.0, 1.0}
    for s in (a, b):
        assert_close(s.mean(), BF, math.sqrt(BF * (1 - BF) / samples), "P(selected)")
    assert_close(np.corrcoef(a, b)[0, 1], c, 1 / math.sqrt(samples), "correlation")


@pytest.mark.parametrize("c", [0.0, 0.5])
def test_sa_pairwise_correlated_moments(c):
    """Mean alpha b_f |U'| and standard deviation alpha sqrt(b_f - b_f^2) |U'| along e on each side
    (those of sgd's selection), correlation c between the sides."""
    samples = 2500
    d, e = kick_samples("sa-pairwise-correlated", samples, pair_correlation=c)
    a, b = d[:, 0] @ e, -d[:, 1] @ e
    sd = ALPHA * HALF * math.sqrt(BF - BF * BF)
    for s in (a, b):
        assert_close(s.mean(), ALPHA * HALF * BF, sd / math.sqrt(samples), "mean")
        assert_close(s.std(ddof=1), sd, sd / math.sqrt(2 * samples), "sd")
    assert_close(np.corrcoef(a, b)[0, 1], c, 1 / math.sqrt(samples), "correlation")


@pytest.mark.parametrize("dim", [2, 3, 4])
@pytest.mark.parametrize("c, c_dir", [(0.5, 1.0), (0.5, 0.0)])
def test_ro_pairwise_moments(dim, c, c_dir):
    """Each kick: mean 0, covariance eps^2 / (3 d) I (size U(0, eps), uniform direction). Between the two
    kicks of a pair: -(c + 3) eps^2 / (12 d) I when the directions are opposite (c_dir = 1; sips'
    CorrelatedRO test), 0 when they are independent (c_dir = 0)."""
    samples = 2500
    d, _ = kick_samples("ro-pairwise", samples, dim=dim, pair_correlation=c, direction_correlation=c_dir)
    var = EPS ** 2 / (3 * dim)
    err = var * math.sqrt(3.0 / samples)
    for p in (0, 1):
        assert np.abs(d[:, p].mean(axis=0)).max() < 5 * math.sqrt(var / samples)
        cov = np.cov(d[:, p].T)
        assert np.abs(cov - var * np.eye(dim)).max() < 5 * err
    cross = (d[:, 0] - d[:, 0].mean(0)).T @ (d[:, 1] - d[:, 1].mean(0)) / samples
    want = -(c + 3) * EPS ** 2 / (12 * dim) if c_dir == 1.0 else 0.0
    assert np.abs(cross - want * np.eye(dim)).max() < 5 * err


@pytest.mark.parametrize("dim", [2, 3, 4])
def test_ro_individual_moments(dim):
    samples = 2500
    d, _ = kick_samples("ro-individual", samples, dim=dim)
    var = EPS ** 2 / (3 * dim)
    for p in (0, 1):
        assert np.abs(d[:, p].mean(axis=0)).max() < 5 * math.sqrt(var / samples)
        assert np.abs(np.cov(d[:, p].T) - var * np.eye(dim)).max() < 5 * var * math.sqrt(3.0 / samples)
        size = np.linalg.norm(d[:, p], axis=1)
        assert size.max() < EPS and abs(size.mean() - EPS / 2) < 5 * EPS / math.sqrt(12 * samples)
    cross = (d[:, 0] - d[:, 0].mean(0)).T @ (d[:, 1] - d[:, 1].mean(0)) / samples
    assert np.abs(cross).max() < 5 * var * math.sqrt(2.0 / samples)     # independent particles


# ------------------------------------------------------------------------------------- bad values
BASE = {"system": {"n": 50, "phi": 0.5, "dim": 2}, "run": {"steps": 1}}
CORRELATED = ["bro-correlated", "sgd-correlated", "sa-pairwise-correlated", "ro-pairwise"]


def dynamics(scheme, **keys):
    table = {"scheme": scheme, **{k: 0.1 for k in SCHEMES[scheme].required if k != "pair_correlation"}}
    if "pair_correlation" in SCHEMES[scheme].keys:
        table["pair_correlation"] = 0.5
    return {**table, **keys}


@pytest.mark.parametrize("scheme", CORRELATED)
@pytest.mark.parametrize("value", [-0.1, 1.5, float("nan")])
def test_a_correlation_outside_0_1_is_refused(scheme, value):
    with pytest.raises(ConfigError) as err:
        RunConfig.from_dict({**BASE, "dynamics": dynamics(scheme, pair_correlation=value)})
    allowed = "finite number" if math.isnan(value) else "in [0, 1]"
    assert str(err.value).startswith("dynamics.pair_correlation: ") and allowed in str(err.value)


def test_the_correlation_is_required():
    table = dynamics("bro-correlated")
    del table["pair_correlation"]
    with pytest.raises(ConfigError, match="dynamics.pair_correlation: required key of scheme bro-correlated"):
        RunConfig.from_dict({**BASE, "dynamics": table})


@pytest.mark.parametrize("scheme", ["sgd", "bro-pairwise", "bro-nonreciprocal", "bro-individual", "rcd",
                                    "sa-individual", "ro-individual"])
def test_the_correlation_of_a_scheme_without_it_is_refused(scheme):
    """The schemes without pair noise (particle schemes) or with a fixed one: the message names the key,
    the schemes that take it and the allowed keys."""
    with pytest.raises(ConfigError) as err:
        RunConfig.from_dict({**BASE, "dynamics": dynamics(scheme, pair_correlation=0.5)})
    msg = str(err.value)
    assert msg.startswith(f"dynamics.pair_correlation: scheme {scheme} does not take pair_correlation")
    assert all(s in msg for s in CORRELATED) and "allowed: scheme, potential" in msg


def test_the_direction_correlation_is_ro_pairwise_only():
    with pytest.raises(ConfigError, match="dynamics.direction_correlation: scheme bro-correlated does not"):
        RunConfig.from_dict({**BASE, "dynamics": dynamics("bro-correlated", direction_correlation=0.5)})
    with pytest.raises(ConfigError, match=r"dynamics.direction_correlation: .* in \[0, 1\]"):
        RunConfig.from_dict({**BASE, "dynamics": dynamics("ro-pairwise", direction_correlation=2.0)})


@pytest.mark.parametrize("table, key", [
    ('scheme = "bro-correlated"\nkick_size = 0.1\npair_correlation = 1.2', "dynamics.pair_correlation"),
    ('scheme = "sgd"\nlearning_rate = 0.1\npair_correlation = 0.5', "dynamics.pair_correlation"),
])
def test_the_command_line_exits_2_naming_the_key(tmp_path, table, key):
    (tmp_path / "c.toml").write_text(f"[system]\nn = 50\nphi = 0.5\n[dynamics]\n{table}\n[run]\nsteps = 1\n")
    out = subprocess.run([sys.executable, "-m", "mpisim", "run", "c.toml", "-o", "out.h5"], cwd=tmp_path,
                         capture_output=True, text=True)
    assert out.returncode == 2 and key in out.stderr, out.stderr
    assert not (tmp_path / "out.h5").exists()


# ------------------------------------------------------------------------ restart and rank counts
RUNS = {
    "ro-individual": {"kick_size": 0.1},
    "ro-pairwise": {"kick_size": 0.1, "pair_correlation": 0.6, "direction_correlation": 0.8},
    "bro-correlated": {"kick_size": 0.1, "pair_correlation": 0.6},
    "sgd-correlated": {"learning_rate": 0.3, "batch_fraction": 0.6, "pair_correlation": 0.6},
    "sa-pairwise-correlated": {"learning_rate": 0.3, "batch_fraction": 0.75, "pair_correlation": 0.6},
}


def config(scheme, tmp_path=None, n=500, dim=2, steps=40, **run):
    cfg = {"system": {"n": n, "phi": 0.62, "dim": dim, "seed": 8, "polydispersity": 0.1},
           "dynamics": {"scheme": scheme, **RUNS[scheme]},
           "run": {"steps": steps, "log_every": 4, "stop_when_absorbed": False, "progress_seconds": 0.0,
                   "sort_every": 7, **run}}
    if tmp_path is not None:
        cfg["output"] = {"path": str(tmp_path / "run.h5"), "snapshot_every": 10}
    return cfg


def test_every_new_scheme_is_tested():
    assert set(RUNS) == set(CORRELATED) | {"ro-individual"}


@pytest.mark.parametrize("dim", [2, 4])
@pytest.mark.parametrize("scheme", sorted(RUNS))
def test_restart_from_checkpoint_is_exact(scheme, dim, tmp_path):
    assert_restart_is_exact(config(scheme, tmp_path, dim=dim, checkpoint_every=20), tmp_path, cut_at=30)


@pytest.mark.mpi(min_size=2)
@pytest.mark.parametrize("dim", [2, 3, 4])
@pytest.mark.parametrize("scheme", sorted(RUNS))
def test_parallel_run_equals_serial_run(scheme, dim):
    """Straddling pairs are computed on both ranks, each keeping its own particle's side (and, for RO,
    its own random direction): both ranks must key and assign them by id."""
    assert_parallel_equals_serial(config(scheme, n=600 if dim == 2 else 900, dim=dim, steps=60))
