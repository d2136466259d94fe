"""analysis.hyperuniformity: S(k) exponent, number variance, per-scheme energies, speed, figure.
References with known answers: Poisson points (S = 1, alpha = 0, sigma^2 = <N> ~ R^d) and a randomly
perturbed square lattice (S ~ k^2 <u^2> at small k, sigma^2 ~ R^(d-1))."""
import math

import numpy as np
import pytest

from analysis.hyperuniformity import (Hyperuniformity, NotComputedError, energy_per_scheme,
                                      number_variance, number_variance_exponent, plot_hyperuniformity,
                                      speed_squared)

L = 60.0
BOX = np.array([L, L])


def poisson(seed=0, n=3600):
    return np.random.default_rng(seed).random((n, 2)) * BOX


def perturbed_lattice(seed=0, u=0.15):
    g = np.arange(int(L)) + 0.5
    x = np.stack(np.meshgrid(g, g, indexing="ij"), axis=-1).reshape(-1, 2)
    return np.mod(x + u * np.random.default_rng(seed).normal(size=x.shape), L)


@pytest.mark.parametrize("frames, expected", [([poisson(0), poisson(1)], 0.0),
                                              ([perturbed_lattice(0), perturbed_lattice(1)], 2.0)])
def test_alpha_of_known_point_patterns(frames, expected):
    hu = Hyperuniformity(k_fit_max=1.5).compute(frames, BOX)
    assert hu.alpha == pytest.approx(expected, abs=0.35)
    assert hu.alpha_err > 0
    kmin, kmax, npts = hu.fit_range
    assert kmin == pytest.approx(2 * math.pi / L) and kmax == 1.5 and npts >= 5


def test_perturbed_lattice_prefactor_is_u_squared():
    """S(k) = k^2 <u_x^2> (1 + O(k^2 u^2)) for a lattice displaced by iid Gaussian u."""
    u = 0.15
    hu = Hyperuniformity(k_fit_max=1.0).compute([perturbed_lattice(s, u) for s in range(4)], BOX)
    ok = (hu.k < 1.0) & np.isfinite(hu.S_k)
    ratio = np.median(hu.S_k[ok] / hu.k[ok] ** 2)
    assert ratio == pytest.approx(u * u, rel=0.3)


def test_results_raise_before_compute():
    with pytest.raises(NotComputedError):
        Hyperuniformity().alpha


@pytest.mark.parametrize("points, expected", [(poisson(2), 2.0), (perturbed_lattice(2), 1.0)])
def test_number_variance_exponent(points, expected):
    radii = np.geomspace(2.0, 12.0, 8)
    mean, var = number_variance(points, BOX, radii, n_windows=3000)
    assert mean == pytest.approx(len(points) / L ** 2 * math.pi * radii ** 2, rel=0.05)
    lam, err = number_variance_exponent(radii, var)
    assert lam == pytest.approx(expected, abs=0.3)


def test_number_variance_rejects_windows_larger_than_half_the_box():
    with pytest.raises(ValueError, match="half the box"):
        number_variance(poisson(), BOX, [31.0])


def test_energy_per_scheme_mean_and_standard_error():
    out = energy_per_scheme([("pgd", 1.0), ("pgd", 3.0), ("gd", 5.0)])
    assert out["pgd"] == (2.0, pytest.approx(1.0), 2)
    assert out["gd"][0] == 5.0 and math.isnan(out["gd"][1])


def test_speed_squared_of_ballistic_motion():
    v = np.array([[0.3, 0.4], [0.0, 1.0]])
    frames = np.array([v * k for k in range(5)])
    assert np.allclose(speed_squared(frames), 0.5 * (0.25 + 1.0))


def test_figure_is_written(tmp_path):
    curves = {"lattice": Hyperuniformity(k_fit_max=1.5).compute([perturbed_lattice()], BOX),
              "poisson": Hyperuniformity(k_fit_max=1.5).compute([poisson()], BOX)}
    path = plot_hyperuniformity(curves, tmp_path / "hu.png")
    assert path.stat().st_size > 1000
