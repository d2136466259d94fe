r"""phi_c per kick size / learning rate, and its extrapolation to zero step size (paper Fig. 5b).

For each family of runs (scheme, batch fraction b_f, potential, dimension) and each step size
(kick size epsilon for BRO and the stochastic approximations, learning rate alpha for SGD, RCD and
GD) the critical packing fraction phi_c is fitted by the finite-size-scaling collapse of f_inf (or
tau_r) with the Manna exponents held fixed (:class:`analysis.fss.Collapse`), as the paper does with
pyfssa. When a step size has a single system size, phi_c falls back to the fit
f_inf = A (phi - phi_c)^beta with the Manna beta (``method = "powerlaw"``).

The limit eps -> 0 is a weighted least-squares polynomial (default: a line,
phi_c(eps) = phi_c(0) + s eps) through the (eps, phi_c +- dphi_c) points; the error of phi_c(0) comes
from the fit covariance, multiplied by sqrt(chi^2 / dof) when that exceeds 1.

Examples
--------
>>> import numpy as np
>>> eps = np.array([0.01, 0.02, 0.04, 0.08])
>>> phi0, dphi0, coef = extrapolate(eps, 0.64 + 0.5 * eps, np.full(4, 0.001))
>>> round(phi0, 4), round(coef[0], 3)
(0.64, 0.5)
"""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Sequence

import numpy as np

from .errors import AnalysisError, CollapseError, Computed
from .fss import Collapse, fit_phi_c_powerlaw, manna
from .io import step_size_of

FAMILY_FIELDS = ("scheme", "batch_fraction", "potential", "dim")


def row_step_size(row: dict) -> float | None:
    """The step size of an activity-table row: epsilon for BRO, alpha otherwise."""
    return step_size_of(row.get("scheme"), row.get("kick_size"), row.get("learning_rate"))


def extrapolate(step, phi_c, phi_c_err, order: int = 1):
    """Weighted polynomial fit of phi_c(step); returns ``(phi_c(0), error, coefficients)``.

    ``coefficients`` are in increasing order (``coef[0]`` is the slope for order 1).
    """
    x = np.asarray(step, dtype=np.float64)
    y = np.asarray(phi_c, dtype=np.float64)
    e = np.asarray(phi_c_err, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y, e = x[ok], y[ok], e[ok]
    if x.size < order + 1:
        raise CollapseError(f"extrapolation of phi_c needs >= {order + 1} step sizes, have {x.size}")
    good_err = np.isfinite(e) & (e > 0)
    w = 1.0 / e if good_err.all() else np.ones_like(y)
    coef, cov = np.polyfit(x, y, order, w=w, cov="unscaled") if x.size > order else (None, None)
    dof = x.size - order - 1
    res = (y - np.polyval(coef, x)) * w
    chi2 = float(res @ res)
    if not good_err.all():
        scale = chi2 / dof if dof > 0 else math.nan
    else:
        scale = max(1.0, chi2 / dof) if dof > 0 else 1.0
    cov = cov * scale
    return float(coef[-1]), float(math.sqrt(cov[-1, -1])) if np.isfinite(cov[-1, -1]) else math.nan, [float(c) for c in coef[-2::-1]]


class CriticalPoints(Computed):
    """phi_c for every (family, step size) and phi_c(0) per family.

    Parameters
    ----------
    quantity : {"f_inf", "tau_r"}
        Collapsed observable.
    free : bool
        Fit exponents too (default False: Manna exponents fixed).
    order : int
        Polynomial order of the extrapolation in the step size.
    """

    def __init__(self, quantity: str = "f_inf", free: bool = False, order: int = 1):
        self.quantity, self.free, self.order = quantity, free, int(order)
        self._computed = False

    def compute(self, rows: Sequence[dict]) -> "CriticalPoints":
        """Fit from activity-table rows (:attr:`analysis.activity.ActivityTable.rows`)."""
        fam: dict = OrderedDict()
        for r in rows:
            key = tuple((f, r.get(f)) for f in FAMILY_FIELDS)
            fam.setdefault(key, OrderedDict()).setdefault(row_step_size(r), []).append(r)
        points, extrap, collapses = [], [], {}
        for key, by_step in fam.items():
            fd = dict(key)
            dim = int(fd["dim"])
            fam_points = []
            for step, rs in sorted(by_step.items(), key=lambda kv: (kv[0] is None, kv[0] or 0)):
                sizes = {int(r["n"]) for r in rs}
                try:
                    if len(sizes) >= 2:
                        c = Collapse(self.quantity, dim=dim, free=self.free).compute(rs)
                        collapses[(key, step)] = c
                        p = {"phi_c": c.phi_c, "phi_c_err": c.phi_c_err, "quality": c.quality,
                             "method": "collapse", "sizes": len(sizes),
                             "phi_c_err_method": c.phi_c_err_method, "at_boundary": c.at_boundary}
                    else:
                        if self.quantity != "f_inf":
                            raise CollapseError(
                                f"{fd['scheme']} step {step}: one system size, cannot fit phi_c from {self.quantity}")
                        rs_sorted = sorted(rs, key=lambda r: r["phi"])
                        pc, dpc, _ = fit_phi_c_powerlaw([r["phi"] for r in rs_sorted],
                                                        [r["f_inf"] for r in rs_sorted],
                                                        [r["f_inf_err"] for r in rs_sorted],
                                                        manna(dim).beta)
                        p = {"phi_c": pc, "phi_c_err": dpc, "quality": math.nan,
                             "method": "powerlaw", "sizes": 1, "phi_c_err_method": "fit covariance",
                             "at_boundary": ""}
                except CollapseError as err:
                    p = {"phi_c": math.nan, "phi_c_err": math.nan, "quality": math.nan,
                         "method": f"failed: {err}", "sizes": len(sizes), "phi_c_err_method": "",
                         "at_boundary": ""}
                p = {**fd, "step_size": step, **p}
                points.append(p)
                fam_points.append(p)
            ok = [p for p in fam_points if np.isfinite(p["phi_c"]) and p["step_size"] is not None]
            if len(ok) >= self.order + 1:
                phi0, dphi0, coef = extrapolate([p["step_size"] for p in ok], [p["phi_c"] for p in ok],
                                                [p["phi_c_err"] for p in ok], self.order)
                extrap.append({**fd, "phi_c0": phi0, "phi_c0_err": dphi0,
                               "slope": float(coef[0]), "n_points": len(ok),
                               "coefficients": [float(c) for c in coef]})
            else:
                extrap.append({**fd, "phi_c0": math.nan, "phi_c0_err": math.nan,
                               "slope": math.nan, "n_points": len(ok), "coefficients": []})
        if not points:
            raise AnalysisError("no activity rows to fit phi_c from")
        self._points, self._extrap, self._collapses = points, extrap, collapses
        self._computed = True
        return self

    @property
    def points(self) -> list[dict]:
        """One dict per (family, step size): family fields, step_size, phi_c, phi_c_err, quality, method."""
        self._need("points")
        return self._points

    @property
    def extrapolations(self) -> list[dict]:
        """One dict per family: phi_c0 (= phi_c at step 0), phi_c0_err, slope, n_points."""
        self._need("extrapolations")
        return self._extrap

    @property
    def collapses(self) -> dict:
        """The fitted :class:`~analysis.fss.Collapse` per (family key, step size)."""
        self._need("collapses")
        return self._collapses
