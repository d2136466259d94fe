r"""Finite-size scaling: a maintained implementation of pyfssa, plus the fits the paper needs.

pyfssa 0.7.6 (A. Sorge, Zenodo 2015; the paper's ref. [58]) no longer imports with numpy 2 and
current scipy. This module keeps its public functions, arguments and conventions:

* :func:`scaledata` ``(l, rho, a, da, rho_c, nu, zeta) -> ScaledData(x, y, dy)`` with
  ``x = L^{1/nu} (rho - rho_c)``, ``y = L^{-zeta/nu} a``, ``dy = L^{-zeta/nu} da``;
  ``a`` and ``da`` have shape ``(l.size, rho.size)``.
* :func:`quality` ``(x, y, dy) -> float``: the Houdayer & Hartmann reduced chi-square of the
  collapse onto a master curve estimated from the data themselves (the quality function of
  Melchert's autoScale, arXiv:0910.5403): for each point, the two bracketing points of every
  *other* size are fitted by a weighted line, and S is the mean over sizes of the mean over each
  size's points of ``(y - Y)^2 / (dy^2 + dY^2)`` (pyfssa's order of averaging).
* :func:`autoscale` ``(l, rho, a, da, rho_c0, nu0, zeta0) -> OptimizeResult`` with fields
  ``rho, nu, zeta, drho, dnu, dzeta, fun, success`` (and ``x, errors, varco``): Nelder-Mead on S,
  errors from the curvature of S at its minimum, estimated from the final simplex and its
  midpoints as in Nelder & Mead (1965) (``varco = 2 S_min H^{-1}``, H the Hessian of S).

``quality`` equals pyfssa's to 1e-10 and ``autoscale`` returns pyfssa's optimum, errors, covariance
and number of evaluations (``tests/analysis/test_analysis_pyfssa.py`` runs the real package under a
compatibility shim). Departures, all where pyfssa would fail: NaN points are allowed (below), a
vertex that never moves S by 0.01 gives NaN errors instead of an endless loop.

Extension: entries of ``a`` that are NaN (or whose ``da`` is NaN or not positive) are treated as
missing points, so that sizes may be measured at different packing fractions.

On top, for the paper (Fig. 3, S3):

* :data:`MANNA`: Manna-class (conserved directed percolation) exponents. 3d: beta = 0.84,
  nu_par = 1.08, nu_perp = 0.59 (paper, after Fig. 3, from Henkel, Hinrichsen & Luebeck, the
  paper's ref. [57]). 2d: beta = 0.639, nu_par = 1.225, nu_perp = 0.799 (S. Luebeck, Int. J. Mod.
  Phys. B 18, 3977 (2004), Table for the Manna universality class; also Henkel, Hinrichsen &
  Luebeck, *Non-Equilibrium Phase Transitions* Vol. 1 (Springer 2008), Table 4.3).
* :func:`observable_exponents`: pyfssa's (nu, zeta) for the steady-state activity
  (f_inf ~ L^{-beta/nu_perp} F(L^{1/nu_perp}(phi - phi_c)): nu = nu_perp, zeta = -beta) and for the
  relaxation time (tau_r ~ L^{nu_par/nu_perp} G(...): nu = nu_perp, zeta = nu_par), with L = N^{1/d}.
* :func:`fit_critical_point`: phi_c alone, exponents held fixed; its error from the curvature of S,
  or, where that fails (optimum at an end of the range, S'' <= 0), from the width of the S minimum,
  with a flag for an optimum at the boundary (docs/analysis.md, "Error of phi_c"); never NaN.
* :class:`Collapse`: builds the (L, phi) grid from an :class:`~analysis.activity.ActivityTable`
  and fits phi_c (Manna exponents fixed) or all three parameters.

Examples
--------
>>> import numpy as np
>>> l = np.array([10.0, 20.0, 40.0])
>>> rho = np.linspace(0.9, 1.1, 21)
>>> lm, rm = np.meshgrid(l, rho, indexing="ij")
>>> a = lm ** (0.5 / 2.0) / (1 + np.exp(-lm ** 0.5 * (rm - 1.0)))   # rho_c=1, nu=2, zeta=0.5
>>> da = 0.01 * a
>>> res = autoscale(l, rho, a, da, rho_c0=0.98, nu0=1.8, zeta0=0.4)
>>> bool(res.success), round(res.rho, 2), round(res.nu, 1), round(res.zeta, 1)
(True, 1.0, 2.0, 0.5)
"""
from __future__ import annotations

import math
from collections import namedtuple
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.optimize
from scipy.optimize import OptimizeResult

from .errors import AnalysisError, CollapseError, NotComputedError


class ScaledData(namedtuple("ScaledData", ["x", "y", "dy"])):
    """:func:`scaledata` output: scaled ``x``, ``y`` and errors ``dy``, each ``(l.size, rho.size)``."""

    __slots__ = ()


@dataclass(frozen=True)
class MannaExponents:
    """Critical exponents of the Manna (conserved directed percolation) class."""

    beta: float
    nu_par: float
    nu_perp: float
    source: str

    @property
    def z(self) -> float:
        """Dynamical exponent z = nu_par / nu_perp."""
        return self.nu_par / self.nu_perp


MANNA = {
    3: MannaExponents(0.84, 1.08, 0.59,
                      "paper 000 (Fig. 3 caption), Henkel, Hinrichsen & Luebeck (2008)"),
    2: MannaExponents(0.639, 1.225, 0.799,
                      "S. Luebeck, Int. J. Mod. Phys. B 18, 3977 (2004); Henkel, Hinrichsen & "
                      "Luebeck, Non-Equilibrium Phase Transitions Vol. 1 (2008), Table 4.3"),
    # At and above the upper critical dimension d_c = 4 the class is mean-field (beta = 1, nu_par = 1,
    # nu_perp = 1/2); at d = 4 itself with logarithmic corrections, which a collapse with these pure
    # powers ignores (paper 000's conjecture, issue 17).
    **{d: MannaExponents(1.0, 1.0, 0.5, "mean field, d >= d_c = 4 (logarithmic corrections at d = 4); "
                         "Luebeck, Int. J. Mod. Phys. B 18, 3977 (2004)") for d in (4, 5, 6)},
}

#: observables that can be collapsed
QUANTITIES = ("f_inf", "tau_r")
#: the largest collapse quality S (pyfssa's measure: about 1 when the scaled curves agree within their
#: errors) at which an optimum inside the range is a value: S = 10 means the curves miss each other by
#: about three errors on average; decision of 2026-12-06, docs/analysis.md "A phi_c that does not
#: collapse the data is no measurement"
MAX_QUALITY = 10.0


def manna(dim: int) -> MannaExponents:
    """Manna exponents in ``dim`` = 2 to 6 dimensions (mean field from d = 4)."""
    if dim not in MANNA:
        raise AnalysisError(f"no Manna exponents tabulated for d = {dim} (have {', '.join(map(str, sorted(MANNA)))})")
    return MANNA[dim]


def observable_exponents(quantity: str, dim: int) -> tuple[float, float]:
    """pyfssa's ``(nu, zeta)`` for ``quantity`` in {"f_inf", "tau_r"} with Manna exponents."""
    m = manna(dim)
    if quantity == "f_inf":
        return m.nu_perp, -m.beta
    if quantity == "tau_r":
        return m.nu_perp, m.nu_par
    raise AnalysisError(f"unknown quantity {quantity!r}: choose from {', '.join(QUANTITIES)}")


def scaledata(l, rho, a, da, rho_c, nu, zeta) -> ScaledData:
    """Scale finite-size data (pyfssa's ``scaledata``; see the module doc).

    Parameters
    ----------
    l, rho : 1-d array_like
        System sizes L and parameter values rho.
    a, da : 2-d array_like, shape (l.size, rho.size)
        Data and standard errors (NaN marks a missing point).
    rho_c : float in [rho.min(), rho.max()]
    nu, zeta : float
    """
    l = np.asarray(l, dtype=np.float64)
    rho = np.asarray(rho, dtype=np.float64)
    a = np.asarray(a, dtype=np.float64)
    da = np.asarray(da, dtype=np.float64)
    if l.ndim != 1:
        raise ValueError("l should be 1-D array_like")
    if rho.ndim != 1:
        raise ValueError("rho should be 1-D array_like")
    if a.ndim != 2 or a.shape != (l.size, rho.size):
        raise ValueError("a should have shape (l.size, rho.size)")
    if da.ndim != 2 or da.shape != (l.size, rho.size):
        raise ValueError("da should have shape (l.size, rho.size)")
    valid = np.isfinite(a) & np.isfinite(da)
    if not np.all(da[valid] > 0.0):
        raise ValueError("da should have only positive values")
    rho_c, nu, zeta = float(rho_c), float(nu), float(zeta)
    if rho_c > rho.max() or rho_c < rho.min():
        raise ValueError("rho_c is out of range")
    lm, rm = np.meshgrid(l, rho, indexing="ij")
    x = np.power(lm, 1.0 / nu) * (rm - rho_c)
    y = np.power(lm, -zeta / nu) * a
    dy = np.power(lm, -zeta / nu) * da
    return ScaledData(x, y, dy)


def quality(x, y, dy) -> float:
    """Quality S of a data collapse (pyfssa's ``quality``; Houdayer & Hartmann 2004).

    ``S = mean_i [ mean_j (y_ij - Y_ij)^2 / (dy_ij^2 + dY_ij^2) ]``: the mean over the points of each
    system size i that have a master-curve estimate Y_ij, then the mean over sizes (pyfssa 0.7.6 does
    exactly this, ``nanmean(nanmean(..., axis=1))``; equal to it to rounding, tested against the
    package). S is about 1 for a good collapse and much larger otherwise; NaN points are ignored.
    Returns ``inf`` if no point has a master-curve estimate (the sizes' scaled ranges do not overlap).
    """
    size_means = [float(term[good].mean()) for term, good in _master_curve_terms(x, y, dy) if good.any()]
    if not size_means:
        return math.inf
    # pyfssa: the mean within each system size first, then the mean over sizes
    return float(np.mean(size_means))


def scaled_overlap(x, y, dy) -> np.ndarray:
    """Per system size, how many of its points have a master-curve estimate (lie inside another size's
    scaled range) and how many it has: shape (sizes, 2). Only these points enter :func:`quality`."""
    return np.array([(int(good.sum()), good.size) for _, good in _master_curve_terms(x, y, dy)], dtype=int)


def _master_curve_terms(x, y, dy) -> list:
    """Per system size i, over its valid points j: ``(term, good)`` with term = (y_ij - Y_ij)^2 /
    (dy_ij^2 + dY_ij^2) and good where Y_ij exists (Houdayer & Hartmann's weighted line through the
    other sizes' neighbouring points, as pyfssa and Melchert's autoScale)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    dy = np.asarray(dy, dtype=np.float64)
    for name, arr in (("x", x), ("y", y), ("dy", dy)):
        if arr.ndim != 2:
            raise ValueError(f"{name} should be 2-D array_like")
    if not x.shape == y.shape == dy.shape:
        raise ValueError("arguments should be of same shape")
    valid = np.isfinite(x) & np.isfinite(y) & np.isfinite(dy) & (dy > 0)
    rows = []
    for i in range(x.shape[0]):
        v = valid[i]
        xi = x[i, v]
        if xi.size > 1 and np.any(np.diff(xi) < 0):
            raise ValueError("x should be sorted for each system size")
        w = dy[i, v] ** -2.0
        rows.append((xi, y[i, v], dy[i, v], w))
    terms = []
    for i, (xi, yi, dyi, _) in enumerate(rows):
        sw = np.zeros(xi.size)
        swx = np.zeros(xi.size)
        swy = np.zeros(xi.size)
        swxx = np.zeros(xi.size)
        swxy = np.zeros(xi.size)
        used = np.zeros(xi.size, dtype=bool)
        for ip, (xp, yp, _, wp) in enumerate(rows):
            if ip == i or xp.size < 2 or xi.size == 0:
                continue
            jp = np.searchsorted(xp, xi, side="right") - 1
            ok = (jp >= 0) & (jp < xp.size - 1)
            if not ok.any():
                continue
            for off in (0, 1):
                j = jp[ok] + off
                sw[ok] += wp[j]
                swx[ok] += wp[j] * xp[j]
                swy[ok] += wp[j] * yp[j]
                swxx[ok] += wp[j] * xp[j] ** 2
                swxy[ok] += wp[j] * xp[j] * yp[j]
            used |= ok
        delta = sw * swxx - swx ** 2
        with np.errstate(divide="ignore", invalid="ignore"):
            m = (sw * swxy - swx * swy) / delta
            b = (swxx * swy - swx * swxy) / delta
            ym = b + m * xi
            dym2 = (swxx - 2.0 * swx * xi + sw * xi ** 2) / delta
            term = (yi - ym) ** 2 / (dyi ** 2 + dym2)
        terms.append((term, used & np.isfinite(term) & (delta > 0)))
    return terms


def _curvature_errors(fun, sim: np.ndarray, fsim: np.ndarray, min_df: float = 0.01,
                      max_doublings: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Standard errors and covariance from the curvature of ``fun`` near the simplex ``sim``.

    pyfssa's ``_neldermead_errors``, step for step: each vertex is pushed away from the centroid
    (doubling its distance) until its value differs from the centroid's by at least ``min_df``; a
    quadratic through the vertices and edge midpoints (Nelder & Mead 1965, appendix) gives the
    Hessian, and ``varco = S_min q B^{-1} q^T`` with S_min the best value of the *final* simplex and
    q its edges from vertex 0 (= 2 S_min H^{-1}). Departure: pyfssa doubles without limit (it hangs
    where S is flat along a direction); here after ``max_doublings`` the errors are NaN.
    """
    sim = np.array(sim, dtype=np.float64)
    fsim = np.array(fsim, dtype=np.float64)
    n = sim.shape[1]
    ymin = fsim[0]
    centroid = sim.mean(axis=0)
    fc = fun(centroid)
    for i in range(n + 1):
        for _ in range(max_doublings):
            if abs(fsim[i] - fc) >= min_df:
                break
            sim[i] = sim[i] + (sim[i] - centroid)
            fsim[i] = fun(sim[i])
        else:
            return np.full(n, np.nan), np.full((n, n), np.nan)
    # y[i, j]: value at the midpoint of vertices i and j (y[i, i] at the vertex)
    y = np.empty((n + 1, n + 1))
    for i in range(n + 1):
        y[i, i] = fsim[i]
        for j in range(i + 1, n + 1):
            y[i, j] = y[j, i] = fun(0.5 * (sim[i] + sim[j]))
    # quadratic in simplex coordinates: B_ij = 2 (y_ij + y_00 - y_0i - y_0j), Hessian = 2 B
    b = 2.0 * (y[1:, 1:] + y[0, 0] - y[0, 1:][:, None] - y[0, 1:][None, :])
    q = (sim[1:] - sim[0]).T  # columns: edges from vertex 0
    try:
        binv = np.linalg.inv(b)
    except np.linalg.LinAlgError:
        return np.full(n, np.nan), np.full((n, n), np.nan)
    varco = ymin * q @ binv @ q.T
    with np.errstate(invalid="ignore"):
        errors = np.sqrt(np.diag(varco))
    return errors, varco


def autoscale(l, rho, a, da, rho_c0, nu0, zeta0, **kwargs) -> OptimizeResult:
    """Fit rho_c, nu and zeta by minimizing the collapse :func:`quality` (pyfssa's ``autoscale``).

    Nelder-Mead from pyfssa's initial simplex (5% steps, 0.00025 for a zero coordinate) with its
    tolerances (``xatol = fatol = 1e-2``), on the same goal (rho_c may leave the data range, as in
    pyfssa, where ``scaledata`` only warns), then pyfssa's curvature errors: the optimum and errors
    equal pyfssa 0.7.6's (tested against the package).

    Returns
    -------
    scipy.optimize.OptimizeResult
        ``x == [rho, nu, zeta]``, ``errors == [drho, dnu, dzeta]``, ``varco``, ``fun`` (S at the
        minimum), ``success``, plus the fields ``rho, nu, zeta, drho, dnu, dzeta``, and
        ``at_boundary`` ("lower"/"upper" when rho lies outside the data range [rho.min(), rho.max()]
        or within ``drho`` of an end: phi_c is then only bounded, see :func:`phi_c_status`).
        ``kwargs`` are passed as Nelder-Mead options.
    """
    l = np.asarray(l, dtype=np.float64)
    rho = np.asarray(rho, dtype=np.float64)
    a = np.asarray(a, dtype=np.float64)
    da = np.asarray(da, dtype=np.float64)
    scaledata(l, rho, a, da, float(np.nanmin(rho)), nu0, zeta0)  # validate shapes and errors
    lo, hi = float(np.nanmin(rho)), float(np.nanmax(rho))
    lm, rm = np.meshgrid(l, rho, indexing="ij")

    def goal(p):
        if p[1] == 0:
            return math.inf
        lp = np.power(lm, -p[2] / p[1])
        return quality(np.power(lm, 1.0 / p[1]) * (rm - p[0]), lp * a, lp * da)

    options = {"xatol": 1e-2, "fatol": 1e-2}
    options.update(kwargs)
    x0 = np.array([rho_c0, nu0, zeta0], dtype=np.float64)
    sim0 = [x0]
    for k in range(3):
        y = x0.copy()
        y[k] = y[k] * 1.05 if y[k] != 0 else 0.00025
        sim0.append(y)
    options.setdefault("initial_simplex", np.array(sim0))
    ret = scipy.optimize.minimize(goal, x0, method="Nelder-Mead", options=options)
    sim, fsim = ret.final_simplex
    if np.isfinite(ret.fun):
        errors, varco = _curvature_errors(goal, sim, fsim)
    else:
        errors, varco = np.full(3, np.nan), np.full((3, 3), np.nan)
    ret["success"] = bool(ret.success and np.isfinite(ret.fun))
    ret["errors"], ret["varco"] = errors, varco
    ret["rho"], ret["nu"], ret["zeta"] = (float(v) for v in ret.x)
    ret["drho"], ret["dnu"], ret["dzeta"] = (float(v) for v in errors)
    ret["bounds"] = (lo, hi)
    d = ret["drho"] if np.isfinite(ret["drho"]) else 0.0
    ret["at_boundary"] = ",".join(side for side, out in (("lower", ret["rho"] - d <= lo),
                                                         ("upper", ret["rho"] + d >= hi)) if out)
    return ret


def _delta_s_halfwidth(grid, vals, rc, smin, rise):
    """Crossings of S = smin + rise on each side of ``rc`` (linear interpolation on the scan ``grid``):
    ``(left, right)``, None for a side where S stays below within the scanned range."""
    target = smin + rise
    left = right = None
    for j in range(int(np.searchsorted(grid, rc, side="right")), grid.size):
        if np.isfinite(vals[j]) and vals[j] >= target:
            x0, y0 = (grid[j - 1], vals[j - 1]) if j > 0 and grid[j - 1] >= rc else (rc, smin)
            y0 = y0 if np.isfinite(y0) else smin
            right = x0 + (grid[j] - x0) * (target - y0) / (vals[j] - y0) if vals[j] > y0 else grid[j]
            break
    for j in range(int(np.searchsorted(grid, rc, side="left")) - 1, -1, -1):
        if np.isfinite(vals[j]) and vals[j] >= target:
            x0, y0 = (grid[j + 1], vals[j + 1]) if j + 1 < grid.size and grid[j + 1] <= rc else (rc, smin)
            y0 = y0 if np.isfinite(y0) else smin
            left = x0 - (x0 - grid[j]) * (target - y0) / (vals[j] - y0) if vals[j] > y0 else grid[j]
            break
    return left, right


def fit_critical_point(l, rho, a, da, nu, zeta, rho_c0=None, n_grid: int = 201,
                       bounds: tuple | None = None) -> OptimizeResult:
    """Fit rho_c alone with the exponents ``nu``, ``zeta`` held fixed.

    S(rho_c) is scanned on ``n_grid`` points over ``bounds`` (default [rho.min(), rho.max()], pyfssa's
    range; S is not smooth, so a local search alone can stop in a side minimum), refined by a bounded
    scalar minimization around the best grid point (or around ``rho_c0`` if given and within range).

    Error ``drho`` (field ``drho_method``):

    The *error interval* is the interval around the optimum where ``S <= S_min + max(S_min, 1)``,
    read off the scan (for a parabola its half-width equals the curvature error below; for a good
    collapse, S_min ~ 1, it is Melchert's "S rises by 1").

    * ``"curvature"`` (the interval lies inside the range and S'' > 0): ``sqrt(2 S_min / S'')`` with
      S'' from a central difference whose step is grown until S rises by at least 0.01, the same rule
      as :func:`autoscale`;
    * ``"delta_s"`` (the interval lies inside but the curvature is not usable, S'' <= 0): half the
      interval's width;
    * ``"delta_s_one_sided"`` (the interval reaches one end of the range): the distance from the
      optimum to its other end;
    * ``"range"`` (S stays below the level over the whole range): phi_c is not determined; ``drho`` is
      the distance to the farther end.

    ``at_boundary`` is "lower" or "upper" ("lower,upper" for both) when the error interval reaches that
    end of ``bounds``: the data cannot exclude phi_c there and the true minimum may lie beyond it.

    Returns an ``OptimizeResult`` with the fields of :func:`autoscale` (``dnu = dzeta = 0``) plus
    ``drho_method``, ``at_boundary``, ``bounds``, ``grid`` and ``grid_quality``.
    """
    rho = np.asarray(rho, dtype=np.float64)
    lo, hi = (float(np.nanmin(rho)), float(np.nanmax(rho))) if bounds is None else map(float, bounds)
    if not hi > lo:
        raise CollapseError(f"collapse undefined: empty phi_c range [{lo}, {hi}]")

    # y and dy do not depend on rho_c; x is scaled here so that rho_c may leave the data range
    _, y, dy = scaledata(l, rho, a, da, float(rho.min()), nu, zeta)
    lm, rm = np.meshgrid(np.asarray(l, dtype=np.float64), rho, indexing="ij")
    lscale = np.power(lm, 1.0 / nu)

    def goal(rc):
        rc = float(np.clip(rc, lo, hi))
        return quality(lscale * (rm - rc), y, dy)

    grid = np.linspace(lo, hi, n_grid)
    vals = np.array([goal(g) for g in grid])
    if not np.any(np.isfinite(vals)):
        raise CollapseError("collapse undefined: the sizes' scaled ranges never overlap")
    i = int(np.nanargmin(np.where(np.isfinite(vals), vals, np.nan)))
    if rho_c0 is not None and lo <= rho_c0 <= hi:
        i0 = int(np.argmin(np.abs(grid - rho_c0)))
        if np.isfinite(vals[i0]) and vals[i0] <= vals[i] * 1.0:
            i = i0
    a_, b_ = grid[max(i - 1, 0)], grid[min(i + 1, n_grid - 1)]
    res = scipy.optimize.minimize_scalar(goal, bounds=(a_, b_), method="bounded",
                                         options={"xatol": 1e-6 * (hi - lo)})
    rc, smin = (float(res.x), float(res.fun)) if res.fun <= vals[i] else (float(grid[i]), float(vals[i]))
    half_step = 0.5 * (hi - lo) / (n_grid - 1)
    left, right = _delta_s_halfwidth(grid, vals, rc, smin, max(smin, 1.0))
    if rc - lo <= half_step:
        left = None
    if hi - rc <= half_step:
        right = None
    at_boundary = ",".join(side for side, end in (("lower", left), ("upper", right)) if end is None)
    h = 1e-3 * (hi - lo)
    curv = math.nan
    if not at_boundary:
        for _ in range(40):
            sp, sm = goal(min(rc + h, hi)), goal(max(rc - h, lo))
            if min(sp, sm) - smin >= 0.01 or h > (hi - lo):
                hp, hm = min(rc + h, hi) - rc, rc - max(rc - h, lo)
                if hp > 0 and hm > 0:
                    # second derivative on a possibly asymmetric stencil
                    curv = 2.0 * (hm * (sp - smin) + hp * (sm - smin)) / (hp * hm * (hp + hm))
                break
            h *= 2.0
    if curv > 0 and np.isfinite(curv) and np.isfinite(smin):
        drho, method = math.sqrt(2.0 * max(smin, 0.0) / curv), "curvature"
    else:
        # the curvature is unusable (edge of the range, flat or concave S): width of the minimum
        if left is not None and right is not None:
            drho, method = 0.5 * (right - left), "delta_s"
        elif left is not None or right is not None:
            drho, method = (rc - left) if left is not None else (right - rc), "delta_s_one_sided"
        else:
            drho, method = max(rc - lo, hi - rc), "range"
    out = OptimizeResult(x=np.array([rc, nu, zeta]), fun=smin, success=bool(np.isfinite(smin)),
                         errors=np.array([drho, 0.0, 0.0]), rho=rc, nu=float(nu),
                         zeta=float(zeta), drho=float(drho), dnu=0.0, dzeta=0.0, grid=grid,
                         grid_quality=vals, drho_method=method, at_boundary=at_boundary,
                         bounds=(lo, hi))
    return out


def fit_phi_c_powerlaw(phi, f, df, beta: float) -> tuple[float, float, float]:
    """Single-size fallback: fit f_inf = A (phi - phi_c)^beta, beta fixed, to active points.

    Returns ``(phi_c, dphi_c, A)``. Only points with f > 0 are used; at least 3 are needed.
    """
    phi = np.asarray(phi, dtype=np.float64)
    f = np.asarray(f, dtype=np.float64)
    df = np.asarray(df, dtype=np.float64)
    sel = (f > 0) & np.isfinite(f)
    if sel.sum() < 3:
        raise CollapseError(f"power-law fit of phi_c needs >= 3 active points, have {int(sel.sum())}")
    x, y = phi[sel], f[sel]
    s = np.where(np.isfinite(df[sel]) & (df[sel] > 0), df[sel], 0.01 * y)
    # y^(1/beta) is linear in phi: A^(1/beta) (phi - phi_c)
    g = y ** (1.0 / beta)
    dg = g / beta * s / y
    coef, cov = np.polyfit(x, g, 1, w=1.0 / dg, cov="unscaled")
    slope, icpt = coef
    phic = -icpt / slope
    jac = np.array([icpt / slope ** 2, -1.0 / slope])
    dphic = float(np.sqrt(jac @ cov @ jac))
    return float(phic), dphic, float(slope ** beta)


def absorption_bracket(rows: Sequence[dict]) -> dict:
    """Where the runs change from absorbing to active, without any scaling assumption.

    From activity-table rows of one family and step size (columns n, phi, n_seeds, n_absorbed):

    * ``phi_all_absorbed``: the largest phi at which every seed of every N absorbed;
    * ``phi_none_absorbed``: the smallest phi above it at which no seed of any N absorbed;
    * ``phi_half`` per N (``{n: phi}``): where the absorbed fraction crosses 1/2, linearly
      interpolated between grid points (NaN if it does not cross).

    Within the runs' length, the change from absorbing to active happens between the first two. It
    is not a proof (runs too short stay active below phi_c; small systems absorb above it), but a
    collapse phi_c outside the bracket means the fit and the runs disagree, and the bracket is where a
    phi grid should be refined.
    """
    by_phi: dict = {}
    by_n: dict = {}
    for r in rows:
        frac = r["n_absorbed"] / r["n_seeds"] if r["n_seeds"] else math.nan
        by_phi.setdefault(float(r["phi"]), []).append(frac)
        by_n.setdefault(int(r["n"]), []).append((float(r["phi"]), frac))
    phis = sorted(by_phi)
    dead = [p for p in phis if all(f == 1.0 for f in by_phi[p])]
    lo = max(dead) if dead else math.nan
    alive = [p for p in phis if (not dead or p > lo) and all(f == 0.0 for f in by_phi[p])]
    hi = min(alive) if alive else math.nan
    half = {}
    for n, pts in sorted(by_n.items()):
        pts = sorted(pts)
        half[n] = math.nan
        for (p0, f0), (p1, f1) in zip(pts, pts[1:]):
            if f0 >= 0.5 > f1:
                half[n] = p0 + (p1 - p0) * (f0 - 0.5) / (f0 - f1)
                break
    return {"phi_all_absorbed": lo, "phi_none_absorbed": hi, "phi_half": half}


def refine_phi_grid(rows: Sequence[dict], min_step: float = 0.001) -> list[float]:
    """New packing fractions for an adaptive phi grid: where the runs change from absorbing to active.

    From the rows of :func:`absorption_bracket` (one family and step size): the midpoint of every
    interval between neighbouring phi of the grid (all N together) that lies inside the bracket
    [``phi_all_absorbed``, ``phi_none_absorbed``], and of the interval in which each N's absorbed
    fraction crosses 1/2 (it can lie above the bracket: a late absorption), if the interval is at
    least ``2 min_step`` wide. A bracket open on one side (no phi where every run absorbed, or none
    where no run did) gives instead one grid step beyond the grid on that side. Returns the sorted new
    phi (never one already on the grid), rounded to 10 decimals; empty when the grid is fine enough.

    >>> rows = [{"n": 1000, "phi": p, "n_seeds": 4, "n_absorbed": k}
    ...         for p, k in ((0.55, 4), (0.56, 4), (0.57, 1), (0.58, 0), (0.59, 0))]
    >>> refine_phi_grid(rows)
    [0.565, 0.575]
    """
    phis = sorted({float(r["phi"]) for r in rows})
    if len(phis) < 2:
        raise ValueError(f"refining a phi grid needs >= 2 packing fractions, got {len(phis)}")
    if not min_step > 0:
        raise ValueError(f"min_step must be > 0, got {min_step}")
    br = absorption_bracket(rows)
    lo, hi = br["phi_all_absorbed"], br["phi_none_absorbed"]
    new = set()
    if math.isnan(lo):
        new.add(phis[0] - (phis[1] - phis[0]))
    if math.isnan(hi):
        new.add(phis[-1] + (phis[-1] - phis[-2]))
    intervals = list(zip(phis, phis[1:]))
    if not (math.isnan(lo) and math.isnan(hi)):
        a = phis[0] if math.isnan(lo) else lo
        b = phis[-1] if math.isnan(hi) else hi
        new.update((p0 + p1) / 2 for p0, p1 in intervals if a <= p0 and p1 <= b and p1 - p0 >= 2 * min_step)
    by_n: dict = {}
    for r in rows:
        frac = r["n_absorbed"] / r["n_seeds"] if r["n_seeds"] else math.nan
        by_n.setdefault(int(r["n"]), []).append((float(r["phi"]), frac))
    for pts in by_n.values():                     # the crossing of 1/2 per N, as in absorption_bracket
        pts = sorted(pts)
        for (p0, f0), (p1, f1) in zip(pts, pts[1:]):
            if f0 >= 0.5 > f1:
                if p1 - p0 >= 2 * min_step:
                    new.add((p0 + p1) / 2)
                break
    return sorted({round(p, 10) for p in new} - {round(p, 10) for p in phis})


def table_to_grid(rows: Sequence[dict], quantity: str, dim: int, min_rel_error: float = 0.01):
    """``(l, rho, a, da)`` from activity-table rows of one family (several N, several phi).

    ``l = N^{1/d}``; missing (N, phi) pairs are NaN. Points with a <= 0 (all seeds absorbed, for
    f_inf) are treated as missing; errors below ``min_rel_error * |a|`` (or undefined, one seed)
    are raised to it so that every point has a finite weight.
    """
    ns = sorted({int(r["n"]) for r in rows})
    phis = sorted({float(r["phi"]) for r in rows})
    a = np.full((len(ns), len(phis)), np.nan)
    da = np.full_like(a, np.nan)
    err_col = quantity + "_err"
    for r in rows:
        i, j = ns.index(int(r["n"])), phis.index(float(r["phi"]))
        v, e = float(r[quantity]), float(r[err_col])
        if not np.isfinite(v) or v <= 0:
            continue
        a[i, j] = v
        floor = min_rel_error * abs(v)
        da[i, j] = e if (np.isfinite(e) and e >= floor and e > 0) else floor
    l = np.array(ns, dtype=np.float64) ** (1.0 / dim)
    return l, np.array(phis), a, da


class Collapse:
    """Finite-size-scaling collapse of f_inf or tau_r over system sizes (paper Fig. 3, S3).

    Parameters
    ----------
    quantity : {"f_inf", "tau_r"}
    dim : int
        Dimension (selects the Manna exponents).
    free : bool
        False (default, as the paper): fit phi_c alone with Manna exponents fixed. True: fit phi_c,
        nu and zeta with :func:`autoscale`, starting from the Manna values.
    min_rel_error : float
        Floor on relative errors (see :func:`table_to_grid`).
    extend_to_absorbed : bool
        f_inf (fixed or free exponents): let phi_c range down to the largest packing fraction below
        the active points at which every run of every size absorbed (f_inf = 0), since phi_c lies
        between the last absorbing and the first active phi; pyfssa's range (the active points
        alone) would pin an optimum below them at its lower end, and with the absorption bracket
        it would leave no range at all (its upper end is the first active phi). Default True.
    within_bracket : bool
        Limit phi_c to the absorption bracket (:func:`absorption_bracket`) when the rows count their
        absorbed seeds (``n_absorbed``, ``n_seeds``): not below the largest phi where every run of
        every size absorbed, not above the smallest where none did. With fixed exponents the scan
        covers only that range, so a collapse that wants phi_c beyond it sits at the end and is a
        bound; a free fit whose optimum (or error interval) leaves the range is a bound as well. A
        value outside the allowed range is never reported as a value. Default True.
    max_quality : float
        The largest S at which an optimum inside the range is a value (default :data:`MAX_QUALITY`):
        above it phi_c is "undetermined", since a phi_c that does not collapse the data is not a
        measurement. (At an end of the range S may be large because its minimum lies beyond: a bound
        stays a bound.)

    Examples
    --------
    >>> import numpy as np
    >>> rows = []
    >>> m = MANNA[3]
    >>> for n in (1000, 8000, 64000):
    ...     L = n ** (1 / 3)
    ...     for phi in np.linspace(0.60, 0.70, 11):
    ...         x = L ** (1 / m.nu_perp) * (phi - 0.64)
    ...         f = L ** (-m.beta / m.nu_perp) * np.log1p(np.exp(2 * x))
    ...         rows.append({"n": n, "phi": phi, "f_inf": f, "f_inf_err": 0.01 * f})
    >>> c = Collapse("f_inf", dim=3).compute(rows)
    >>> round(c.phi_c, 3)
    0.64
    """

    def __init__(self, quantity: str = "f_inf", dim: int = 3, free: bool = False,
                 min_rel_error: float = 0.01, extend_to_absorbed: bool = True,
                 within_bracket: bool = True, max_quality: float = MAX_QUALITY):
        if not max_quality > 0:
            raise AnalysisError(f"max_quality must be > 0, got {max_quality}")
        self.max_quality = float(max_quality)
        self.quantity = quantity
        self.extend_to_absorbed = bool(extend_to_absorbed)
        self.within_bracket = bool(within_bracket)
        self.dim = int(dim)
        self.free = bool(free)
        self.min_rel_error = float(min_rel_error)
        self.nu0, self.zeta0 = observable_exponents(quantity, dim)
        self._result = None

    def compute(self, rows: Sequence[dict], phi_c0: float | None = None) -> "Collapse":
        """Fit the collapse of ``rows`` (activity-table rows of one scheme, step size and b_f)."""
        l, rho, a, da = table_to_grid(rows, self.quantity, self.dim, self.min_rel_error)
        counts = np.isfinite(a).sum(axis=1)
        usable = counts >= 2
        if usable.sum() < 2:
            raise CollapseError(
                f"too few sizes for a collapse of {self.quantity}: need >= 2 system sizes with >= 2 "
                f"usable points each, have {int(usable.sum())} (N = "
                f"{', '.join(str(int(round(x ** self.dim))) for x in l[usable]) or 'none'})"
            )
        l, a, da = l[usable], a[usable], da[usable]
        keep = np.isfinite(a).any(axis=0)
        rho, a, da = rho[keep], a[:, keep], da[:, keep]
        if phi_c0 is None:
            phi_c0 = float(np.median(rho))
        # the allowed phi_c range: pyfssa's (the data's), extended down to the last all-absorbed phi
        # for f_inf (fixed or free exponents), then cut to the absorption bracket
        lo, hi = float(rho.min()), float(rho.max())
        if self.quantity == "f_inf" and self.extend_to_absorbed:
            by_phi: dict = {}
            for r in rows:
                by_phi.setdefault(float(r["phi"]), []).append(float(r["f_inf"]))
            dead = [p for p, fs in by_phi.items() if p < rho.min() and all(f == 0.0 for f in fs)]
            if dead:
                lo = max(dead)
        if self.within_bracket and rows and all("n_absorbed" in r and "n_seeds" in r for r in rows):
            br = absorption_bracket(rows)
            lo_b, hi_b = br["phi_all_absorbed"], br["phi_none_absorbed"]
            lo = max(lo, lo_b) if np.isfinite(lo_b) else lo
            hi = min(hi, hi_b) if np.isfinite(hi_b) else hi
            if not hi > lo:
                raise CollapseError(
                    f"collapse of {self.quantity} undefined: the absorption bracket [{lo_b:g}, {hi_b:g}] "
                    f"leaves no phi_c range inside the data [{rho.min():g}, {rho.max():g}]")
        if self.free:
            res = autoscale(l, rho, a, da, phi_c0, self.nu0, self.zeta0)
            if not res.success:
                raise CollapseError(f"collapse fit of {self.quantity} did not converge")
            # pyfssa lets rho_c leave the range: an optimum (or error interval) beyond it is a bound
            d = res.drho if np.isfinite(res.drho) else 0.0
            res["bounds"] = (lo, hi)
            res["at_boundary"] = ",".join(side for side, out in (("lower", res.rho - d <= lo),
                                                                 ("upper", res.rho + d >= hi)) if out)
        else:
            res = fit_critical_point(l, rho, a, da, self.nu0, self.zeta0, rho_c0=phi_c0, bounds=(lo, hi))
        self._grid = (l, rho, a, da)
        self._result = res
        _, y, dy = scaledata(l, rho, a, da, float(rho.min()), res.nu, res.zeta)
        # x by hand: the fitted phi_c may lie below the data (extend_to_absorbed)
        x = np.power(l[:, None], 1.0 / res.nu) * (rho[None, :] - res.rho) * np.ones_like(y)
        self._scaled = ScaledData(x, y, dy)
        return self

    def _need(self, name):
        if self._result is None:
            raise NotComputedError(f"Collapse.{name}: call compute() first")

    @property
    def result(self) -> OptimizeResult:
        """The fit result (fields rho, nu, zeta, drho, dnu, dzeta, fun, success)."""
        self._need("result")
        return self._result

    @property
    def phi_c(self) -> float:
        """The optimum of S. A value of phi_c only when :attr:`status` is "value"; for a "bound" it is
        where S is lowest inside the allowed range (used to draw the collapse), and the data say only
        :attr:`phi_c_bound`."""
        self._need("phi_c")
        return self._result.rho

    def _verdict(self) -> tuple:
        """(status, reason): the one rule behind :attr:`status` and :attr:`status_reason`."""
        lo, hi = self.phi_c_range
        span = f"[{lo:.4g}, {hi:.4g}]"
        ends = [e for e in self.at_boundary.split(",") if e]
        if self.phi_c_err_method == "range":
            return "undetermined", f"S flat over its range {span}"
        if len(ends) == 2:
            return "undetermined", f"the error interval reaches both ends of its range {span}"
        if ends:   # S at an end may be large because its minimum lies beyond: no ceiling here
            return "bound", f"S is lowest at the {ends[0]} end of its range {span}"
        # S averages over the points that lie on another size's scaled curve only: a fit that pulls the
        # sizes apart (a free nu -> 0) can make S tiny on a corner of the data (decision of 2026-12-07,
        # docs/analysis.md "A collapse needs its sizes to overlap")
        if (self.overlap[:, 0] == 0).any():
            return "undetermined", (f"a size has no point on another size's scaled curve (points on one, per "
                                    f"size: {self.overlap_label}): S does not see it")
        if not self.quality <= self.max_quality:
            return "undetermined", f"S = {self.quality:.3g} is above {self.max_quality:g}: the data do not collapse"
        if not np.isfinite(self.phi_c_err):
            return "undetermined", (f"the free fit's optimum {self.phi_c:.4f} has no error: S is not curved "
                                    "upwards there")
        return "value", ""

    @property
    def status(self) -> str:
        """"value" (the S minimum and its error interval lie inside the allowed range, and the data
        collapse there: S <= :attr:`max_quality`, every size on another's curve), "bound" (they reach
        one end: the minimum may lie beyond it, so phi_c is only bounded) or "undetermined" (both ends,
        S flat over the range, a size on no other's curve, S above the ceiling inside it, or a free fit
        whose error is undefined: S not curved upwards at its minimum, so how far phi_c may go is
        unknown); :attr:`status_reason` says which."""
        self._need("status")
        return self._verdict()[0]

    @property
    def status_reason(self) -> str:
        """Why phi_c is a bound or undetermined, in words ("" for a value)."""
        self._need("status_reason")
        return self._verdict()[1]

    @property
    def phi_c_limit(self) -> float:
        """For a "bound": the limit the data put on phi_c, the far end of the error interval from the
        end it reaches (phi_c <= limit at the lower end, phi_c >= limit at the upper end); NaN
        otherwise."""
        self._need("phi_c_limit")
        if self.status != "bound":
            return math.nan
        d = self.phi_c_err if np.isfinite(self.phi_c_err) else 0.0
        lo, hi = self.phi_c_range
        # a free optimum may lie beyond the range: the limit is then the range's end itself
        v = min(max(self.phi_c, lo), hi)
        return v + d if self.at_boundary == "lower" else v - d

    @property
    def phi_c_bound(self) -> str:
        """Text of the bound, "<= 0.6150" or ">= 0.6800"; "" for a value, "undetermined" if neither."""
        self._need("phi_c_bound")
        st = self.status
        if st == "value":
            return ""
        if st == "undetermined":
            return "undetermined"
        return f"{'<=' if self.at_boundary == 'lower' else '>='} {self.phi_c_limit:.4f}"

    @property
    def phi_c_err(self) -> float:
        """Error of phi_c; how it was obtained is :attr:`phi_c_err_method`."""
        self._need("phi_c_err")
        return self._result.drho

    @property
    def phi_c_err_method(self) -> str:
        """How :attr:`phi_c_err` was obtained: curvature, delta_s, delta_s_one_sided or range
        (:func:`fit_critical_point`); curvature for the free fit."""
        self._need("phi_c_err_method")
        return self._result.get("drho_method", "curvature")

    @property
    def at_boundary(self) -> str:
        """Which end of the allowed phi_c range the error interval reaches: "lower", "upper",
        "lower,upper" or "" (inside); at an end the minimum of S may lie beyond it."""
        self._need("at_boundary")
        return self._result.get("at_boundary", "")

    @property
    def phi_c_range(self) -> tuple:
        """(lowest, highest) phi_c allowed in the fit."""
        self._need("phi_c_range")
        l, rho, _, _ = self._grid
        return self._result.get("bounds", (float(rho.min()), float(rho.max())))

    def phi_c_label(self, digits: int = 4) -> str:
        """Text like "0.6100 +- 0.0050" (a note when the error is not from the curvature), "<= 0.6150
        (a bound: ...)" when S is lowest at an end of the range, or "undetermined (...)" (for figure
        titles and logs; never a bare nan, never a pinned value shown as a value)."""
        self._need("phi_c_label")
        v, e, m = self.phi_c, self.phi_c_err, self.phi_c_err_method
        if self.status == "bound":
            return f"{self.phi_c_bound[:2]} {self.phi_c_limit:.{digits}f} (a bound: {self.status_reason})"
        if self.status == "undetermined":
            return f"undetermined ({self.status_reason}; S lowest at {v:.{digits}f})"
        s = f"{v:.{digits}f} +- {e:.{digits}f}"   # a value has a finite error (status)
        notes = []
        if m != "curvature":
            notes.append({"delta_s": "width of S minimum"}.get(m, m))
        return s + (f" ({'; '.join(notes)})" if notes else "")

    @property
    def nu(self) -> float:
        self._need("nu")
        return self._result.nu

    @property
    def zeta(self) -> float:
        self._need("zeta")
        return self._result.zeta

    @property
    def quality(self) -> float:
        """S at the optimum (about 1 for a good collapse)."""
        self._need("quality")
        return self._result.fun

    @property
    def overlap(self) -> np.ndarray:
        """Per size, (its points on another size's scaled curve, its points) at the optimum
        (:func:`scaled_overlap`); only those points enter S."""
        self._need("overlap")
        return scaled_overlap(*self._scaled)

    @property
    def overlap_label(self) -> str:
        """:attr:`overlap` as text, smallest size first: "3/4 2/4 0/2"."""
        return " ".join(f"{u}/{n}" for u, n in self.overlap)

    @property
    def grid(self):
        """``(l, phi, a, da)``: the data that were collapsed (l = N^{1/d})."""
        self._need("grid")
        return self._grid

    @property
    def scaled(self) -> ScaledData:
        """Scaled data ``(x, y, dy)`` at the optimum."""
        self._need("scaled")
        return self._scaled
