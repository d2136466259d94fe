"""analysis.hyperuniformity: S(k) exponent, number variance, per-scheme energies, speed, figure.
References with known answers: Poisson points (S = 1, alpha = 0, sigma^2 = <N> ~ R^d) and a randomly
perturbed square lattice (S ~ k^2 <u^2> at small k, sigma^2 ~ R^(d-1))."""
import math

import numpy as np
import pytest

from analysis.errors import NotComputedError
from analysis.errors import AnalysisError
from analysis.hyperuniformity import (Hyperuniformity, energy_per_scheme, fit_plateau, number_variance,
                                      number_variance_exponent, number_variance_lambda, plot_hyperuniformity,
                                      speed_squared)
from analysis.structure_factor import fit_power_law

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


def test_alpha_of_a_3d_perturbed_lattice_is_unbiased_with_few_shells():
    """The 3d runs' situation: a fit over the first few |k| of the box. Expected: the exponent of the exact
    mean S(k) = 1 - exp(-k^2 u^2) of a lattice displaced by iid Gaussian u, fitted on the same shells
    (1.95). Bins of width 2 pi / L read at their centres give 1.6 here: the first bin holds |n|^2 = 1 and 2."""
    L, u = 16.0, 0.2
    box = np.full(3, L)
    g = np.arange(int(L)) + 0.5
    x0 = np.stack(np.meshgrid(g, g, g, indexing="ij"), axis=-1).reshape(-1, 3)
    frames = [np.mod(x0 + u * np.random.default_rng(s).normal(size=x0.shape), L) for s in range(16)]
    k_fit_max = 4.5 * 2 * math.pi / L
    hu = Hyperuniformity(k_fit_max=k_fit_max).compute(frames, box)
    assert list(hu.k_counts[:3]) == [3, 6, 4]        # |n|^2 = 1, 2, 3 in the half space
    assert hu.k[:3] == pytest.approx(2 * math.pi / L * np.sqrt([1, 2, 3]))
    expected = fit_power_law(hu.k, 1 - np.exp(-(hu.k * u) ** 2), hu.k[0] * (1 - 1e-9), k_fit_max, hu.k_counts)[0]
    assert expected == pytest.approx(1.95, abs=0.01)
    assert hu.alpha == pytest.approx(expected, abs=max(0.12, 2.5 * hu.alpha_err))
    assert hu.fit_range[2] == np.sum(hu.k <= k_fit_max)


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


def test_number_variance_lambda_of_a_perturbed_lattice():
    """sigma^2 ~ R^(d-1) from the variance averaged over configurations at radii 2 .. L/5."""
    lam, err = number_variance_lambda([perturbed_lattice(3), perturbed_lattice(4)], BOX, n_windows=3000)
    assert lam == pytest.approx(1.0, abs=0.3) and err > 0


def test_fit_plateau_recovers_s0_and_b_from_the_shells_below_k_fit():
    """S = S0 + B k^2 (+ noise scaled by 1/sqrt(count)) below k_fit, something else above it."""
    k = np.linspace(0.05, 1.2, 40)
    counts = np.arange(40) + 4
    noise = 1e-4 * np.random.default_rng(0).normal(size=40) / np.sqrt(counts)
    s = np.where(k <= 0.6, 0.004 + 0.02 * k ** 2, 1.0) + noise
    s0, s0_err, b = fit_plateau(k, s, counts, 0.6)
    assert s0 == pytest.approx(0.004, abs=4 * s0_err) and 0 < s0_err < 1e-4
    assert b == pytest.approx(0.02, rel=0.05)
    with pytest.raises(AnalysisError, match="2 shells"):
        fit_plateau(k, s, counts, 0.06)


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


def write_noise_sweep(root, frames=2):
    """pgd runs: 'correlated' ones hold perturbed lattices (alpha = 2), 'uncorrelated' ones Poisson points
    (alpha = 0), two seeds each, plus an sgd run that the figure must leave out; returns the manifest."""
    from analysis.synthetic import write_manifest, write_run
    paths = []
    for seed in (1, 2):
        for name, extra, pattern in (("cor", {"temporal_correlation": -0.5, "spatial_correlation": "reciprocal"},
                                      perturbed_lattice),
                                     ("unc", {"temporal_correlation": 0.0, "spatial_correlation": "independent"},
                                      poisson)):
            pos = np.array([pattern(10 * seed + f) for f in range(frames)])
            paths.append(write_run(root / f"{name}{seed}.h5", scheme="pgd", dim=2, n=pos.shape[1], phi=0.5,
                                   seed=seed, steps=200, log_every=10, positions=pos, box=BOX,
                                   frame_steps=np.arange(frames) * 20 + 150, dynamics_extra=extra))
    paths.append(write_run(root / "sgd.h5", scheme="sgd", dim=2, n=900, phi=0.5, steps=200, log_every=10,
                           positions=poisson(9)[:900], box=BOX))
    return write_manifest(root / "manifest.tsv", paths)


@pytest.mark.parametrize("argv", [["figures", "hyperuniformity", "{m}"], ["figures", "{m}", "--which", "hyperuniformity"]])
def test_hyperuniformity_figure_from_runs(tmp_path, argv):
    import csv
    from analysis.cli import main
    manifest = write_noise_sweep(tmp_path)
    out = tmp_path / "fig"
    argv = [a.format(m=manifest) for a in argv] + ["--out", str(out), "--hu-k-fit-max", "1.5"]
    assert main(argv) == 0
    for ext in ("png", "pdf", "csv"):
        assert (out / f"hyperuniformity.{ext}").stat().st_size > 500
    with open(out / "hyperuniformity.csv") as fh:
        rows = list(csv.DictReader(fh))
    by = {r["spatial_correlation"]: r for r in rows}
    assert set(by) == {"reciprocal", "independent"}                      # the sgd run is left out
    assert float(by["reciprocal"]["alpha"]) == pytest.approx(2.0, abs=0.4)
    assert float(by["independent"]["alpha"]) == pytest.approx(0.0, abs=0.4)
    for r in by.values():
        assert int(r["n_runs"]) == 2 and int(r["n_frames"]) == 4          # 2 seeds x 2 late frames
        assert float(r["alpha_err"]) > 0 and float(r["k_fit_max"]) == 1.5
        assert float(r["k_fit_min"]) == pytest.approx(2 * math.pi / L)
    assert float(by["reciprocal"]["lambda"]) == pytest.approx(1.0, abs=0.35)   # sigma^2 ~ R^(d-1)
    assert float(by["independent"]["lambda"]) == pytest.approx(2.0, abs=0.35)  # Poisson: R^d


def test_hyperuniformity_figure_needs_noise_runs(tmp_path, capsys):
    from analysis.cli import main
    from analysis.synthetic import write_run
    p = write_run(tmp_path / "sgd.h5", scheme="sgd", dim=2, n=400, phi=0.5, steps=100, log_every=10)
    assert main(["figures", "hyperuniformity", str(p), "--out", str(tmp_path / "f")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pgd" in err[0] and "error" in err[0]
    assert not (tmp_path / "f").exists()
    assert main(["figures", "hyperuniformity", str(p), "--which", "fig3"]) == 2    # two different figures
