"""Is an activity series f_a(k) in its steady state? (docs/analysis.md, "Steady state")

A pure numpy function, shared by the engine (to stop a run once it is steady or absorbed) and by
``analysis`` (to keep unsteady runs out of f_inf, tau_r, the collapses and phi_c). It imports
nothing from mpisim or mpi4py.

**Criterion.** A series is *steady* if it is absorbed (its last value is 0: the absorbing state is
final) or if its late part is flat within its own errors:

1. the **tail** is the logged points with ``k >= (1 - tail_fraction) k_T`` (k_T the last logged
   step; the same window ``analysis`` averages for f_inf); it must hold at least
   ``n_blocks * n_sub`` points, else the series is not steady ("too few points");
2. the tail (its first ``len % (n_blocks n_sub)`` points dropped) is cut into ``n_blocks``
   contiguous blocks of ``n_sub`` equal sub-blocks each; m_b is the mean of block b, and the error
   of a block mean is e = sqrt(s^2 / n_sub), s^2 the variance of the sub-block means about their
   block's mean pooled over all blocks (``n_blocks (n_sub - 1)`` degrees of freedom; block
   averaging, so correlations shorter than a sub-block are accounted for, and a drift does not
   inflate it);
3. a least-squares line through (block centre step t_b, m_b) has slope s +- e / sqrt(sum (t_b -
   mean t)^2); the **drift** is its change from the first to the last block centre,
   D = s (t_last - t_first), with the error sigma_D from that of s;
4. steady iff ``|D| <= n_sigma sigma_D + max(rtol, 1e-10) |mean of the tail|`` (the 1e-10: a
   constant series' block means differ by rounding).

Measured with the defaults (half the run, 4 blocks of 5 sub-blocks, 3 sigma, no relative tolerance;
2001 logged points, 1000 series each): stationary white noise is called unsteady in 1.2% of series,
AR(1) noise with a correlation time of 10-20 logged points in 2-3%, and of 50 points (a sub-block's
length: the run cannot resolve its own fluctuations) in 10%; a relaxation
0.3 + 0.2 exp(-k / 8000) over k <= 20000 (noise 0.01, correlation 10 points) is never called steady.

Examples
--------
>>> import numpy as np
>>> k = np.arange(0, 20001, 10)
>>> noise = 0.01 * np.random.default_rng(0).standard_normal(k.size)
>>> is_steady(0.3 + noise, k)[0]
True
>>> ok, why = is_steady(0.3 + 0.5 * np.exp(-k / 8000.0) + noise, k)
>>> ok, why["reason"]
(False, 'drift')
>>> is_steady(np.r_[np.linspace(0.5, 0.0, 50), np.zeros(10)], np.arange(60))[1]["reason"]
'absorbed'
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["is_steady"]


def is_steady(activity, steps, *, tail_fraction: float = 0.5, n_blocks: int = 4, n_sub: int = 5,
              n_sigma: float = 3.0, rtol: float = 0.0) -> tuple[bool, dict]:
    """Steady-state test of one activity series (criterion in the module doc).

    Parameters
    ----------
    activity : 1-d array_like, shape (n,)
        f_a at the logged steps (fraction of active particles, >= 0).
    steps : 1-d array_like of int, shape (n,)
        The logged steps, increasing.
    tail_fraction : float in (0, 1]
        Fraction of the run, at its end, that must be flat.
    n_blocks : int >= 3
        Blocks of the tail whose means are fitted by a line.
    n_sub : int >= 2
        Sub-blocks per block for the error of each block mean.
    n_sigma : float > 0
        Allowed drift in units of its error.
    rtol : float >= 0
        Drift allowed regardless of the errors, relative to the tail mean (0: none).

    Returns
    -------
    (bool, dict)
        The verdict and its details: ``reason`` ("absorbed", "flat", "drift", "too few points"),
        ``window_start`` (first step of the tail), ``n_points`` (in the tail), ``mean`` (of the
        tail), ``drift``, ``drift_err`` (NaN where not computed), ``block_steps``, ``block_means``,
        ``block_errors`` (lists).
    """
    f = np.asarray(activity, dtype=np.float64)
    k = np.asarray(steps, dtype=np.float64)
    if f.ndim != 1 or k.shape != f.shape or f.size == 0:
        raise ValueError("activity and steps must be 1-d arrays of equal, non-zero length")
    if not 0.0 < tail_fraction <= 1.0:
        raise ValueError(f"tail_fraction must be in (0, 1], got {tail_fraction}")
    if n_blocks < 3 or n_sub < 2:
        raise ValueError(f"need n_blocks >= 3 and n_sub >= 2, got {n_blocks} and {n_sub}")
    if not n_sigma > 0 or not rtol >= 0:
        raise ValueError(f"need n_sigma > 0 and rtol >= 0, got {n_sigma} and {rtol}")
    k_end = float(k[-1])
    start = math.ceil((1.0 - tail_fraction) * k_end)
    tail = k >= start
    details = {"reason": "", "window_start": int(start), "n_points": int(tail.sum()),
               "mean": float(f[tail].mean()) if tail.any() else math.nan,
               "drift": math.nan, "drift_err": math.nan,
               "block_steps": [], "block_means": [], "block_errors": []}
    if f[-1] <= 0.0:
        details["reason"] = "absorbed"
        return True, details
    per = n_blocks * n_sub
    m = int(tail.sum()) // per
    if m < 1:
        details["reason"] = "too few points"
        return False, details
    ft = f[tail][-m * per:].reshape(n_blocks, n_sub, m)
    kt = k[tail][-m * per:].reshape(n_blocks, n_sub * m)
    sub_means = ft.mean(axis=2)
    means = sub_means.mean(axis=1)
    # pooled over the blocks: B (n_sub - 1) degrees of freedom, and no drift inside it
    var_sub = float(np.sum((sub_means - means[:, None]) ** 2)) / (n_blocks * (n_sub - 1))
    err = math.sqrt(var_sub / n_sub)
    t = kt.mean(axis=1)
    tc = t - t.mean()
    slope = float(np.sum(tc * means) / np.sum(tc ** 2))
    span = t[-1] - t[0]
    drift, drift_err = slope * span, err / math.sqrt(float(np.sum(tc ** 2))) * span
    errs = np.full(n_blocks, err)
    mean = float(ft.mean())
    # 1e-10 |mean|: block means of a constant series differ by rounding only
    ok = abs(drift) <= n_sigma * drift_err + max(rtol, 1e-10) * abs(mean)
    details.update(reason="flat" if ok else "drift", mean=mean, drift=drift, drift_err=drift_err,
                   block_steps=t.tolist(), block_means=means.tolist(), block_errors=errs.tolist())
    return bool(ok), details
