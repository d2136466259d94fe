r"""phi_c per kick size / learning rate, and its extrapolation to zero step size (paper Fig. 5b).

For each family of runs (scheme, batch fraction b_f, potential, dimension) and each step size
(kick size epsilon for BRO and the stochastic approximations, learning rate alpha for SGD, RCD and
GD) the critical packing fraction phi_c is fitted by the finite-size-scaling collapse of f_inf (or
tau_r) with the Manna exponents held fixed (:class:`analysis.fss.Collapse`), as the paper does with
pyfssa. When a step size has a single system size, phi_c falls back to the fit
f_inf = A (phi - phi_c)^beta with the Manna beta (``method = "powerlaw"``).

**Values and bounds.** A collapse whose S minimum (with its error interval) reaches an end of the
allowed phi_c range gives a *bound* (``status = "bound"``, ``phi_c_bound`` "<= x" or ">= x"), never a
value: its ``phi_c`` is NaN, it is drawn as an arrow in Fig. 5b and it never enters an extrapolation.

**Errors.** ``phi_c_err_fit`` from the curvature of S (or the width of its minimum,
:func:`analysis.fss.fit_critical_point`); ``phi_c_err_bootstrap`` the standard deviation of phi_c over
``n_bootstrap`` resamplings of the seeds of every (N, phi) point (needs the per-run table); the
larger of the two is ``phi_c_err``, the error used downstream.

**Without scaling** (:func:`absorption_bracket`): the largest phi where every run absorbed, the
smallest where none did, and per N the phi where half did; ``in_bracket`` says whether a collapse
value lies between the first two (within its error).

**eps -> 0** (:func:`extrapolate`, :func:`compare_extrapolations`): weighted least squares of
phi_c(eps) = phi_c(0) + s g(eps) for three forms, g = eps ("linear"), sqrt(eps) ("sqrt") and eps^a
with a free ("power"), each with chi^2/dof, AIC = chi^2 + 2k and AICc = AIC + 2k(k+1)/(n-k-1)
(k parameters, n points). Forms with no degree of freedom (n = k: an exact fit) are not judged; the
preferred form has the smallest AICc (AIC when some form has n = k + 1, where AICc is undefined), and it
is called decisive only if the next form's score is larger by more than 2. The error of phi_c(0) is from the fit covariance,
multiplied by sqrt(chi^2/dof) when that exceeds 1.

**eps -> 0 from brackets** (:func:`extrapolate_brackets`): when the step sizes give brackets rather than
values, the range of phi_c(0) over every curve of a form that passes through every absorption
bracket (a linear program per form and exponent); a form with no such curve is inconsistent with the
brackets. Reported next to the fits (``bracket_*`` columns, the verdict line, Fig. 5b).

Examples
--------
>>> import numpy as np
>>> eps = np.array([0.01, 0.02, 0.04, 0.08])
>>> fit = extrapolate(eps, 0.64 + 0.5 * eps, np.full(4, 0.001))
>>> round(fit.phi_c0, 4), round(fit.params[1], 3), fit.dof
(0.64, 0.5, 2)
>>> fit.contains(0.64)
True
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.optimize

from .activity import seed_mean
from .errors import AnalysisError, CollapseError, Computed
from .fss import MAX_QUALITY, Collapse, absorption_bracket, fit_phi_c_powerlaw, manna
from .io import step_size_of

FAMILY_FIELDS = ("scheme", "batch_fraction", "potential", "dim")
#: the forms of phi_c(eps) examined by :func:`compare_extrapolations`
FORMS = ("linear", "sqrt", "power")
#: phi_c(0) the paper reports (random close packing)
PHI_RCP = 0.64
#: the default target of phi_c(0) per dimension: random close packing / maximally random jammed
#: packing fraction: d = 3 the paper's 0.64; d = 4, 5, 6 Skoge, Donev, Stillinger & Torquato, PRE 74,
#: 041127 (2006); d = 2 the jamming point of bidisperse disks, O'Hern et al., PRE 68, 011306 (2003)
PHI_JAMMED = {2: 0.84, 3: PHI_RCP, 4: 0.46, 5: 0.31, 6: 0.20}
#: range of the free exponent of the "power" form
POWER_RANGE = (0.05, 5.0)


def row_step_size(row: dict) -> float | None:
    """The step size of an activity-table row: epsilon for BRO, alpha otherwise."""
    return step_size_of(row.get("scheme"), row.get("kick_size"), row.get("learning_rate"))


@dataclass(frozen=True)
class Extrapolation:
    """A fit phi_c(eps) = phi_c0 + s g(eps) (see the module doc).

    ``params``: (phi_c0, s) for "linear" and "sqrt", (phi_c0, s, a) for "power"; ``errors`` theirs.
    """

    form: str
    params: tuple
    errors: tuple
    chi2: float
    dof: int
    n_points: int
    note: str = ""

    @property
    def phi_c0(self) -> float:
        return self.params[0]

    @property
    def phi_c0_err(self) -> float:
        return self.errors[0]

    @property
    def n_params(self) -> int:
        return len(self.params)

    @property
    def chi2_per_dof(self) -> float:
        return self.chi2 / self.dof if self.dof > 0 else math.nan

    @property
    def aic(self) -> float:
        """chi^2 + 2k (the errors are taken as known)."""
        return self.chi2 + 2.0 * self.n_params

    @property
    def aicc(self) -> float:
        """AIC corrected for few points: AIC + 2k(k+1)/(n-k-1); inf when n <= k + 1."""
        k, n = self.n_params, self.n_points
        return self.aic + 2.0 * k * (k + 1) / (n - k - 1) if n > k + 1 else math.inf

    def predict(self, step) -> np.ndarray:
        """phi_c at ``step`` (array_like) on the fitted curve."""
        return self.params[0] + self.params[1] * _basis(self.form, np.asarray(step, dtype=np.float64),
                                                        self.params[2] if self.form == "power" else None)

    def sigmas_from(self, value: float = PHI_RCP) -> float:
        """(value - phi_c0) / phi_c0_err."""
        return (value - self.phi_c0) / self.phi_c0_err if self.phi_c0_err > 0 else math.inf

    def contains(self, value: float = PHI_RCP) -> bool:
        """Whether ``value`` lies within one error of phi_c0."""
        return bool(abs(value - self.phi_c0) <= self.phi_c0_err)


def _basis(form: str, x: np.ndarray, a: float | None = None) -> np.ndarray:
    if form == "linear":
        return x
    if form == "sqrt":
        return np.sqrt(x)
    if form == "power":
        return np.power(x, a)
    raise AnalysisError(f"unknown extrapolation form {form!r}: choose from {', '.join(FORMS)}")


def _linear_fit(g, y, w):
    """Weighted least squares y = p0 + s g: params, unscaled covariance, chi^2."""
    design = np.column_stack([np.ones_like(g), g]) * w[:, None]
    params, *_ = np.linalg.lstsq(design, y * w, rcond=None)
    cov = np.linalg.pinv(design.T @ design)
    res = (y - params[0] - params[1] * g) * w
    return params, cov, float(res @ res)


def extrapolate(step, phi_c, phi_c_err, form: str = "linear") -> Extrapolation:
    """Weighted least-squares fit of phi_c(step) = phi_c0 + s g(step) for one ``form``.

    Points with a non-finite step or phi_c are dropped. Weights 1/phi_c_err (all equal if any error
    is missing or not positive, the covariance then scaled by chi^2/dof). "linear" and "sqrt" need
    >= 2 points, "power" >= 3: its exponent a is scanned over :data:`POWER_RANGE` and refined, and
    the covariance of (phi_c0, s, a) is the inverse of J^T W J at the optimum. An exponent at an end
    of its range is reported in ``note``.
    """
    x = np.asarray(step, dtype=np.float64)
    y = np.asarray(phi_c, dtype=np.float64)
    e = np.asarray(phi_c_err, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y, e = x[ok], y[ok], e[ok]
    k = 3 if form == "power" else 2
    _basis(form, np.ones(1), 1.0)  # validate the form
    if x.size < k:
        raise CollapseError(f"{form} extrapolation of phi_c needs >= {k} step sizes, have {x.size}")
    if np.any(x < 0):
        raise AnalysisError("step sizes must be >= 0")
    known = bool(np.all(np.isfinite(e) & (e > 0)))
    w = 1.0 / e if known else np.ones_like(y)
    note = ""
    if form in ("linear", "sqrt"):
        params, cov, chi2 = _linear_fit(_basis(form, x), y, w)
        params = tuple(float(p) for p in params)
    else:
        xpos = np.where(x > 0, x, np.nan)

        def chi2_at(log_a):
            g = np.nan_to_num(np.power(xpos, math.exp(log_a)), nan=0.0)
            return _linear_fit(g, y, w)[2]

        lo, hi = math.log(POWER_RANGE[0]), math.log(POWER_RANGE[1])
        grid = np.linspace(lo, hi, 200)
        vals = np.array([chi2_at(v) for v in grid])
        i = int(np.argmin(vals))
        res = scipy.optimize.minimize_scalar(chi2_at, bounds=(grid[max(i - 1, 0)], grid[min(i + 1, 199)]),
                                             method="bounded", options={"xatol": 1e-10})
        log_a = float(res.x) if res.fun <= vals[i] else float(grid[i])
        a = math.exp(log_a)
        g = np.nan_to_num(np.power(xpos, a), nan=0.0)
        (p0, s), _, chi2 = _linear_fit(g, y, w)
        params = (float(p0), float(s), a)
        with np.errstate(divide="ignore", invalid="ignore"):
            dg_da = np.where(x > 0, s * g * np.log(np.where(x > 0, x, 1.0)), 0.0)
        jac = np.column_stack([np.ones_like(g), g, dg_da]) * w[:, None]
        cov = np.linalg.pinv(jac.T @ jac)
        if i in (0, grid.size - 1):
            note = f"exponent at the end of its range [{POWER_RANGE[0]:g}, {POWER_RANGE[1]:g}]"
    dof = int(x.size - k)
    if not known:
        scale = chi2 / dof if dof > 0 else math.nan
    else:
        scale = max(1.0, chi2 / dof) if dof > 0 else 1.0
    with np.errstate(invalid="ignore"):
        errs = tuple(float(v) for v in np.sqrt(np.clip(np.diag(cov) * scale, 0.0, None)))
    return Extrapolation(form=form, params=params, errors=errs, chi2=float(chi2), dof=dof,
                         n_points=int(x.size), note=note)


def compare_extrapolations(step, phi_c, phi_c_err, forms: Sequence[str] = FORMS,
                           target: float = PHI_RCP) -> dict:
    """Fit every form that the points allow and say which the data prefer.

    Returns ``{"fits": {form: Extrapolation}, "preferred": form or "", "decisive": bool,
    "verdict": str}``; ``verdict`` is one line: the preferred form (smallest AICc), whether the
    data decide (next AICc larger by > 2), and for each form phi_c(0) +- error and whether
    ``target`` lies within one error. Forms that need more points are left out.
    """
    fits = OrderedDict()
    for form in forms:
        try:
            fits[form] = extrapolate(step, phi_c, phi_c_err, form)
        except CollapseError:
            continue
    if not fits:
        raise CollapseError("extrapolation of phi_c needs >= 2 step sizes with values")
    # a form with no degree of freedom fits exactly and cannot be judged; AICc where every candidate
    # has one (n > k + 1), else AIC
    cands = [f for f in fits.values() if f.dof >= 1]
    crit = "AICc" if cands and all(np.isfinite(f.aicc) for f in cands) else "AIC"
    score = (lambda f: f.aicc) if crit == "AICc" else (lambda f: f.aic)
    ranked = sorted(cands, key=score)
    preferred = ranked[0].form if ranked else ""
    decisive = bool(ranked and (len(ranked) == 1 or score(ranked[1]) - score(ranked[0]) > 2.0))
    if not ranked:
        head = "too few step sizes to compare forms (no form has a degree of freedom)"
    elif len(ranked) == 1:
        head = f"only {ranked[0].form} can be tested (the others have no degree of freedom)"
    else:
        best, nxt = ranked[0], ranked[1]
        head = (f"data prefer {best.form} ({crit} {score(best):.2f} vs {nxt.form} {score(nxt):.2f}: "
                f"{'decisive' if decisive else 'not decisive, difference <= 2'})")
    parts = [f"{f.form}: {f.phi_c0:.4f} +- {f.phi_c0_err:.4f}, {target:g} "
             f"{'inside' if f.contains(target) else 'outside'} ({f.sigmas_from(target):+.1f} sigma)"
             for f in fits.values()]
    return {"fits": fits, "preferred": preferred, "decisive": decisive,
            "verdict": head + "; " + "; ".join(parts)}


@dataclass(frozen=True)
class BracketExtrapolation:
    """The phi_c(0) of every curve phi_c(eps) = phi_c0 + s g(eps) of one form that passes through every
    absorption bracket [lo_i, hi_i] (:func:`extrapolate_brackets`).

    ``phi_c0_lo``, ``phi_c0_hi``: the range of phi_c0 over those curves (NaN when none exists:
    ``consistent`` False; -inf / inf when an open bracket leaves it unbounded); ``exponent_lo``,
    ``exponent_hi``: the exponents a of g = eps^a that admit a curve (1 for "linear", 0.5 for "sqrt").
    """

    form: str
    phi_c0_lo: float
    phi_c0_hi: float
    exponent_lo: float
    exponent_hi: float
    n_brackets: int

    @property
    def consistent(self) -> bool:
        """Whether some curve of this form passes through every bracket."""
        return not math.isnan(self.phi_c0_lo)

    def contains(self, value: float = PHI_RCP) -> bool:
        """Whether ``value`` is the phi_c(0) of some curve of this form through every bracket."""
        return bool(self.consistent and self.phi_c0_lo <= value <= self.phi_c0_hi)


#: exponents a tried by the "power" form of :func:`extrapolate_brackets` (log-spaced over POWER_RANGE)
BRACKET_EXPONENTS = np.geomspace(POWER_RANGE[0], POWER_RANGE[1], 921)


def _phi_c0_range(g: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[float, float]:
    """min and max of p0 subject to lo_i <= p0 + s g_i <= hi_i (a linear program in (p0, s));
    (NaN, NaN) if infeasible, +-inf where unbounded."""
    upper, lower = np.isfinite(hi), np.isfinite(lo)
    a_ub = np.vstack([np.column_stack([np.ones(upper.sum()), g[upper]]),
                      -np.column_stack([np.ones(lower.sum()), g[lower]])])
    b_ub = np.concatenate([hi[upper], -lo[lower]])
    out = []
    for sign in (1.0, -1.0):
        r = scipy.optimize.linprog([sign, 0.0], A_ub=a_ub, b_ub=b_ub, bounds=[(None, None)] * 2,
                                   method="highs")
        if r.status == 2:  # infeasible
            return math.nan, math.nan
        out.append(-sign * math.inf if r.status == 3 else float(r.x[0]))
    return out[0], out[1]


def extrapolate_brackets(step, lo, hi, form: str = "linear") -> BracketExtrapolation:
    """phi_c(0) from absorption brackets instead of values: the range of phi_c0 over every curve
    phi_c0 + s g(eps) that passes through [lo_i, hi_i] at every step size eps_i (a linear program per
    form; for "power" one per exponent a of :data:`BRACKET_EXPONENTS`, the union of the feasible ones).

    The brackets are :func:`analysis.fss.absorption_bracket`'s (every seed of every N absorbed at lo,
    none at hi): no value and no error bar is invented, and a form that no curve through the brackets
    has is *inconsistent* with them. A bracket open on one side (NaN) constrains one side only; steps
    with both sides open, a non-finite or non-positive step are dropped. "linear" and "sqrt" need >= 2
    brackets, "power" >= 3. The premise is that each bracket holds phi_c of its step size: true within
    the runs' sizes and lengths (docs/analysis.md, "phi_c from brackets").
    """
    x = np.asarray(step, dtype=np.float64)
    lo = np.asarray(lo, dtype=np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    ok = np.isfinite(x) & (x > 0) & (np.isfinite(lo) | np.isfinite(hi))
    x, lo, hi = x[ok], lo[ok], hi[ok]
    if np.any(np.isfinite(lo) & np.isfinite(hi) & (lo > hi)):
        raise AnalysisError("absorption brackets must have lo <= hi")
    k = 3 if form == "power" else 2
    _basis(form, np.ones(1), 1.0)  # validate the form
    if x.size < k:
        raise CollapseError(f"{form} extrapolation of phi_c brackets needs >= {k} step sizes, have {x.size}")
    exps = BRACKET_EXPONENTS if form == "power" else np.array([{"linear": 1.0, "sqrt": 0.5}[form]])
    p_lo, p_hi, a_ok = math.inf, -math.inf, []
    for a in exps:
        lo_a, hi_a = _phi_c0_range(np.power(x, a), lo, hi)
        if math.isnan(lo_a):
            continue
        p_lo, p_hi = min(p_lo, lo_a), max(p_hi, hi_a)
        a_ok.append(a)
    if not a_ok:
        return BracketExtrapolation(form, math.nan, math.nan, math.nan, math.nan, int(x.size))
    return BracketExtrapolation(form, p_lo, p_hi, float(min(a_ok)), float(max(a_ok)), int(x.size))


def _bootstrap_phi_c(rows: Sequence[dict], runs: Sequence[dict], make_collapse, n_boot: int,
                     rng: np.random.Generator) -> tuple[float, float, int]:
    """Standard deviation of phi_c over resamplings of each (N, phi) point's seeds.

    ``rows``: the family's activity-table rows; ``runs``: their per-run entries. Points excluded
    from the table (NaN) stay excluded. Returns ``(std of phi_c over replicas with a value,
    fraction of replicas that gave a bound or failed, number of replicas)``.
    """
    by_point: dict = {}
    for r in runs:
        by_point.setdefault((int(r["n"]), float(r["phi"])), []).append(r)
    values, not_values = [], 0
    for _ in range(n_boot):
        new_rows = []
        for row in rows:
            members = by_point.get((int(row["n"]), float(row["phi"])), [])
            if not members or not np.isfinite(row["f_inf"]) or not np.isfinite(row["tau_r"]):
                new_rows.append(row)
                continue
            pick = [members[i] for i in rng.integers(0, len(members), len(members))]
            f, fe = seed_mean([m["f_inf"] for m in pick], [m["f_inf_err"] for m in pick])
            t, te = seed_mean([m["tau_r"] for m in pick])
            new_rows.append({**row, "f_inf": f, "f_inf_err": fe, "tau_r": t, "tau_r_err": te})
        try:
            # no quality ceiling on a replica: one that drew the same seed twice has too small errors and
            # a large S; where its optimum lies is what the bootstrap measures
            c = make_collapse(max_quality=math.inf).compute(new_rows)
        except CollapseError:
            not_values += 1
            continue
        if c.status == "value":
            values.append(c.phi_c)
        else:
            not_values += 1
    std = float(np.std(values, ddof=1)) if len(values) >= 2 else math.nan
    return std, not_values / n_boot if n_boot else math.nan, n_boot


#: columns of :attr:`CriticalPoints.points`
POINT_COLUMNS = ("scheme", "batch_fraction", "potential", "dim", "step_size", "sizes", "method", "status",
                 "status_reason", "phi_c", "phi_c_err", "phi_c_bound", "phi_c_limit", "phi_c_optimum", "phi_c_err_fit",
                 "phi_c_err_method", "phi_c_err_bootstrap", "bootstrap_not_value", "n_bootstrap",
                 "at_boundary", "phi_c_range_lo", "phi_c_range_hi", "quality", "overlap", "excluded_points",
                 "phi_all_absorbed", "phi_none_absorbed", "phi_half", "in_bracket")
#: columns of :attr:`CriticalPoints.extrapolations`
EXTRAPOLATION_COLUMNS = ("scheme", "batch_fraction", "potential", "dim", "form", "n_points", "phi_c0",
                         "phi_c0_err", "slope", "exponent", "chi2", "dof", "chi2_per_dof", "aic", "aicc",
                         "preferred", "decisive", "target", "target_inside", "target_sigmas", "note",
                         "bracket_n", "bracket_phi_c0_lo", "bracket_phi_c0_hi", "bracket_exponent_lo",
                         "bracket_exponent_hi", "bracket_consistent", "bracket_target_inside")


def _bracket_powerlaw(p: dict, lo: float, hi: float) -> None:
    """The one-size power-law phi_c kept inside the absorption bracket [lo, hi], as the collapses keep
    theirs: a fit value beyond an edge by more than its error (every seed absorbed above it, or none
    below it) becomes a bound at that edge ("<= lo + error" / ">= hi - error"), never a value."""
    pc, e = p["phi_c"], p["phi_c_err"] if np.isfinite(p["phi_c_err"]) else 0.0
    side = "lower" if np.isfinite(lo) and pc + e < lo else "upper" if np.isfinite(hi) and pc - e > hi else ""
    if side:
        limit = lo + e if side == "lower" else hi - e
        p.update(status="bound", phi_c=math.nan, phi_c_err=math.nan, at_boundary=side, phi_c_limit=limit,
                 phi_c_bound=f"{'<=' if side == 'lower' else '>='} {limit:.4f}", phi_c_range_lo=lo, phi_c_range_hi=hi,
                 status_reason=f"the one-size fit's {pc:.4f} lies beyond the {side} end of the absorption "
                               f"bracket [{lo:.4g}, {hi:.4g}]")


class CriticalPoints(Computed):
    """phi_c for every (family, step size) and its eps -> 0 extrapolations per family.

    Parameters
    ----------
    quantity : {"f_inf", "tau_r"}
        Collapsed observable.
    free : bool
        Fit exponents too (default False: Manna exponents fixed).
    forms : sequence of str
        Extrapolation forms (:data:`FORMS`).
    n_bootstrap : int
        Resamplings of the seeds for the bootstrap error of phi_c (0: none). Needs ``per_run`` in
        :meth:`compute`.
    seed : int
        Seed of the bootstrap's generator (results are reproducible).
    target : float or None
        The value each extrapolation is compared with (default None: :data:`PHI_JAMMED` of the
        family's dimension, the paper's 0.64 in 3d).
    within_bracket : bool
        Limit phi_c to the absorption bracket (:class:`analysis.fss.Collapse`; default True).
    max_quality : float
        The largest collapse quality S at which phi_c inside its range is a value
        (:class:`analysis.fss.Collapse`).
    """

    def __init__(self, quantity: str = "f_inf", free: bool = False, forms: Sequence[str] = FORMS,
                 n_bootstrap: int = 0, seed: int = 0, target: float | None = None, within_bracket: bool = True,
                 max_quality: float = MAX_QUALITY):
        for f in forms:
            _basis(f, np.ones(1), 1.0)
        if n_bootstrap < 0:
            raise AnalysisError(f"n_bootstrap must be >= 0, got {n_bootstrap}")
        Collapse(quantity, max_quality=max_quality)   # checks them before any work
        self.quantity, self.free, self.forms = quantity, bool(free), tuple(forms)
        self.n_bootstrap, self.seed = int(n_bootstrap), int(seed)
        self.target = None if target is None else float(target)
        self.within_bracket = bool(within_bracket)
        self.max_quality = float(max_quality)
        self._computed = False

    def target_of(self, dim: int) -> float:
        """The phi_c(0) the extrapolations of dimension ``dim`` are compared with (NaN: none known)."""
        return self.target if self.target is not None else PHI_JAMMED.get(int(dim), math.nan)

    def compute(self, rows: Sequence[dict], per_run: Sequence[dict] | None = None) -> "CriticalPoints":
        """Fit from activity-table rows (:attr:`analysis.activity.ActivityTable.rows`); ``per_run``
        (:attr:`~analysis.activity.ActivityTable.per_run`) enables the bootstrap over seeds."""
        fam: dict = OrderedDict()
        for r in rows:
            key = tuple((f, r.get(f)) for f in FAMILY_FIELDS)
            fam.setdefault(key, OrderedDict()).setdefault(row_step_size(r), []).append(r)
        runs_by: dict = {}
        for r in per_run or ():
            key = tuple((f, r.get(f)) for f in FAMILY_FIELDS)
            runs_by.setdefault((key, row_step_size(r)), []).append(r)
        rng = np.random.default_rng(self.seed)
        points, extrap, collapses, comparisons, brackets = [], [], {}, {}, {}
        for key, by_step in fam.items():
            fd = dict(key)
            dim = int(fd["dim"])
            target = self.target_of(dim)
            fam_points = []
            for step, rs in sorted(by_step.items(), key=lambda kv: (kv[0] is None, kv[0] or 0)):
                sizes = {int(r["n"]) for r in rs}
                excluded = sum(1 for r in rs if r.get("excluded"))
                p = {"status_reason": "", "phi_c": math.nan, "phi_c_err": math.nan, "phi_c_bound": "", "phi_c_limit": math.nan,
                     "phi_c_optimum": math.nan, "phi_c_err_fit": math.nan, "phi_c_err_method": "",
                     "phi_c_err_bootstrap": math.nan, "bootstrap_not_value": math.nan, "n_bootstrap": 0,
                     "at_boundary": "", "phi_c_range_lo": math.nan, "phi_c_range_hi": math.nan,
                     "quality": math.nan, "overlap": "", "sizes": len(sizes), "excluded_points": excluded,
                     "phi_all_absorbed": math.nan, "phi_none_absorbed": math.nan, "phi_half": "",
                     "in_bracket": ""}
                try:
                    if len(sizes) >= 2:
                        def make(dim=dim, max_quality=self.max_quality):
                            return Collapse(self.quantity, dim=dim, free=self.free,
                                            within_bracket=self.within_bracket, max_quality=max_quality)
                        c = make().compute(rs)
                        collapses[(key, step)] = c
                        lo, hi = c.phi_c_range
                        p.update(method="collapse", status=c.status, status_reason=c.status_reason,
                                 phi_c_optimum=c.phi_c,
                                 phi_c_err_fit=c.phi_c_err, phi_c_err_method=c.phi_c_err_method,
                                 at_boundary=c.at_boundary, phi_c_range_lo=lo, phi_c_range_hi=hi,
                                 quality=c.quality, overlap=c.overlap_label, phi_c_bound=c.phi_c_bound,
                                 phi_c_limit=c.phi_c_limit)
                        runs = runs_by.get((key, step), [])
                        if self.n_bootstrap and runs and c.status == "value":
                            std, frac, nb = _bootstrap_phi_c(rs, runs, make, self.n_bootstrap, rng)
                            p.update(phi_c_err_bootstrap=std, bootstrap_not_value=frac, n_bootstrap=nb)
                        if c.status == "value":
                            errs = [e for e in (c.phi_c_err, p["phi_c_err_bootstrap"]) if np.isfinite(e)]
                            p.update(phi_c=c.phi_c, phi_c_err=max(errs) if errs else math.nan)
                    else:
                        if self.quantity != "f_inf":
                            # (the row's scheme and step name it where the message is shown)
                            raise CollapseError(f"one system size, cannot fit phi_c from {self.quantity}")
                        rs_sorted = sorted((r for r in rs if np.isfinite(r["f_inf"])), key=lambda r: r["phi"])
                        pc, dpc, _ = fit_phi_c_powerlaw([r["phi"] for r in rs_sorted],
                                                        [r["f_inf"] for r in rs_sorted],
                                                        [r["f_inf_err"] for r in rs_sorted],
                                                        manna(dim).beta)
                        p.update(method="powerlaw", status="value", phi_c=pc, phi_c_err=dpc, phi_c_optimum=pc,
                                 phi_c_err_fit=dpc, phi_c_err_method="fit covariance")
                except CollapseError as err:
                    p.update(method=f"failed: {err}", status="failed")
                if all("n_absorbed" in r and "n_seeds" in r for r in rs):
                    br = absorption_bracket(rs)
                    p.update(phi_all_absorbed=br["phi_all_absorbed"], phi_none_absorbed=br["phi_none_absorbed"],
                             phi_half=" ".join(f"{n}:{v:.4f}" for n, v in br["phi_half"].items()))
                    lo_b, hi_b = br["phi_all_absorbed"], br["phi_none_absorbed"]
                    if p.get("method") == "powerlaw" and self.within_bracket:
                        _bracket_powerlaw(p, lo_b, hi_b)
                    if p["status"] == "value" and np.isfinite(p["phi_c"]):
                        e = p["phi_c_err"] if np.isfinite(p["phi_c_err"]) else 0.0
                        p["in_bracket"] = bool((not np.isfinite(lo_b) or p["phi_c"] + e >= lo_b)
                                               and (not np.isfinite(hi_b) or p["phi_c"] - e <= hi_b))
                p = {**fd, "step_size": step, **p}
                points.append(p)
                fam_points.append(p)
            ok = [p for p in fam_points if p["status"] == "value" and np.isfinite(p["phi_c"])
                  and p["step_size"] is not None]
            try:
                cmp_ = compare_extrapolations([p["step_size"] for p in ok], [p["phi_c"] for p in ok],
                                              [p["phi_c_err"] for p in ok], self.forms, target)
            except CollapseError:
                cmp_ = None
            comparisons[key] = cmp_
            n_bounds = sum(1 for p in fam_points if p["status"] == "bound")
            brackets[key] = {}
            for form in self.forms:
                try:
                    brackets[key][form] = extrapolate_brackets(
                        [p["step_size"] if p["step_size"] is not None else math.nan for p in fam_points],
                        [p["phi_all_absorbed"] for p in fam_points],
                        [p["phi_none_absorbed"] for p in fam_points], form)
                except CollapseError:
                    pass
            for form in self.forms:
                fit = cmp_["fits"].get(form) if cmp_ else None
                row = {**fd, "form": form, "n_points": len(ok), "target": target,
                       "preferred": bool(cmp_ and cmp_["preferred"] == form),
                       "decisive": bool(cmp_ and cmp_["decisive"]), "n_bounds_left_out": n_bounds}
                if fit is None:
                    row.update(phi_c0=math.nan, phi_c0_err=math.nan, slope=math.nan, exponent=math.nan,
                               chi2=math.nan, dof=math.nan, chi2_per_dof=math.nan, aic=math.nan,
                               aicc=math.nan, target_inside=False, target_sigmas=math.nan,
                               note=f"needs more step sizes with a value (have {len(ok)}; "
                                    f"{n_bounds} bound(s) left out)", coefficients=[])
                else:
                    row.update(phi_c0=fit.phi_c0, phi_c0_err=fit.phi_c0_err, slope=fit.params[1],
                               exponent={"linear": 1.0, "sqrt": 0.5}.get(form, fit.params[-1]),
                               chi2=fit.chi2, dof=fit.dof, chi2_per_dof=fit.chi2_per_dof, aic=fit.aic,
                               aicc=fit.aicc, target_inside=fit.contains(target),
                               target_sigmas=fit.sigmas_from(target),
                               note="; ".join(x for x in (fit.note, f"{n_bounds} bound(s) left out"
                                                          if n_bounds else "") if x),
                               coefficients=[fit.params[1]])
                b = brackets[key].get(form)
                row.update(bracket_n=b.n_brackets if b else 0,
                           bracket_phi_c0_lo=b.phi_c0_lo if b else math.nan,
                           bracket_phi_c0_hi=b.phi_c0_hi if b else math.nan,
                           bracket_exponent_lo=b.exponent_lo if b else math.nan,
                           bracket_exponent_hi=b.exponent_hi if b else math.nan,
                           bracket_consistent=b.consistent if b else "",
                           bracket_target_inside=b.contains(target) if b else "")
                extrap.append(row)
        if not points:
            raise AnalysisError("no activity rows to fit phi_c from")
        self._points, self._extrap, self._collapses = points, extrap, collapses
        self._comparisons, self._brackets = comparisons, brackets
        self._computed = True
        return self

    @property
    def points(self) -> list[dict]:
        """One dict per (family, step size) with :data:`POINT_COLUMNS`: ``status`` "value" (phi_c,
        phi_c_err), "bound" (phi_c NaN; phi_c_bound "<= x" / ">= x", phi_c_limit x), "undetermined"
        or "failed" (``method`` says why)."""
        self._need("points")
        return self._points

    @property
    def extrapolations(self) -> list[dict]:
        """One dict per (family, form) with :data:`EXTRAPOLATION_COLUMNS`."""
        self._need("extrapolations")
        return self._extrap

    @property
    def comparisons(self) -> dict:
        """Per family key: :func:`compare_extrapolations`' result (None with too few values)."""
        self._need("comparisons")
        return self._comparisons

    def verdicts(self) -> list[str]:
        """One line per family: its extrapolations and which form the data prefer."""
        self._need("verdicts")
        out = []
        for key, cmp_ in self._comparisons.items():
            fd = dict(key)
            head = f"{fd['scheme']} b_f={fd['batch_fraction']} ({fd['potential']}, d={fd['dim']})"
            bounds = [p for p in self._points if tuple((f, p.get(f)) for f in FAMILY_FIELDS) == key
                      and p["status"] == "bound"]
            tail = (f" [{len(bounds)} step size(s) gave only a bound: "
                    + ", ".join(f"{p['step_size']:g}: phi_c {p['phi_c_bound']}" for p in bounds) + "]"
                    if bounds else "")
            br = self._brackets.get(key, {})
            target = self.target_of(int(fd["dim"]))
            btxt = "; ".join(
                f"{f}: " + ("no curve through every bracket" if not b.consistent else
                            f"phi_c(0) in [{b.phi_c0_lo:.4f}, {b.phi_c0_hi:.4f}]"
                            + (f" (a in [{b.exponent_lo:.2f}, {b.exponent_hi:.2f}])" if f == "power" else "")
                            + f", {target:g} {'inside' if b.contains(target) else 'outside'}")
                for f, b in br.items())
            out.append(f"{head}: " + (cmp_["verdict"] if cmp_ else "no extrapolation (too few values)") + tail
                       + (f" [from the absorption brackets of {next(iter(br.values())).n_brackets} step sizes: "
                          f"{btxt}]" if br else ""))
        return out

    @property
    def brackets(self) -> dict:
        """Per family key: ``{form: BracketExtrapolation}`` (:func:`extrapolate_brackets`; forms that need
        more step sizes left out)."""
        self._need("brackets")
        return self._brackets

    @property
    def collapses(self) -> dict:
        """The fitted :class:`~analysis.fss.Collapse` per (family key, step size)."""
        self._need("collapses")
        return self._collapses
