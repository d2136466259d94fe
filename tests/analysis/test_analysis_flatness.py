"""Delta V under Gaussian perturbations: harmonic well, a harmonic pair against sigma^2/2 Tr H,
pair-list path against direct evaluation, and the fallback energy kernel against brute force."""
import math

import numpy as np
import pytest

from analysis.flatness import Flatness, measure_run, total_energy
from analysis.io import load_run
from analysis.synthetic import write_run


def brute_energy(x, radii, box, potential):
    e = 0.0
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            d = x[j] - x[i]
            d -= box * np.round(d / box)
            r, s = np.linalg.norm(d), radii[i] + radii[j]
            if r < s:
                o = s - r
                e += {"linear": 0.5 * o, "harmonic": 0.5 * o * o, "hertzian": 0.4 * o ** 2.5}[potential]
    return e


@pytest.mark.parametrize("potential", ["linear", "harmonic", "hertzian"])
@pytest.mark.parametrize("dim", [2, 3])
def test_energy_matches_brute_force(potential, dim):
    """The simulator's serial energy (used here) against all pairs, polydisperse, 2d and 3d."""
    rng = np.random.default_rng(dim)
    box = np.full(dim, 7.0)
    x = rng.random((150, dim)) * box
    radii = rng.uniform(0.4, 0.6, 150)
    assert total_energy(x, radii, box, potential) == pytest.approx(
        brute_energy(x, radii, box, potential), rel=1e-12)


def test_harmonic_well_exact():
    n, d, sigma_t = 50, 3, 0.2
    fl = Flatness(sigma_t=sigma_t, m=2000, seed=3, energy=lambda p: 0.5 * 2.0 * float((p ** 2).sum()))
    fl.compute(np.zeros((n, d)), np.full(n, 0.5), np.full(d, 30.0))
    sigma = sigma_t * 0.5
    expected = 0.5 * 2.0 * sigma ** 2 * n * d  # (sigma^2/2) Tr H with H = 2 I
    assert fl.delta_v == pytest.approx(expected, abs=4 * fl.delta_v_err)
    assert fl.sigma == pytest.approx(sigma)


@pytest.mark.parametrize("dim", [2, 3])
def test_harmonic_pair_against_trace_of_hessian(dim):
    r = 0.8  # overlap 0.2 < sigma_ij = 1
    x = np.zeros((2, dim))
    x[1, 0] = r
    x += 3.0
    fl = Flatness(sigma_t=0.04, m=20000, seed=1, potential="harmonic").compute(x, np.full(2, 0.5), np.full(dim, 6.0))
    sigma = fl.sigma
    trace_h = 2 * (1.0 - (dim - 1) * (1.0 - r) / r)  # 2 (U'' + (d-1) U'/r), U = (1 - r)^2 / 2
    assert fl.delta_v == pytest.approx(sigma ** 2 / 2 * trace_h, abs=4 * fl.delta_v_err)
    assert fl.u0 == pytest.approx(0.5)  # U(r=0) = 1^2 / 2


def test_pair_list_path_equals_direct():
    rng = np.random.default_rng(2)
    box = np.full(3, 5.0)
    x = rng.random((120, 3)) * box
    kw = dict(sigma_t=0.1, m=30, seed=9, potential="linear")
    a = Flatness(method="auto", **kw).compute(x, np.full(120, 0.5), box)
    b = Flatness(method="direct", **kw).compute(x, np.full(120, 0.5), box)
    np.testing.assert_allclose(a.samples, b.samples, rtol=1e-10, atol=1e-12)
    assert b.n_direct == 30 and a.n_direct < 30
    # a tiny skin forces the exact fallback, same numbers
    c = Flatness(method="auto", skin=1e-6, **kw).compute(x, np.full(120, 0.5), box)
    np.testing.assert_allclose(c.samples, b.samples, rtol=1e-10, atol=1e-12)


def test_no_overlap_no_fluctuation_and_units(tmp_path):
    g = np.stack(np.meshgrid(*[np.arange(4) * 2.0] * 3, indexing="ij"), -1).reshape(-1, 3) + 0.5
    p = write_run(tmp_path / "lat.h5", n=64, positions=g, box=np.full(3, 8.0))
    fl = measure_run(load_run(p), sigma_t=0.03, m=50, seed=0)
    assert fl.delta_v == 0.0 and fl.energy_before == 0.0
    assert fl.u0 == pytest.approx(0.5)  # linear: U(0) = (1/2) * 2R = R = 1/2 diameter
    assert math.isfinite(fl.delta_v_tilde_per_particle)
