"""S(k): brute-force reference, additivity over particle subsets, lattice and Poisson
configurations, and agreement with freud's StaticStructureFactorDirect."""
import numpy as np
import pytest

from analysis.structure_factor import StructureFactor, fit_power_law, shell_structure_factor, sofk_sums


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("octant", [False, True])
def test_sums_match_brute_force(dim, octant):
    rng = np.random.default_rng(dim)
    box = np.array([7.0, 9.0, 8.0][:dim])
    x = rng.random((300, dim)) * box - 3.0  # unwrapped: phases are periodic anyway
    kv, re, im = sofk_sums(x, box, 4.0, octant=octant)
    ph = x @ kv.T
    np.testing.assert_allclose(re, np.cos(ph).sum(0), atol=1e-9)
    np.testing.assert_allclose(im, np.sin(ph).sum(0), atol=1e-9)
    kmag = np.linalg.norm(kv, axis=1)
    assert kmag.min() > 0 and kmag.max() <= 4.0 + 1e-12
    # every lattice vector of the half space (or octant) within k_max, once
    n = np.round(kv * box / (2 * np.pi)).astype(int)
    assert len({tuple(v) for v in n}) == len(n)
    assert not any(tuple(-v) in {tuple(u) for u in n} for v in n)
    rng_n = [np.arange(-int(4.0 * L / 2 / np.pi), int(4.0 * L / 2 / np.pi) + 1) for L in box]
    allv = np.stack(np.meshgrid(*rng_n, indexing="ij"), -1).reshape(-1, dim)
    inside = np.linalg.norm(allv * 2 * np.pi / box, axis=1) <= 4.0
    nonzero = np.any(allv != 0, axis=1)
    if octant:
        expected = np.sum(inside & nonzero & np.all(allv >= 0, axis=1))
    else:
        expected = np.sum(inside & nonzero) // 2
    assert len(n) == expected


def test_partial_sums_add_up():
    rng = np.random.default_rng(0)
    box = np.full(3, 10.0)
    x = rng.random((1000, 3)) * box
    kv, re, im = sofk_sums(x, box, 3.0)
    _, re1, im1 = sofk_sums(x[:333], box, 3.0)
    _, re2, im2 = sofk_sums(x[333:], box, 3.0)
    np.testing.assert_allclose(re1 + re2, re, atol=1e-9)
    np.testing.assert_allclose(im1 + im2, im, atol=1e-9)


@pytest.mark.parametrize("dim", [2, 3])
def test_simple_cubic_lattice_bragg_peaks(dim):
    m, a = 8, 1.0
    g = np.stack(np.meshgrid(*[np.arange(m) * a] * dim, indexing="ij"), -1).reshape(-1, dim)
    box = np.full(dim, m * a)
    sk = StructureFactor(bins=40, k_max=8.0).compute(g + 0.1, box)
    kv, s = sk.k_points, sk.S_k_points
    bragg = np.all(np.isclose((kv * a / (2 * np.pi)) % 1.0, 0.0, atol=1e-9) |
                   np.isclose((kv * a / (2 * np.pi)) % 1.0, 1.0, atol=1e-9), axis=1)
    assert bragg.any()
    np.testing.assert_allclose(s[bragg], len(g), rtol=1e-9)
    np.testing.assert_allclose(s[~bragg], 0.0, atol=1e-9)


def test_poisson_configuration_flat():
    rng = np.random.default_rng(4)
    box = np.full(3, 20.0)
    x = rng.random((8000, 3)) * box
    sk = StructureFactor(bins=12, k_max=4.0, k_min=0.3).compute(x, box)
    ok = sk.k_counts > 50
    # S at each k is exponential with mean 1: bin means scatter by 1/sqrt(count)
    assert np.all(np.abs(sk.S_k[ok] - 1.0) < 5 / np.sqrt(sk.k_counts[ok]))
    alpha, err = sk.exponent(k_fit_max=4.0, k_fit_min=0.5)
    assert abs(alpha) < max(4 * err, 0.1)


def test_power_law_fit_planted():
    k = np.linspace(0.1, 1.0, 30)
    a, e, amp, n = fit_power_law(k, 2.0 * k ** 0.5, 0.2, 0.9)
    assert a == pytest.approx(0.5) and amp == pytest.approx(2.0) and n == np.sum((k >= 0.2) & (k <= 0.9))


def test_weighted_power_law_fit_ignores_zero_weight_points():
    k = np.linspace(0.1, 1.0, 30)
    y = 2.0 * k ** 1.5
    y[3] *= 10.0
    w = np.ones_like(k)
    w[3] = 0.0
    a, e, amp, n = fit_power_law(k, y, weights=w)
    assert a == pytest.approx(1.5) and amp == pytest.approx(2.0) and n == 29
    assert fit_power_law(k, y)[0] != pytest.approx(1.5)


def test_k_mean_is_the_mean_modulus_of_each_bins_wave_vectors():
    box = np.full(3, 2 * np.pi)           # wave vectors k = n
    x = np.random.default_rng(0).random((50, 3)) * box
    sk = StructureFactor(bins=2, k_max=2.5, k_min=0.5).compute(x, box)
    # half space: |n|^2 = 1 (3 vectors) and 2 (6) in [0.5, 1.5); 3, 4, 5, 6 (4, 3, 12, 12) in [1.5, 2.5)
    assert list(sk.k_counts) == [9, 31]
    second = (4 * np.sqrt(3) + 3 * 2 + 12 * np.sqrt(5) + 12 * np.sqrt(6)) / 31
    assert sk.k_mean == pytest.approx([(3 + 6 * np.sqrt(2)) / 9, second])


def test_shells_group_wave_vectors_of_equal_modulus():
    box = np.array([2 * np.pi, 2 * np.pi])
    kv = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, -1.0], [2.0, 0.0]])
    k, s, counts, shell_of = shell_structure_factor(kv, np.array([1.0, 3.0, 2.0, 4.0, 5.0]))
    assert k == pytest.approx([1.0, np.sqrt(2), 2.0]) and list(counts) == [2, 2, 1]
    assert s == pytest.approx([2.0, 3.0, 5.0]) and list(shell_of) == [0, 0, 1, 1, 2]


def test_agrees_with_freud():
    freud = pytest.importorskip("freud")
    rng = np.random.default_rng(7)
    L = 11.0
    box = np.full(3, L)
    x = rng.random((1500, 3)) * box
    bins, k_max, k_min = 25, 5.1, 0.3
    ref = freud.diffraction.StaticStructureFactorDirect(bins=bins, k_max=k_max, k_min=k_min)
    fbox = freud.box.Box.cube(L)
    ref.compute((fbox, fbox.wrap(x - L / 2)))
    mine = StructureFactor(bins, k_max, k_min, octant=True).compute(x, box)
    np.testing.assert_allclose(mine.bin_edges, ref.bin_edges, rtol=1e-6)
    ok = np.isfinite(ref.S_k)
    np.testing.assert_array_equal(np.isfinite(mine.S_k), ok)
    # freud works in single precision
    np.testing.assert_allclose(mine.S_k[ok], ref.S_k[ok], rtol=2e-4, atol=1e-5)


@pytest.mark.parametrize("dim", [2, 3])
def test_nufft_agrees_with_direct_sums(dim):
    rng = np.random.default_rng(11)
    box = np.array([15.0, 17.0, 16.0][:dim])
    x = rng.random((2000, dim)) * box
    direct = StructureFactor(bins=10, k_max=5.0, method="direct").compute(x, box)
    nufft = StructureFactor(bins=10, k_max=5.0, method="nufft", tolerance=1e-9).compute(x, box)
    assert direct.method_used == "direct" and nufft.method_used == "nufft"
    np.testing.assert_array_equal(nufft.k_points, direct.k_points)
    np.testing.assert_allclose(nufft.S_k_points, direct.S_k_points, rtol=0, atol=1e-8)
    np.testing.assert_array_equal(nufft.k_counts, direct.k_counts)


def test_auto_uses_nufft_for_large_k_sets_only():
    box = np.full(3, 20.0)
    x = np.random.default_rng(0).random((100, 3)) * box
    assert StructureFactor(bins=4, k_max=2.0).compute(x, box).method_used == "direct"    # 522 k
    assert StructureFactor(bins=4, k_max=4.0).compute(x, box).method_used == "nufft"     # 4354 k


@pytest.mark.parametrize("kwargs", [{"method": "grid"}, {"tolerance": 0.0}])
def test_bad_method_or_tolerance_is_refused(kwargs):
    from analysis.errors import AnalysisError
    with pytest.raises(AnalysisError, match=next(iter(kwargs))):
        StructureFactor(bins=4, k_max=2.0, **kwargs)
