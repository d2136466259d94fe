r"""phi_c from the absorption probability: a second estimator, independent of the f_inf / tau_r collapse.

phi_c is where it is defined: the packing fraction at which a system of size L stops absorbing. Each
run is one Bernoulli observation at its phi: **absorbed by time T** (``y = 1``) or active at T
(``y = 0``). With T scaled with the system size as in the dynamic scaling of absorbing transitions,

    T(N) = T0 (L / L0)^z,    z = nu_par / nu_perp    (Manna 3d: 1.08 / 0.59 = 1.83),

the absorbed fraction P_abs(phi, L, T(N)) = G(L^{1/nu_perp} (phi - phi_c)) depends on phi only through
the scaled distance, so the curves of different N **cross at phi_c** (as Binder cumulants do). L is
the box edge in diameters; at equal phi, L / L0 = (N / N0)^{1/d} (``n0``: the family's smallest N by
default). ``t0 = None`` is the plain long-time limit instead: each run observed at its own last step
(absorbed or not at its end; never censored); its crossing assumes the runs long enough for the
absorbed fraction to have reached its long-time finite-size form (near phi_c they may not be).

**Censoring.** A run that stopped before T without absorbing (stopped as steady, or at its cap) has
no outcome at T. ``censored = "exclude"`` leaves it out (the default: right if the stop were
independent of the outcome; it is not quite, a steady stop means "not absorbed yet", so this biases
P_abs up), ``"active"`` counts it as active (biases P_abs, hence phi, down: the rule of
``launch/phic_vs_length.py`` and :func:`analysis.fss.absorption_bracket`), ``"absorbed"`` as absorbed
(the other extreme). The last two bound what the runs, continued to T, could give. ``n_censored``
counts them in every row.

Estimates per family (scheme, b_f, potential, d, step size):

* ``phi_half`` per N: maximum-likelihood logistic regression P_abs = sigmoid(-(phi - phi_half) / w)
  over every run of that N; phi_half is the 50% point, w the width. Errors from the curvature of the
  log-likelihood (delta method) and from a bootstrap over seeds.
* ``crossing`` (all N, needs >= 2 sizes): the scaling form as one logistic regression over every run,
  logit P_abs = c0 + c1 (L / L0)^{1/nu_perp} (phi_c - phi), nu_perp fixed (Manna); P_abs(phi_c) =
  sigmoid(c0) (``p_cross``) is the same at every N: the crossing. ``lr_p``: the likelihood-ratio test
  of this 3-parameter form against free per-N curves (2 parameters per N): a small p says the curves
  do not scale with this nu_perp (or are not logistic).
* ``extrapolated``: phi_half(N) = phi_c + a L^{-1/nu_perp} (weighted least squares,
  :func:`analysis.critical.extrapolate`) from the sizes whose phi_half is a value.

**Brackets and bounds, never a silent value.** The logistic MLE does not exist when the data are
separated: every absorbed run at a lower phi than every active run (complete), or touching at one
phi (quasi-complete), which is common with 3 seeds on a coarse grid. Then the likelihood keeps
rising as the width goes to 0 and any 50% point between the two groups fits: the estimate is the
**bracket** (``status = "bracket"``, ``phi`` NaN, ``phi_lo``, ``phi_hi``) from the largest phi where
every run (there and below) absorbed to the smallest where none (there and above) did; runs at a phi
with both outcomes only say the curve passes near it. For the crossing the bracket is the range of
phi_c over every separating scaling form (two linear programs on the runs of single-outcome (N, phi)
points). Data with no active (no absorbed) run only bound phi from below (above): ``status =
"bound"``, ``phi_bound`` ">= x" ("<= x"); so is a bracket or a value whose error interval leaves the
phi range of its data (as :class:`analysis.fss.Collapse`: at an end of the range the data cannot
exclude phi beyond it). The bootstrap reports the fraction of replicas that gave no value
(``bootstrap_not_value``); the error used (``phi_err``) is the larger of the curvature and bootstrap
errors. **A value that more than half of the replicas do not reproduce** (they are separated) rests
on one or two runs: ``status = "fragile"``, ``phi`` NaN, the MLE kept in ``phi_mle`` (as for a bound);
an extrapolation from a fragile phi_half is fragile too. So is a crossing in the tails, with P_abs(phi_c)
outside [0.1, 0.9] (``P_CROSS_RANGE``): the curves then meet where (almost) every run absorbs, or
none does, and the assumed logistic form, not the data, places the meeting point.

For separated data the crossing's bracket is the same as the extrapolation's would be: a separating
scaling form puts each N's step at phi_c + a (L / L0)^{-1/nu_perp}, inside that N's bracket, so the
bracket of phi_c is the range of intercepts of the lines in L^{-1/nu_perp} that pass through every
size's bracket (an intercept may lie outside the data's phi range: with two or three sizes and brackets
one grid step wide the lines fan out).

Examples
--------
>>> import numpy as np
>>> phi = np.repeat([0.55, 0.56, 0.57, 0.58], 3)
>>> fit_half(phi, np.array([1, 1, 1, 1, 1, 0, 1, 0, 0, 0, 0, 0]))["status"]
'value'
>>> b = fit_half(phi, np.array([1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0]))    # separated
>>> b["status"], b["phi_lo"], b["phi_hi"]
('bracket', 0.56, 0.57)
>>> b = fit_half(phi, np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]))    # quasi-separated at 0.56
>>> b["status"], b["phi_lo"], b["phi_hi"]
('bracket', 0.55, 0.57)
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.optimize
import scipy.stats

from .critical import FAMILY_FIELDS, extrapolate
from .errors import AnalysisError, Computed
from .fss import manna
from .io import Run

#: how a run that stopped before T without absorbing is counted
CENSORED = ("exclude", "active", "absorbed")
#: the estimates, one row each (per N for phi_half)
ESTIMATES = ("phi_half", "crossing", "extrapolated")
#: T0 = AUTO_T0_EPS / step size at N0 when ``t0 = "auto"`` (2e4 steps at eps = 0.1: the steady minimum
#: of the first Fig. 5b study; relaxation times in steps scale like 1 / eps)
AUTO_T0_EPS = 2000.0
#: a value is "fragile" (not a value) when more than this fraction of the bootstrap replicas give none
MAX_NOT_VALUE = 0.5
#: a crossing is a value only where the curves cross inside the transition: P_abs(phi_c) in this range
P_CROSS_RANGE = (0.1, 0.9)
#: columns of :attr:`AbsorptionProbability.rows`
COLUMNS = ("scheme", "batch_fraction", "potential", "dim", "step_size", "time", "t0", "n0", "z", "nu_perp",
           "censored", "estimate", "n", "T", "n_runs", "n_absorbed", "n_active", "n_censored", "status",
           "phi", "phi_err", "phi_bound", "phi_lo", "phi_hi", "phi_mle", "phi_err_fit", "phi_err_bootstrap",
           "bootstrap_not_value", "n_bootstrap", "width", "width_err", "p_cross", "lr_p", "chi2", "dof",
           "note")


# ---- one run: its outcome at a time T ---------------------------------------------------------------

def outcome_at(absorbed_step: int | None, last_step: int, T: float | None, censored: str = "exclude"):
    """The Bernoulli outcome of one run at step ``T``: 1 absorbed by T, 0 active at T.

    A run that stopped before T without absorbing is censored: None (``censored="exclude"``), 0
    (``"active"``) or 1 (``"absorbed"``). ``T = None``: at the run's own end (absorbed or not).

    >>> outcome_at(900, 900, 1000), outcome_at(None, 5000, 1000), outcome_at(None, 500, 1000)
    (1, 0, None)
    >>> outcome_at(None, 500, 1000, "active"), outcome_at(1500, 1500, 1000), outcome_at(None, 500, None)
    (0, 0, 0)
    """
    if censored not in CENSORED:
        raise AnalysisError(f"censored must be one of {', '.join(CENSORED)}, got {censored!r}")
    if T is None:
        return int(absorbed_step is not None)
    if absorbed_step is not None and absorbed_step <= T:
        return 1
    if last_step >= T:
        return 0
    return {"exclude": None, "active": 0, "absorbed": 1}[censored]


def is_censored(absorbed_step: int | None, last_step: int, T: float | None) -> bool:
    """Whether a run stopped before ``T`` without absorbing (no outcome at T)."""
    return T is not None and absorbed_step is None and last_step < T


@dataclass(frozen=True)
class RunOutcome:
    """What the estimator needs of one run: its family, N, phi, seed, absorption step and last step."""

    family: tuple
    n: int
    phi: float
    seed: int | None
    absorbed_step: int | None
    last_step: int
    path: str = ""

    @classmethod
    def from_run(cls, run: Run) -> "RunOutcome":
        """From a run file: the last logged step of its activity (or its absorption step)."""
        p = run.params
        steps, _ = run.activity()
        last = int(steps[-1]) if steps.size else 0
        a = run.absorbed_step
        if a is not None:
            last = max(last, a)
        fam = tuple((f, getattr(p, f)) for f in FAMILY_FIELDS) + (("step_size", p.step_size),)
        return cls(fam, int(p.n), float(p.phi), p.seed, a, last, str(run.path))


# ---- logistic regression and separation ----------------------------------------------------------------

def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _loglik(X, y, beta):
    eta = X @ beta
    return float(np.sum(y * eta - np.logaddexp(0.0, eta)))


def logistic_mle(X: np.ndarray, y: np.ndarray, max_iter: int = 200):
    """Maximum-likelihood logistic regression P(y = 1) = sigmoid(X beta) by Newton's method.

    Call only on data that are not separated (:func:`is_separated`): the MLE exists then. Returns
    ``(beta, cov, loglik)``, cov the inverse of the observed information X^T W X.
    """
    beta = np.zeros(X.shape[1])
    ll = _loglik(X, y, beta)
    for _ in range(max_iter):
        mu = _sigmoid(X @ beta)
        info = X.T @ (X * (mu * (1.0 - mu))[:, None])
        step = np.linalg.solve(info, X.T @ (y - mu))
        t = 1.0
        while True:                       # step halving keeps the log-likelihood rising
            new = beta + t * step
            ll_new = _loglik(X, y, new)
            if ll_new >= ll - 1e-12 or t < 1e-8:
                break
            t *= 0.5
        beta, ll = new, ll_new
        if np.max(np.abs(t * step)) < 1e-10:
            break
    mu = _sigmoid(X @ beta)
    cov = np.linalg.inv(X.T @ (X * (mu * (1.0 - mu))[:, None]))
    return beta, cov, ll


def is_separated(X: np.ndarray, y: np.ndarray) -> bool:
    """Whether the logistic MLE fails to exist: some beta != 0 puts every y = 1 at X beta >= 0 and every
    y = 0 at X beta <= 0, one of them strictly (complete or quasi-complete separation; Albert &
    Anderson 1984). Decided by the linear program of Konis (2007): maximise sum s_i x_i beta subject to
    s_i x_i beta >= 0, |beta_j| <= 1, s_i = +1 (y = 1) or -1; separated iff the maximum is > 0. One class
    only counts as separated."""
    if y.min() == y.max():
        return True
    s = np.where(y > 0, 1.0, -1.0)
    A = X * s[:, None]
    res = scipy.optimize.linprog(-A.sum(axis=0), A_ub=-A, b_ub=np.zeros(len(y)),
                                 bounds=[(-1.0, 1.0)] * X.shape[1], method="highs")
    return bool(res.status == 0 and -res.fun > 1e-9 * len(y))


def _pure_cells(key, phi, y):
    """Mask of the runs whose (key, phi) cell holds a single outcome."""
    mixed = np.zeros(phi.size, dtype=bool)
    for k, p in set(zip(key.tolist(), phi.tolist())):
        sel = (key == k) & (phi == p)
        if y[sel].min() != y[sel].max():
            mixed |= sel
    return ~mixed


def _sup_loglik_separated(phi, y):
    """The supremum of one N's log-likelihood on separated data: 0, except for the runs at the phi where
    absorbed and active runs touch (quasi-complete), which the limit fits at their fraction."""
    ll = 0.0
    for p in np.unique(phi):
        k, m = y[phi == p].sum(), (phi == p).sum()
        if 0 < k < m:
            ll += k * math.log(k / m) + (m - k) * math.log(1 - k / m)
    return ll


def _empty(**kw):
    out = {"status": "", "phi": math.nan, "phi_err_fit": math.nan, "phi_lo": math.nan, "phi_hi": math.nan,
           "phi_bound": "", "width": math.nan, "width_err": math.nan, "p_cross": math.nan, "loglik": math.nan,
           "lr_p": math.nan, "chi2": math.nan, "dof": math.nan, "phi_mle": math.nan, "note": ""}
    out.update(kw)
    return out


def _judge(value, err, lo, hi):
    """A value whose error interval leaves [lo, hi] (the phi range of its data) is a bound:
    ``(status, phi_lo, phi_hi, phi_bound)``."""
    below, above = value - err < lo, value + err > hi
    if below and above:
        return "undetermined", math.nan, math.nan, ""
    if below:
        return "bound", math.nan, value + err, f"<= {value + err:.4f}"
    if above:
        return "bound", value - err, math.nan, f">= {value - err:.4f}"
    return "value", math.nan, math.nan, ""


def _interval(lo, hi, sup, note):
    """A bracket [lo, hi]; open (NaN) on one side it is a bound, on both undetermined."""
    if math.isnan(lo) and math.isnan(hi):
        return _empty(status="undetermined", loglik=sup, note=note + "; open on both sides")
    if math.isnan(lo):
        return _empty(status="bound", phi_hi=hi, phi_bound=f"<= {hi:.4f}", loglik=sup, note=note + "; open below")
    if math.isnan(hi):
        return _empty(status="bound", phi_lo=lo, phi_bound=f">= {lo:.4f}", loglik=sup, note=note + "; open above")
    return _empty(status="bracket", phi_lo=lo, phi_hi=hi, phi_bound=f"in [{lo:.4f}, {hi:.4f}]", loglik=sup,
                  note=note)


def _one_class(phi, y):
    """All absorbed: phi >= the largest phi; none absorbed: <= the smallest."""
    if y.min() == 1:
        return _empty(status="bound", phi_lo=float(phi.max()), phi_bound=f">= {phi.max():.4f}",
                      note="every run absorbed", loglik=0.0)
    return _empty(status="bound", phi_hi=float(phi.min()), phi_bound=f"<= {phi.min():.4f}",
                  note="no run absorbed", loglik=0.0)


def fit_half(phi, y) -> dict:
    """phi_half and width w of P_abs(phi) = sigmoid(-(phi - phi_half) / w) for one N.

    ``phi``, ``y`` (1 absorbed, 0 active): one entry per run. Returns a dict with ``status`` "value"
    (``phi``, ``phi_err_fit`` from the curvature, ``width``, ``width_err``), "bracket" (separated data;
    ``phi_lo``, ``phi_hi``), "bound" (one class only, or a value whose error interval leaves the data's
    phi range; ``phi_bound``) or "undetermined"; ``loglik`` the (supremum of the) log-likelihood.
    """
    phi = np.asarray(phi, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if phi.size == 0:
        return _empty(status="undetermined", note="no runs")
    if y.min() == y.max():
        return _one_class(phi, y)
    if np.unique(phi).size < 2:
        return _empty(status="undetermined", note="one packing fraction")
    ref, scale = float(phi.mean()), float(phi.std())
    X = np.column_stack([np.ones_like(phi), (phi - ref) / scale])
    if is_separated(X, y):
        if phi[y == 1].max() > phi[y == 0].min():  # separated the other way round: absorbs above, not below
            return _empty(status="undetermined", note="absorbed fraction rises with phi")
        # any separating curve has its 50% point above every absorbed and below every active run; the runs
        # at a phi with both outcomes (quasi-complete separation) only say that it passes near there
        pure = _pure_cells(np.zeros(phi.size), phi, y)
        absorbed, active = phi[pure & (y == 1)], phi[pure & (y == 0)]
        return _interval(float(absorbed.max()) if absorbed.size else math.nan,
                         float(active.min()) if active.size else math.nan,
                         _sup_loglik_separated(phi, y), "separated: the MLE width goes to 0")
    beta, cov, ll = logistic_mle(X, y)
    b0, b1 = beta
    if b1 >= 0:
        return _empty(status="undetermined", note="absorbed fraction rises with phi", loglik=ll)
    half = ref - scale * b0 / b1
    grad = np.array([-scale / b1, scale * b0 / b1 ** 2])
    err = float(math.sqrt(max(grad @ cov @ grad, 0.0)))
    status, lo, hi, bound = _judge(half, err, phi.min(), phi.max())
    return _empty(status=status, phi=half if status == "value" else math.nan, phi_mle=half, phi_err_fit=err,
                  phi_lo=lo, phi_hi=hi, phi_bound=bound, width=-scale / b1,
                  width_err=float(scale / b1 ** 2 * math.sqrt(cov[1, 1])), loglik=ll,
                  note="" if status == "value" else f"MLE {half:.4f} +- {err:.4f} leaves the data's phi range")


def fit_crossing(u, phi, y) -> dict:
    """phi_c from logit P_abs = c0 + c1 u (phi_c - phi), u = (L / L0)^{1/nu_perp}, one MLE over all runs.

    ``u``, ``phi``, ``y``: one entry per run. Returns the dict of :func:`fit_half` with ``phi`` = phi_c,
    ``p_cross`` = sigmoid(c0), the absorbed fraction at phi_c (the same at every N), and ``width`` =
    1 / c1, the width at L0. Separated data: the bracket of phi_c over every separating form (c1 ->
    infinity), min and max of phi_c subject to s_i (a + u_i (phi_c - phi_i)) >= 0 over the runs of
    single-outcome (N, phi) points (two linear programs).
    """
    u = np.asarray(u, dtype=np.float64)
    phi = np.asarray(phi, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if phi.size == 0:
        return _empty(status="undetermined", note="no runs")
    if np.unique(u).size < 2:
        return _empty(status="undetermined", note="one system size: no crossing")
    if y.min() == y.max():
        return _one_class(phi, y)
    ref, scale = float(phi.mean()), float(phi.std()) or 1.0
    X = np.column_stack([np.ones_like(phi), u, u * (phi - ref) / scale])
    if np.linalg.matrix_rank(X) < 3:
        return _empty(status="undetermined", note="one packing fraction per size")
    if is_separated(X, y):
        sup = sum(_sup_loglik_separated(phi[u == v], y[u == v]) for v in np.unique(u))
        pure = _pure_cells(u, phi, y)
        up, pp, yp = u[pure], phi[pure], y[pure]
        s = np.where(yp > 0, 1.0, -1.0)
        # variables (a, phi_c): -s_i a - s_i u_i phi_c <= -s_i u_i phi_i
        A = -np.column_stack([s, s * up])
        b = -s * up * pp
        span = float(phi.max() - phi.min()) + 1.0
        bounds = [(-10.0 * span * u.max(), 10.0 * span * u.max()), (phi.min() - span, phi.max() + span)]
        ends = []
        for sign in (1.0, -1.0):
            r = scipy.optimize.linprog([0.0, sign], A_ub=A, b_ub=b, bounds=bounds, method="highs")
            ends.append(float(r.x[1]) if r.status == 0 else math.nan)
        lo, hi = ends
        if math.isnan(lo):
            return _empty(status="undetermined", loglik=sup,
                          note="separated, but by no crossing form (absorbs above rather than below)")
        # open on a side where only the linear program's own limits stop it; a finite end may lie outside
        # the data's phi range: lines through the sizes' brackets can meet x = 0 there
        return _interval(lo if lo > bounds[1][0] + 1e-9 else math.nan, hi if hi < bounds[1][1] - 1e-9 else math.nan,
                         sup, "separated: the MLE width goes to 0")
    beta, cov, ll = logistic_mle(X, y)
    b0, b1, b2 = beta
    if b2 >= 0:
        return _empty(status="undetermined", note="absorbed fraction rises with phi", loglik=ll)
    pc = ref - scale * b1 / b2
    grad = np.array([0.0, -scale / b2, scale * b1 / b2 ** 2])
    err = float(math.sqrt(max(grad @ cov @ grad, 0.0)))
    p_cross = float(_sigmoid(b0))
    status, lo, hi, bound = _judge(pc, err, phi.min(), phi.max())
    note = "" if status == "value" else f"MLE {pc:.4f} +- {err:.4f} leaves the data's phi range"
    if status == "value" and not P_CROSS_RANGE[0] <= p_cross <= P_CROSS_RANGE[1]:
        # the curves meet where (almost) every run absorbs, or none: the logistic tails place it, not the data
        status, note = "fragile", f"crossing in the tail (P_abs = {p_cross:.2f} at phi_c): set by the logistic form"
    return _empty(status=status, phi=pc if status == "value" else math.nan, phi_mle=pc, phi_err_fit=err, phi_lo=lo,
                  phi_hi=hi, phi_bound=bound, p_cross=p_cross, width=-scale / b2, loglik=ll, note=note)


# ---- the estimator --------------------------------------------------------------------------------

def family_label(row: dict) -> str:
    """``scheme b_f=... step=...`` of a row."""
    bf = row.get("batch_fraction")
    step = row.get("step_size")
    return (f"{row['scheme']}" + (f" b_f={bf:g}" if bf is not None and not math.isnan(bf) else "")
            + (f" step={step:g}" if step is not None else ""))


class AbsorptionProbability(Computed):
    """phi_c from the absorbed fraction at a time T(N) = t0 (L / L0)^z (module doc).

    Parameters
    ----------
    t0 : float, "auto" or None
        Steps at the reference size N0; "auto": :data:`AUTO_T0_EPS` / step size; None: each run at its end.
    z : float, optional
        Dynamic exponent (default Manna nu_par / nu_perp of the runs' d).
    nu_perp : float, optional
        For the crossing form and the extrapolation (default Manna's).
    n0 : int, optional
        Reference size of t0 (default: the family's smallest N).
    censored : {"exclude", "active", "absorbed"}
        How a run that stopped before T without absorbing counts (module doc).
    n_bootstrap : int
        Resamplings of the seeds of every (N, phi) point (0: none).
    seed : int
        Seed of the bootstrap's generator (results repeat).

    Examples
    --------
    >>> ap = AbsorptionProbability(t0=None, n_bootstrap=0)
    >>> ap.t0 is None, ap.censored
    (True, 'exclude')
    """

    def __init__(self, t0="auto", z: float | None = None, nu_perp: float | None = None, n0: int | None = None,
                 censored: str = "exclude", n_bootstrap: int = 200, seed: int = 0):
        if censored not in CENSORED:
            raise AnalysisError(f"censored must be one of {', '.join(CENSORED)}, got {censored!r}")
        if not (t0 is None or t0 == "auto" or (isinstance(t0, (int, float)) and t0 > 0)):
            raise AnalysisError(f"t0 must be None (each run's end), 'auto' or a positive number of steps, got {t0!r}")
        for name, v in (("z", z), ("nu_perp", nu_perp)):
            if v is not None and not v > 0:
                raise AnalysisError(f"{name} must be > 0, got {v}")
        if n_bootstrap < 0:
            raise AnalysisError(f"n_bootstrap must be >= 0, got {n_bootstrap}")
        self.t0, self.z, self.nu_perp, self.n0 = t0, z, nu_perp, n0
        self.censored, self.n_bootstrap, self.seed = censored, int(n_bootstrap), int(seed)
        self._computed = False

    def compute(self, runs: Sequence) -> "AbsorptionProbability":
        """Fit every family of ``runs`` (:class:`analysis.io.Run` or :class:`RunOutcome`)."""
        outcomes = [r if isinstance(r, RunOutcome) else RunOutcome.from_run(r) for r in runs]
        if not outcomes:
            raise AnalysisError("no runs")
        fams: dict = OrderedDict()
        for o in outcomes:
            fams.setdefault(o.family, []).append(o)
        rng = np.random.default_rng(self.seed)
        rows = []
        for fam, members in sorted(fams.items(), key=lambda kv: tuple(map(str, kv[0]))):
            rows.extend(self._family(dict(fam), members, rng))
        self._rows = rows
        self._computed = True
        return self

    def _family(self, fam: dict, members: list, rng) -> list[dict]:
        dim = int(fam["dim"])
        m = manna(dim)
        z = self.z if self.z is not None else m.z
        nu = self.nu_perp if self.nu_perp is not None else m.nu_perp
        sizes = sorted({o.n for o in members})
        n0 = self.n0 if self.n0 is not None else sizes[0]
        step = fam["step_size"]
        if self.t0 == "auto":
            if not step:
                raise AnalysisError(f"t0 = auto needs a step size; {family_label(fam)} has none: give t0")
            t0 = AUTO_T0_EPS / step
        else:
            t0 = self.t0
        # T(N) = t0 (L / L0)^z with L / L0 = (N / N0)^(1/d) at equal phi
        T = {n: None if t0 is None else t0 * (n / n0) ** (z / dim) for n in sizes}
        obs = [(o.n, o.phi, y) for o in members
               if (y := outcome_at(o.absorbed_step, o.last_step, T[o.n], self.censored)) is not None]
        censored = {n: sum(is_censored(o.absorbed_step, o.last_step, T[n]) for o in members if o.n == n)
                    for n in sizes}
        n_arr = np.array([x[0] for x in obs], dtype=np.int64)
        phi_arr = np.array([x[1] for x in obs], dtype=np.float64)
        y_arr = np.array([x[2] for x in obs], dtype=np.float64)
        u_arr = (n_arr / n0) ** (1.0 / (dim * nu))
        phi_range = (float(phi_arr.min()), float(phi_arr.max())) if obs else (math.nan, math.nan)

        def estimate(idx):
            """Every estimate from the runs ``idx`` (indices into the observation arrays)."""
            n_, p_, y_, u_ = n_arr[idx], phi_arr[idx], y_arr[idx], u_arr[idx]
            halves = {n: fit_half(p_[n_ == n], y_[n_ == n]) for n in sizes}
            cross = (fit_crossing(u_, p_, y_) if len(sizes) >= 2
                     else _empty(status="undetermined", note="one system size: no crossing"))
            vals = [(n, h) for n, h in halves.items() if h["status"] == "value"]
            ext = _empty(status="undetermined", note=f"needs >= 2 sizes with a phi_half value, have {len(vals)}")
            if len(vals) >= 2:
                x = [(n / n0) ** (-1.0 / (dim * nu)) for n, _ in vals]
                f = extrapolate(x, [h["phi"] for _, h in vals], [h["phi_err_fit"] for _, h in vals], "linear")
                st, lo, hi, bound = _judge(f.phi_c0, f.phi_c0_err, *phi_range)
                ext = _empty(status=st, phi=f.phi_c0 if st == "value" else math.nan, phi_mle=f.phi_c0,
                             phi_err_fit=f.phi_c0_err, sizes=[n for n, _ in vals],
                             phi_lo=lo, phi_hi=hi, phi_bound=bound, chi2=f.chi2, dof=f.dof,
                             note=f"from N = {', '.join(str(n) for n, _ in vals)}")
            # likelihood ratio of the crossing form (3 parameters) against free per-N curves (2 per N)
            dof = 2 * len(sizes) - 3
            if (np.isfinite(cross["phi_mle"]) and dof > 0
                    and all(np.isfinite(h["loglik"]) for h in halves.values())):
                stat = 2.0 * (sum(h["loglik"] for h in halves.values()) - cross["loglik"])
                cross["lr_p"] = float(scipy.stats.chi2.sf(max(stat, 0.0), dof))
            return halves, cross, ext

        halves, cross, ext = estimate(np.arange(len(obs)))
        keys = [("phi_half", n) for n in sizes] + [("crossing", None), ("extrapolated", None)]
        boot = {k: [] for k in keys}
        if self.n_bootstrap and obs:
            cells: dict = {}
            for i, (n, p, _) in enumerate(obs):
                cells.setdefault((n, p), []).append(i)
            groups = [np.array(v) for v in cells.values()]
            for _ in range(self.n_bootstrap):
                idx = np.concatenate([g[rng.integers(0, g.size, g.size)] for g in groups])
                h_b, c_b, e_b = estimate(idx)
                for key, res in zip(keys, [h_b[n] for n in sizes] + [c_b, e_b]):
                    boot[key].append(res["phi"] if res["status"] == "value" else math.nan)

        common = {**{k: fam[k] for k in FAMILY_FIELDS}, "step_size": step,
                  "time": "end" if t0 is None else "scaled", "t0": math.nan if t0 is None else t0, "n0": n0,
                  "z": math.nan if t0 is None else z, "nu_perp": nu, "censored": self.censored}

        def row(res, key, extra, fragile_sizes=()):
            vals = np.array(boot[key], dtype=np.float64)
            good = vals[np.isfinite(vals)]
            b_err = float(np.std(good, ddof=1)) if good.size >= 2 else math.nan
            frac = float(1.0 - good.size / vals.size) if vals.size else math.nan
            res = {k: v for k, v in res.items() if k not in ("loglik", "sizes")}
            if res["status"] == "value" and (frac > MAX_NOT_VALUE or fragile_sizes):
                # an MLE that most resamplings of the seeds cannot reproduce rests on one or two runs
                why = (f"{frac:.0%} of the bootstrap replicas give no value" if frac > MAX_NOT_VALUE else
                       f"phi_half of N = {', '.join(map(str, fragile_sizes))} fragile")
                res.update(status="fragile", phi=math.nan, note="; ".join(x for x in (res["note"], why) if x))
            errs = [e for e in (res["phi_err_fit"], b_err) if np.isfinite(e)]
            return {**common, **extra, **res, "phi_err": max(errs) if res["status"] == "value" and errs else math.nan,
                    "phi_err_bootstrap": b_err, "n_bootstrap": int(vals.size), "bootstrap_not_value": frac}

        def counts(ns):
            sel = np.isin(n_arr, ns)
            return {"n_runs": sum(1 for o in members if o.n in ns), "n_absorbed": int(y_arr[sel].sum()),
                    "n_active": int((1 - y_arr[sel]).sum()), "n_censored": sum(censored[n] for n in ns)}

        out = [row(halves[n], ("phi_half", n), {"estimate": "phi_half", "n": n,
                                                "T": math.nan if T[n] is None else T[n], **counts([n])})
               for n in sizes]
        out.append(row(cross, ("crossing", None), {"estimate": "crossing", "n": "", "T": math.nan, **counts(sizes)}))
        fragile = [r["n"] for r in out if r["status"] == "fragile" and r["n"] in ext.get("sizes", ())]
        out.append(row(ext, ("extrapolated", None), {"estimate": "extrapolated", "n": "", "T": math.nan,
                                                     **counts(sizes)}, fragile))
        return out

    @property
    def rows(self) -> list[dict]:
        """One dict per (family, estimate[, N]) with :data:`COLUMNS`."""
        self._need("rows")
        return self._rows

    def notes(self) -> list[str]:
        """One line per censored count and per estimate that is a bracket, a bound or undetermined."""
        self._need("notes")
        out = []
        for r in self._rows:
            fam = family_label(r)
            what = r["estimate"] + (f" N={r['n']}" if r["n"] != "" else "")
            if r["estimate"] == "phi_half" and r["n_censored"]:
                how = "left out" if self.censored == "exclude" else f"counted {self.censored}"
                out.append(f"{fam}: N={r['n']}: {r['n_censored']} of {r['n_runs']} runs stopped before "
                           f"T = {r['T']:.0f} without absorbing ({how})")
            if r["status"] == "bracket":
                out.append(f"{fam}: {what}: a bracket, not a value: phi {r['phi_bound']} ({r['note']})")
            elif r["status"] in ("bound", "undetermined", "fragile"):
                out.append(f"{fam}: {what}: {r['status']}" + (f", phi {r['phi_bound']}" if r["phi_bound"] else "")
                           + (f" ({r['note']})" if r["note"] else ""))
        return out
