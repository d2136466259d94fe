r"""Static structure factor S(k) by direct summation or NUFFT, and its small-k exponent (paper Fig. S2).

Definition: for N particles in a periodic box with edges L_a,

    S(k) = |sum_j exp(i k . x_j)|^2 / N,   k = 2 pi (n_1 / L_1, ..., n_d / L_d),  n integer,

for every k with 0 < |k| <= k_max (k = 0 is excluded), then averaged over the k in each radial bin
[k_lo, k_hi) of |k| (the last bin also takes |k| = k_max). Because S(-k) = S(k), only a half space of
k is summed (the first non-zero n_a positive), which leaves every bin average unchanged.

The kernels (the k set, the sums over particles, bins and shells) live in :mod:`mpisim.core.sofk`,
shared with the simulator's distributed S(k); this module keeps the result class, the fits and the
bin choice of the figures.

``octant=True`` sums instead the k with all n_a >= 0, the set freud's
``freud.diffraction.StaticStructureFactorDirect`` samples; use it to compare with freud bin by bin.

The small-k exponent alpha of S(k) ~ k^alpha (hyperuniformity: alpha > 0; Poisson: alpha = 0) is a
least-squares line through log S against log k over the bins with k_fit_min <= k <= k_fit_max.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> box = np.array([20.0, 20.0, 20.0])
>>> x = rng.random((4000, 3)) * box
>>> sk = StructureFactor(bins=10, k_max=3.0, k_min=0.5).compute(x, box)
>>> bool(abs(sk.S_k.mean() - 1.0) < 0.1)          # a Poisson configuration: S = 1
True
"""
from __future__ import annotations

import math

import numpy as np

from mpisim.core.sofk import (METHODS, NUFFT_TOLERANCE, TWO_PI, bin_structure_factor,  # noqa: F401
                              fixed_to_float, nufft_sums, resolve_method, shell_structure_factor, sofk_sums,
                              sofk_sums_fixed, wave_vectors)

from .errors import AnalysisError, Computed


def fit_power_law(x, y, x_min=None, x_max=None, weights=None):
    """Least-squares line through (log x, log y) for x_min <= x <= x_max, finite positive y.

    ``weights`` (optional, one per point) weight the squared residuals, e.g. the number of wave vectors
    averaged into each S(k) point, to which the variance of its log is inversely proportional.
    Returns ``(exponent, exponent_err, prefactor, n_points)``; the error is the slope's standard
    error from the (weighted) residuals (NaN with fewer than 3 points).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64)
    sel = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0) & (w > 0)
    if x_min is not None:
        sel &= x >= x_min
    if x_max is not None:
        sel &= x <= x_max
    if sel.sum() < 2:
        raise AnalysisError(f"power-law fit needs >= 2 points in range, have {int(sel.sum())}")
    lx, ly, w = np.log(x[sel]), np.log(y[sel]), w[sel]
    mx, my = np.average(lx, weights=w), np.average(ly, weights=w)
    sxx = np.sum(w * (lx - mx) ** 2)
    slope = np.sum(w * (lx - mx) * (ly - my)) / sxx
    icpt = my - slope * mx
    npts = int(sel.sum())
    if npts > 2:
        res = ly - (slope * lx + icpt)
        err = math.sqrt(np.sum(w * res * res) / (npts - 2) / sxx)
    else:
        err = math.nan
    return float(slope), float(err), float(math.exp(icpt)), npts


def default_bins(box, k_max, k_min=0.0) -> int:
    """Bins of width about 2 pi / L (the spacing of |k| along the longest box edge), at least 4."""
    return max(4, int(round((k_max - k_min) / (TWO_PI / float(np.max(box))))))

class StructureFactor(Computed):
    """Binned S(k) of one configuration (freud-like: ``compute(...) -> self``, then properties).

    Parameters
    ----------
    bins : int
        Number of |k| bins between k_min and k_max.
    k_max : float
        Largest |k| (inverse diameters).
    k_min : float
        Smallest |k| binned (k = 0 is always excluded).
    octant : bool
        Sum only the n_a >= 0 octant, as freud does (see :func:`sofk_sums`).
    method : str
        "direct" (float sums over particles, exact to rounding), "nufft" (one type-1 NUFFT, within
        ``tolerance``; the way to reach large k_max), or "auto" (default): direct up to
        ``mpisim.core.sofk.AUTO_DIRECT_MAX_K`` wave vectors, nufft beyond (docs/structure-factor.md).
    tolerance : float
        nufft: finufft's relative tolerance; S per wave vector is within about this of the exact sums.
    """

    def __init__(self, bins: int, k_max: float, k_min: float = 0.0, octant: bool = False,
                 method: str = "auto", tolerance: float = NUFFT_TOLERANCE):
        if bins < 1:
            raise AnalysisError("bins must be >= 1")
        if not 0 <= k_min < k_max:
            raise AnalysisError(f"need 0 <= k_min < k_max, got k_min={k_min}, k_max={k_max}")
        if method not in METHODS:
            raise AnalysisError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        if not 0 < tolerance < 1:
            raise AnalysisError(f"tolerance must be in (0, 1), got {tolerance!r}")
        self.bins, self.k_max, self.k_min, self.octant = int(bins), float(k_max), float(k_min), bool(octant)
        self.method, self.tolerance = method, float(tolerance)
        self._bin_edges = np.linspace(self.k_min, self.k_max, self.bins + 1)
        self._computed = False

    def compute(self, positions, box, n_total: int | None = None) -> "StructureFactor":
        """S(k) of ``positions`` [N, d] in the periodic ``box`` [d]; ``n_total`` defaults to N."""
        pos = np.asarray(positions, dtype=np.float64)
        n = pos.shape[0] if n_total is None else int(n_total)
        try:
            kv, _ = wave_vectors(box, self.k_max, self.octant)
            self._method = resolve_method(self.method, kv.shape[0], kv.shape[1])
            if self._method == "direct":
                kv, re, im = sofk_sums(pos, box, self.k_max, self.octant)
            else:
                kv, re, im = nufft_sums(pos, box, self.k_max, self.octant, self.tolerance)
        except ValueError as exc:
            raise AnalysisError(str(exc)) from None
        s = (re * re + im * im) / n
        self._kvecs, self._s_all = kv, s
        self._box = np.asarray(box, dtype=np.float64)
        self._s_bin, self._counts = bin_structure_factor(kv, s, self._bin_edges)
        self._k_mean = bin_structure_factor(kv, np.linalg.norm(kv, axis=1), self._bin_edges)[0]
        self._computed = True
        return self

    @property
    def method_used(self) -> str:
        """"direct" or "nufft": what ``method`` meant for this k set."""
        self._need("method_used")
        return self._method

    @property
    def bin_edges(self) -> np.ndarray:
        return self._bin_edges

    @property
    def bin_centers(self) -> np.ndarray:
        return 0.5 * (self._bin_edges[1:] + self._bin_edges[:-1])

    @property
    def k_mean(self) -> np.ndarray:
        """Mean |k| of the wave vectors in each bin, [bins] (NaN for empty bins): where a bin's S(k)
        belongs on a k axis (a bin's centre can be far from it when it holds a few shells)."""
        self._need("k_mean")
        return self._k_mean

    @property
    def S_k(self) -> np.ndarray:
        """Bin-averaged S(k), [bins] (NaN for empty bins)."""
        self._need("S_k")
        return self._s_bin

    @property
    def k_counts(self) -> np.ndarray:
        """Number of wave vectors in each bin."""
        self._need("k_counts")
        return self._counts

    @property
    def k_points(self) -> np.ndarray:
        """All summed wave vectors [nk, d]."""
        self._need("k_points")
        return self._kvecs

    @property
    def S_k_points(self) -> np.ndarray:
        """S at each wave vector [nk]."""
        self._need("S_k_points")
        return self._s_all

    @property
    def min_valid_k(self) -> float:
        """2 pi / min(L): the smallest non-zero |k| of the box."""
        self._need("min_valid_k")
        return float(TWO_PI / self._box.min())

    def exponent(self, k_fit_max: float = 1.0, k_fit_min: float | None = None):
        """alpha of S(k) ~ k^alpha over bins with k_fit_min <= k_mean <= k_fit_max: ``(alpha, err)``;
        each bin at its mean |k|, weighted by its number of wave vectors."""
        self._need("exponent")
        kmin = self.min_valid_k * (1 - 1e-9) if k_fit_min is None else k_fit_min
        ok = self._counts > 0
        a, e, _, _ = fit_power_law(self._k_mean[ok], self._s_bin[ok], kmin, k_fit_max, self._counts[ok])
        return a, e
