r"""Hyperuniformity measurements for the noise-model study (docs/analysis.md, "Hyperuniformity").

* small-k exponent alpha of S(k) ~ k^alpha (hyperuniform: alpha > 0; Poisson: alpha = 0), from the
  frame-averaged S(k) of :class:`analysis.structure_factor.StructureFactor`;
* number variance sigma^2(R) of the count in spherical windows of radius R thrown uniformly in the periodic
  box, and its exponent lambda of sigma^2 ~ R^lambda (Poisson: lambda = d; hyperuniform with alpha > 1:
  lambda = d - 1, surface scaling);
* per-scheme mean final energy with its standard error over seeds;
* instantaneous speed |x_k - x_{k-1}|^2 between consecutive frames (momentum runs, seed paper 002).

Serial; numpy/scipy only (never MPI).

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(1)
>>> box = np.array([60.0, 60.0])
>>> hu = Hyperuniformity(k_fit_max=1.5).compute([rng.random((3600, 2)) * box], box)
>>> bool(abs(np.nanmean(hu.S_k) - 1.0) < 0.1)       # Poisson points: S(k) = 1
True
"""
from __future__ import annotations

import math

import numpy as np

from .structure_factor import StructureFactor, fit_power_law


class NotComputedError(RuntimeError):
    """A result property was read before compute()."""


class Hyperuniformity:
    """Frame-averaged S(k) at small k and its exponent alpha (freud-like: ``compute(...) -> self``).

    Parameters
    ----------
    k_fit_max : float
        Largest |k| (inverse diameters) of the fit S ~ k^alpha.
    k_fit_min : float or None
        Smallest |k| of the fit (default: the smallest non-zero |k| of the box, 2 pi / L).
    bins : int
        Number of |k| bins between 0 and k_max.
    k_max : float
        Largest |k| binned (for the figure; >= k_fit_max).
    """

    def __init__(self, k_fit_max: float = 1.0, k_fit_min: float | None = None, bins: int | None = None,
                 k_max: float | None = None):
        self.k_fit_max = float(k_fit_max)
        self.k_fit_min = k_fit_min
        self.k_max = float(k_max) if k_max is not None else 4.0 * self.k_fit_max
        self.bins = bins
        self._done = False

    def compute(self, frames, box) -> "Hyperuniformity":
        """frames: sequence of position arrays [N, d] (one or more configurations of one run, or of
        independent runs) in the periodic box [d]."""
        box = np.asarray(box, dtype=np.float64)
        dk = 2 * math.pi / box.min()
        bins = self.bins if self.bins is not None else max(4, int(round(self.k_max / dk)))
        curves = []
        sf = None
        for pos in frames:
            sf = StructureFactor(bins=bins, k_max=self.k_max, k_min=0.5 * dk).compute(pos, box)
            curves.append(sf.S_k)
        curves = np.array(curves)
        self._k = sf.bin_centers
        self._s = np.nanmean(curves, axis=0)
        self._s_err = (np.nanstd(curves, axis=0, ddof=1) / math.sqrt(len(curves)) if len(curves) > 1
                       else np.full_like(self._s, np.nan))
        self._kmin = dk if self.k_fit_min is None else float(self.k_fit_min)
        ok = np.isfinite(self._s)
        a, e, pref, n = fit_power_law(self._k[ok], self._s[ok], self._kmin, self.k_fit_max)
        self._alpha, self._alpha_err, self._prefactor, self._npts = a, e, pref, n
        self._done = True
        return self

    def _need(self, name):
        if not self._done:
            raise NotComputedError(f"Hyperuniformity.{name}: call compute() first")

    @property
    def k(self) -> np.ndarray:
        """Bin centres |k| [bins]."""
        self._need("k")
        return self._k

    @property
    def S_k(self) -> np.ndarray:
        """Frame-averaged S(k) [bins] (NaN for empty bins)."""
        self._need("S_k")
        return self._s

    @property
    def S_k_err(self) -> np.ndarray:
        """Standard error of S(k) over frames [bins] (NaN with one frame)."""
        self._need("S_k_err")
        return self._s_err

    @property
    def alpha(self) -> float:
        """Exponent of S(k) ~ k^alpha over [k_fit_min, k_fit_max]."""
        self._need("alpha")
        return self._alpha

    @property
    def alpha_err(self) -> float:
        """Standard error of alpha from the fit residuals."""
        self._need("alpha_err")
        return self._alpha_err

    @property
    def prefactor(self) -> float:
        self._need("prefactor")
        return self._prefactor

    @property
    def fit_range(self) -> tuple:
        """(k_min, k_max, number of bins) of the fit."""
        self._need("fit_range")
        return self._kmin, self.k_fit_max, self._npts


def number_variance(positions, box, radii, n_windows: int = 2000, seed: int = 0):
    """Variance of the number of particles in spherical windows of each radius R (periodic box).

    Parameters
    ----------
    positions : array [N, d]
    box : array [d]
    radii : array [m]
        Window radii R (< min(box) / 2).
    n_windows : int
        Window centres per radius, uniform in the box (a fixed seed: reproducible).

    Returns
    -------
    (mean, variance) : arrays [m]
    """
    from scipy.spatial import cKDTree
    pos = np.asarray(positions, dtype=np.float64)
    box = np.asarray(box, dtype=np.float64)
    radii = np.asarray(radii, dtype=np.float64)
    if radii.max() >= 0.5 * box.min():
        raise ValueError(f"window radius {radii.max()} must be < half the box edge {0.5 * box.min()}")
    tree = cKDTree(np.mod(pos, box), boxsize=box)
    rng = np.random.default_rng(seed)
    mean = np.empty(len(radii))
    var = np.empty(len(radii))
    for m, R in enumerate(radii):
        centres = rng.random((n_windows, pos.shape[1])) * box
        counts = tree.query_ball_point(centres, R, return_length=True)
        mean[m] = counts.mean()
        var[m] = counts.var(ddof=1)
    return mean, var


def number_variance_exponent(radii, variance, r_min=None, r_max=None):
    """lambda of sigma^2(R) ~ R^lambda: ``(lambda, err)`` (Poisson d, hyperuniform (alpha > 1) d - 1)."""
    lam, err, _, _ = fit_power_law(radii, variance, r_min, r_max)
    return lam, err


def energy_per_scheme(records):
    """Mean final energy per scheme with its standard error over seeds.

    records: iterable of (scheme_label, energy) pairs, one per run. Returns {label: (mean, sem, n)}
    (sem NaN for a single run).
    """
    by = {}
    for label, e in records:
        by.setdefault(label, []).append(float(e))
    out = {}
    for label, es in by.items():
        es = np.asarray(es)
        sem = es.std(ddof=1) / math.sqrt(len(es)) if len(es) > 1 else math.nan
        out[label] = (float(es.mean()), float(sem), len(es))
    return out


def speed_squared(unwrapped_frames):
    """Mean over particles of |x_k - x_{k-1}|^2 between consecutive frames [F, N, d] -> [F - 1]."""
    x = np.asarray(unwrapped_frames, dtype=np.float64)
    return np.sum(np.diff(x, axis=0) ** 2, axis=2).mean(axis=1)


def plot_hyperuniformity(curves, path, title="S(k) at small k"):
    """Figure of S(k) for several runs with their fitted power laws.

    curves: {label: Hyperuniformity (computed)}; path: output file (.png/.pdf). Returns path.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.0, 4.0))
    for label, hu in curves.items():
        ok = np.isfinite(hu.S_k) & (hu.S_k > 0)
        line, = ax.loglog(hu.k[ok], hu.S_k[ok], "o", ms=3,
                          label=f"{label}: $\\alpha$ = {hu.alpha:.2f} $\\pm$ {hu.alpha_err:.2f}")
        kmin, kmax, _ = hu.fit_range
        kk = np.geomspace(kmin, kmax, 20)
        ax.loglog(kk, hu.prefactor * kk ** hu.alpha, "-", color=line.get_color(), lw=1)
    ax.set_xlabel("k (1 / diameter)")
    ax.set_ylabel("S(k)")
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path
