r"""Hyperuniformity measurements for the noise-model study (docs/analysis.md, "Hyperuniformity").

* small-k exponent alpha of S(k) ~ k^alpha (hyperuniform: alpha > 0; Poisson: alpha = 0), from the
  frame-averaged S(k) of each shell of equal |k| (:func:`analysis.structure_factor.shell_structure_factor`);
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

from mpisim.core.box import wrap_into_box
from mpisim.core.schemes import SCHEMES

from .activity import seed_mean
from .errors import AnalysisError, Computed
from .structure_factor import StructureFactor, fit_power_law, shell_structure_factor

#: the schemes with temporally correlated (memory) noise, as their modules declare (pgd, spgd)
NOISE_SCHEMES = tuple(name for name, s in SCHEMES.items() if s.noise == "memory")


class Hyperuniformity(Computed):
    """Frame-averaged S(k) on the shells of equal |k| and its small-k exponent alpha (freud-like:
    ``compute(...) -> self``).

    Each point is one shell of wave vectors k = 2 pi (n_1 / L_1, ...) with the same |k|, at that exact
    |k|; the fit S ~ k^alpha weights each shell by its number of wave vectors.

    Parameters
    ----------
    k_fit_max : float
        Largest |k| (inverse diameters) of the fit S ~ k^alpha.
    k_fit_min : float or None
        Smallest |k| of the fit (default: the smallest non-zero |k| of the box, 2 pi / L).
    k_max : float
        Largest |k| measured (for the figure; >= k_fit_max; default 4 k_fit_max).
    """

    def __init__(self, k_fit_max: float = 1.0, k_fit_min: float | None = None, k_max: float | None = None):
        self.k_fit_max = float(k_fit_max)
        self.k_fit_min = k_fit_min
        self.k_max = float(k_max) if k_max is not None else 4.0 * self.k_fit_max

    def compute(self, frames, box) -> "Hyperuniformity":
        """frames: sequence of position arrays [N, d] (one or more configurations of one run, or of
        independent runs) in the periodic box [d]."""
        box = np.asarray(box, dtype=np.float64)
        if len(frames) == 0:
            raise AnalysisError("hyperuniformity: no frames to average")
        curves = []
        for pos in frames:
            sf = StructureFactor(bins=1, k_max=self.k_max).compute(pos, box)
            k, s, counts, _ = shell_structure_factor(sf.k_points, sf.S_k_points)
            curves.append(s)
        curves = np.array(curves)
        self._k, self._counts = k, counts
        self._s = curves.mean(axis=0)
        self._s_err = (curves.std(axis=0, ddof=1) / math.sqrt(len(curves)) if len(curves) > 1
                       else np.full_like(self._s, np.nan))
        self._kmin = sf.min_valid_k if self.k_fit_min is None else float(self.k_fit_min)
        a, e, pref, n = fit_shells(self._k, self._s, counts, self._kmin, self.k_fit_max)
        self._alpha, self._alpha_err, self._prefactor, self._npts = a, e, pref, n
        self._computed = True
        return self

    @property
    def k(self) -> np.ndarray:
        """|k| of each shell [shells], ascending."""
        self._need("k")
        return self._k

    @property
    def k_counts(self) -> np.ndarray:
        """Number of wave vectors in each shell (half of them: S(-k) = S(k))."""
        self._need("k_counts")
        return self._counts

    @property
    def S_k(self) -> np.ndarray:
        """Frame-averaged S(k) of each shell [shells]."""
        self._need("S_k")
        return self._s

    @property
    def S_k_err(self) -> np.ndarray:
        """Standard error of S(k) over frames [shells] (NaN with one frame)."""
        self._need("S_k_err")
        return self._s_err

    @property
    def alpha(self) -> float:
        """Exponent of S(k) ~ k^alpha over [k_fit_min, k_fit_max]."""
        self._need("alpha")
        return self._alpha

    @property
    def alpha_err(self) -> float:
        """Standard error of alpha from the (mode-count weighted) fit residuals."""
        self._need("alpha_err")
        return self._alpha_err

    @property
    def prefactor(self) -> float:
        self._need("prefactor")
        return self._prefactor

    @property
    def fit_range(self) -> tuple:
        """(k_min, k_max, number of shells) of the fit."""
        self._need("fit_range")
        return self._kmin, self.k_fit_max, self._npts


def fit_shells(k, s, counts, k_fit_min, k_fit_max):
    """The fit S ~ k^alpha over the shells with k_fit_min <= |k| <= k_fit_max, each weighted by its number
    of wave vectors: ``(alpha, alpha_err, prefactor, shells)`` (:func:`fit_power_law`). k_fit_min is
    lowered by 1e-9 relative: the first shell's |k| equals 2 pi / L only up to rounding."""
    return fit_power_law(k, s, k_fit_min * (1 - 1e-9), k_fit_max, counts)


def fit_plateau(k, s, counts, k_fit_max):
    """Weighted least squares of S(k) = S0 + B k^2 over the shells with 0 < |k| <= k_fit_max (weights:
    the shells' numbers of wave vectors; the small-k form of a density noise ~ k^2 next to a reciprocal
    one ~ k^4, docs/results.md "Pair-noise correlation and long-range structure"); returns (S0, its
    standard error from the weighted residuals, B)."""
    k, s = np.asarray(k, dtype=np.float64), np.asarray(s, dtype=np.float64)
    m = (k > 0) & (k <= k_fit_max)
    x, y, w = k[m] ** 2, s[m], np.asarray(counts)[m].astype(float)
    if m.sum() < 2:
        raise AnalysisError(f"S0 + B k^2 fit needs >= 2 shells with |k| <= {k_fit_max}, have {int(m.sum())}")
    a = np.stack([np.ones_like(x), x], axis=1) * np.sqrt(w)[:, None]
    coef, *_ = np.linalg.lstsq(a, y * np.sqrt(w), rcond=None)
    resid = y - (coef[0] + coef[1] * x)
    dof = max(m.sum() - 2, 1)
    cov = np.linalg.inv(a.T @ a) * (w * resid ** 2).sum() / dof
    return float(coef[0]), float(math.sqrt(cov[0, 0])), float(coef[1])


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
    tree = cKDTree(wrap_into_box(pos, box), boxsize=box)
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


def number_variance_lambda(configurations, box, n_windows: int = 2000):
    """lambda of sigma^2(R) ~ R^lambda, ``(lambda, err)``, from the number variance averaged over
    ``configurations`` (position arrays [N, d] in the box [d]) at 8 radii from 2 to L/5 diameters
    (L the shortest edge; needs L > 10)."""
    radii = np.geomspace(2.0, 0.2 * float(np.min(box)), 8)
    var = np.mean([number_variance(x, box, radii, n_windows=n_windows)[1] for x in configurations], axis=0)
    return number_variance_exponent(radii, var)


def energy_per_scheme(records):
    """Mean final energy per scheme with its standard error over seeds.

    records: iterable of (scheme_label, energy) pairs, one per run. Returns {label: (mean, sem, n)}
    (sem NaN for a single run).
    """
    by = {}
    for label, e in records:
        by.setdefault(label, []).append(float(e))
    return {label: (*seed_mean(es), len(es)) for label, es in by.items()}


def speed_squared(unwrapped_frames):
    """Mean over particles of |x_k - x_{k-1}|^2 between consecutive frames [F, N, d] -> [F - 1]."""
    x = np.asarray(unwrapped_frames, dtype=np.float64)
    return np.sum(np.diff(x, axis=0) ** 2, axis=2).mean(axis=1)


def draw_hyperuniformity(ax, curves):
    """Draw S(k) (log-log, with seed/frame error bars) and the fitted k^alpha line of each curve on ``ax``.

    curves: {label: Hyperuniformity (computed)}.
    """
    for label, hu in curves.items():
        kmin, kmax, _ = hu.fit_range
        fit = (hu.k <= kmax) & (hu.S_k > 0)     # shells of the fit with error bars, the rest as dots
        err = np.nan_to_num(hu.S_k_err[fit])
        line = ax.errorbar(hu.k[fit], hu.S_k[fit], yerr=np.minimum(err, 0.99 * hu.S_k[fit]), fmt="o", ms=3,
                           lw=0.8, label=f"{label}: $\\alpha$ = {hu.alpha:.2f} $\\pm$ {hu.alpha_err:.2f}")[0]
        rest = (hu.k > kmax) & (hu.S_k > 0)
        ax.plot(hu.k[rest], hu.S_k[rest], ".", ms=2, color=line.get_color(), alpha=0.5)
        kk = np.geomspace(kmin, kmax, 20)
        ax.plot(kk, hu.prefactor * kk ** hu.alpha, "-", color=line.get_color(), lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"wave number $k$ (1/(2R))")
    ax.set_ylabel(r"structure factor $S(k)$")


def plot_hyperuniformity(curves, path, title="S(k) at small k"):
    """Figure of S(k) for several runs with their fitted power laws.

    curves: {label: Hyperuniformity (computed)}; path: output file (.png/.pdf). Returns path.
    """
    from matplotlib.figure import Figure
    fig = Figure(figsize=(5.0, 4.0))
    ax = fig.subplots()
    draw_hyperuniformity(ax, curves)
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    return path


# ---- run collections (the `analysis figures --which hyperuniformity` figure) --------------------

def noise_of(run) -> tuple:
    """``(temporal_correlation c_t, spatial_correlation)`` of a run, from ``/parameters`` [dynamics]."""
    dyn = run.config.get("dynamics", {})
    return float(dyn.get("temporal_correlation", 0.0)), str(dyn.get("spatial_correlation", "independent"))


def default_k_fit_max(box) -> float:
    """Fit range end: 0.5 inverse diameters (beyond it S(k) bends away from k^2 in the pgd runs,
    docs/algorithms.md), but at least 4 x 2 pi / L so that a small box still gives a few shells."""
    return max(0.5, 4 * 2 * math.pi / float(np.min(box)))


def hyperuniformity_groups(runs, k_fit_max: float | None = None, max_frames: int = 5,
                           n_windows: int = 2000) -> list:
    """S(k), alpha, number variance and final energy per group of pgd/spgd runs.

    Runs are grouped by (scheme, dim, N, phi, learning rate, noise amplitude, temporal_correlation,
    spatial_correlation); other schemes and runs without snapshots are left out. S(k) is averaged over
    the last ``max_frames`` snapshots of every seed that lie in the second half of its run (step >=
    half the last snapshot's step). lambda (sigma^2(R) ~ R^lambda) is fitted to the number variance of
    the seeds' last snapshots (averaged), radii 2 .. L/5 diameters (NaN if L < 12). Returns a list of
    dicts with ``label``, ``hu`` (:class:`Hyperuniformity`) and the scalar results.
    """
    groups: dict = {}
    for r in runs:
        p = r.params
        if p.scheme not in NOISE_SCHEMES or not r.has_positions:
            continue
        dyn = r.config.get("dynamics", {})
        ct, spatial = noise_of(r)
        key = (p.scheme, p.dim, p.n, p.phi, p.learning_rate, float(dyn.get("noise_amplitude", 0.0)), ct, spatial)
        groups.setdefault(key, []).append(r)
    if not groups:
        raise AnalysisError("hyperuniformity: no pgd/spgd runs with position snapshots "
                            f"(schemes {', '.join(NOISE_SCHEMES)}; set output.snapshot_every or keep the final frame)")
    several = len({(k[1], k[2], k[3], k[4], k[5]) for k in groups}) > 1
    out = []
    for key in sorted(groups, key=lambda k: (k[0], k[1], k[2], k[3], k[4] or 0, k[5], -abs(k[6]), k[7])):
        scheme, dim, n, phi, lr, sigma, ct, spatial = key
        members = groups[key]
        frames, lasts, box = [], [], members[0].box
        for r in members:
            steps = r.frame_steps
            idx = [i for i in range(steps.size) if steps[i] >= steps[-1] / 2][-max_frames:]
            frames += [r.positions(i) for i in idx]
            lasts.append(frames[-1])                 # idx always ends at the last snapshot
        kfm = k_fit_max if k_fit_max is not None else default_k_fit_max(box)
        hu = Hyperuniformity(k_fit_max=kfm).compute(frames, box)
        lam = lam_err = math.nan
        if float(np.min(box)) >= 12.0:
            lam, lam_err = number_variance_lambda(lasts, box, n_windows=n_windows)
        energies = []
        for r in members:
            if "energy" in r.observables:
                energies.append(float(r.observable("energy")[1][-1]) / n)
        e_mean, e_sem = seed_mean(energies)
        kind = "correlated" if (ct != 0.0 or spatial != "independent") else "uncorrelated"
        label = f"{scheme} {kind} (c_t = {ct:g}, {spatial})"
        if several:
            label += f", phi = {phi:g}, N = {n}, lr = {lr:g}, sigma = {sigma:g}"
        kmin, kmax, npts = hu.fit_range
        out.append({"label": label, "hu": hu, "scheme": scheme, "dim": dim, "n": n, "phi": phi,
                    "learning_rate": lr, "noise_amplitude": sigma, "temporal_correlation": ct,
                    "spatial_correlation": spatial, "correlated": kind == "correlated",
                    "n_runs": len(members), "n_frames": len(frames), "alpha": hu.alpha,
                    "alpha_err": hu.alpha_err, "k_fit_min": kmin, "k_fit_max": kmax, "fit_shells": npts,
                    "lambda": lam, "lambda_err": lam_err, "energy_per_particle": e_mean,
                    "energy_per_particle_sem": e_sem})
    return out
