"""Activity f_a(k), steady-state activity f_inf and relaxation time tau_r (paper: "Critical behavior").

Definitions (paper 000, text before Fig. 3):

* activity f_a(k): the fraction of overlapping ("active") particles at step k, read from
  ``/observables/activity``.
* steady-state activity f_inf: the mean of f_a over a late window. **Window rule**: the last
  ``window_fraction`` (default 1/2) of the run's steps, i.e. logged steps k >= (1 - w) k_T where k_T
  is the last logged step. Its error bar is the block-averaging standard error: the window is cut
  into ``n_blocks`` (default 10) contiguous blocks of equal length, and
  ``err = std(block means, ddof=1) / sqrt(n_blocks)``. A run needs at least ``min_points`` (default
  ``2 * n_blocks``) logged points in the window, else :class:`~analysis.errors.WindowError`. A run
  that reached an absorbing state has f_inf = 0 exactly (error 0).
* relaxation time tau_r: on the absorbing side (the run absorbed) the step at which f_a reaches 0
  (provenance ``absorbed_step``, else the first logged step with f_a = 0); on the active side the
  first logged step k with ``(f_a(k) - f_inf) / f_inf < 0.1`` (the paper's rule, after Galliano et
  al. [41]).
* steady: a run is *steady* if it absorbed, or if tau_r lies before the averaging window and the
  activity over the window is flat within its errors (:func:`mpisim.core.steady.is_steady` on the
  same window: the drift of its block means is below 3 sigma). ``steady_reason`` says which test
  failed. :class:`ActivityTable` leaves out of f_inf and tau_r every (N, phi) point with an unsteady
  seed (``include_unsteady=True`` keeps them) and records what it left out.
* absorption horizon (:class:`ActivityTable`, ``absorption_horizon``): near phi_c an active state can
  look flat and still absorb later (docs/analysis.md, "Steady-stop bias"). A run that did not absorb
  counts as steady only if it lasted at least as long as the latest absorption among the runs of its
  family and N at the same or a higher phi (where absorbing is no more likely); otherwise it is
  "short" and its point is left out like an unsteady one.
* crystals (:class:`ActivityTable`, ``max_solid_fraction``): monodisperse spheres can crystallize, and a
  crystal absorbs (or stays stuck) where an amorphous packing would not, so its run measures another
  phase. With a threshold set, a run whose last snapshot has more solid-like particles than that
  (:class:`analysis.crystal.Crystallinity`) is "crystal" and its point is left out like an unsteady
  one; it also does not count as an absorption for the horizon rule. Off by default (it reads every
  run's last snapshot): docs/analysis.md, "Crystalline order".
* averages over seeds: mean of the per-run values; error = standard error over seeds
  (``std(ddof=1)/sqrt(n)``) when there are >= 2 seeds, otherwise the single run's block error
  (f_inf) or NaN (tau_r).

Examples
--------
>>> import numpy as np
>>> k = np.arange(0, 10001, 10)
>>> f = 0.2 + 0.8 * np.exp(-k / 500.0)
>>> ss = SteadyState().compute(k, f)
>>> round(ss.f_inf, 3), ss.tau_r
(0.2, 1850)
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from mpisim.core.steady import is_steady

from .errors import AnalysisError, Computed, WindowError
from .io import Run, group_runs, key_dict


def block_average(values: np.ndarray, n_blocks: int = 10) -> tuple[float, float]:
    """Mean of ``values`` and its block-averaging standard error.

    The series is cut into ``n_blocks`` contiguous blocks of equal length (the first
    ``len % n_blocks`` samples are dropped); the error is ``std(block means, ddof=1)/sqrt(n_blocks)``.
    """
    v = np.asarray(values, dtype=np.float64)
    if n_blocks < 2 or v.size < n_blocks:
        raise WindowError(f"need at least {max(n_blocks, 2)} samples for {n_blocks} blocks, have {v.size}")
    m = v.size // n_blocks
    blocks = v[v.size - m * n_blocks:].reshape(n_blocks, m).mean(axis=1)
    return float(v.mean()), float(blocks.std(ddof=1) / math.sqrt(n_blocks))


class SteadyState(Computed):
    """f_inf, its block error and tau_r of one activity series (see the module doc for the rules).

    Parameters
    ----------
    window_fraction : float
        Fraction of the run's steps, at its end, averaged for f_inf (0 < w <= 1).
    n_blocks : int
        Blocks for the error bar.
    min_points : int, optional
        Minimum logged points in the window (default ``2 * n_blocks``).
    threshold : float
        Relative distance to f_inf that defines tau_r on the active side (paper: 0.1).
    n_sigma : float
        Drift over the window allowed by the steady-state test, in units of its error.
    """

    def __init__(self, window_fraction: float = 0.5, n_blocks: int = 10,
                 min_points: int | None = None, threshold: float = 0.1, n_sigma: float = 3.0):
        if not 0.0 < window_fraction <= 1.0:
            raise AnalysisError(f"window fraction must be in (0, 1], got {window_fraction}")
        if n_blocks < 2:
            raise AnalysisError(f"need at least 2 blocks, got {n_blocks}")
        self.window_fraction = float(window_fraction)
        self.n_blocks = int(n_blocks)
        self.min_points = int(min_points) if min_points is not None else 2 * self.n_blocks
        self.threshold = float(threshold)
        self.n_sigma = float(n_sigma)

    def compute(self, steps, activity, absorbed: bool | None = None,
                absorbed_step: int | None = None) -> "SteadyState":
        """Measure one series ``activity[i]`` = f_a at ``steps[i]``.

        ``absorbed`` defaults to whether the series reaches 0.
        """
        k = np.asarray(steps, dtype=np.int64)
        f = np.asarray(activity, dtype=np.float64)
        if k.shape != f.shape or k.ndim != 1 or k.size == 0:
            raise AnalysisError("steps and activity must be 1-d arrays of equal, non-zero length")
        zero = np.flatnonzero(f <= 0.0)
        if absorbed is None:
            absorbed = zero.size > 0
        self._absorbed = bool(absorbed)
        k_end = int(k[-1])
        self._last_step = k_end
        self._window_start = int(math.ceil((1.0 - self.window_fraction) * k_end))
        if self._absorbed:
            if absorbed_step is None:
                absorbed_step = int(k[zero[0]]) if zero.size else k_end
            self._tau_r = int(absorbed_step)
            self._f_inf, self._f_inf_err = 0.0, 0.0
            self._steady, self._steady_reason = True, "absorbed"
        else:
            sel = k >= self._window_start
            if sel.sum() < self.min_points:
                raise WindowError(
                    f"run too short for the window: {int(sel.sum())} logged points in the last "
                    f"{self.window_fraction:g} of {k_end} steps, need {self.min_points}"
                )
            self._f_inf, self._f_inf_err = block_average(f[sel], self.n_blocks)
            if self._f_inf > 0:
                rel = (f - self._f_inf) / self._f_inf
                hit = np.flatnonzero(rel < self.threshold)
                self._tau_r = int(k[hit[0]]) if hit.size else k_end
            else:
                self._tau_r = k_end
            flat, why = is_steady(f, k, tail_fraction=self.window_fraction, n_sigma=self.n_sigma)
            if self._tau_r > self._window_start:
                self._steady = False
                self._steady_reason = (f"relaxing: tau_r = {self._tau_r} is after the window start "
                                       f"{self._window_start}")
            elif not flat:
                self._steady = False
                self._steady_reason = (f"drift: f_a changed by {why['drift']:.3g} +- "
                                       f"{why['drift_err']:.2g} over the window" if why["reason"] == "drift"
                                       else why["reason"])
            else:
                self._steady, self._steady_reason = True, "flat"
            self._steady_details = why
        self._computed = True
        return self

    @property
    def f_inf(self) -> float:
        """Steady-state activity (0 for an absorbed run)."""
        self._need("f_inf")
        return self._f_inf

    @property
    def f_inf_err(self) -> float:
        """Block-averaging standard error of f_inf."""
        self._need("f_inf_err")
        return self._f_inf_err

    @property
    def tau_r(self) -> int:
        """Relaxation time in steps (absorption step, or first step within 10% of f_inf)."""
        self._need("tau_r")
        return self._tau_r

    @property
    def absorbed(self) -> bool:
        self._need("absorbed")
        return self._absorbed

    @property
    def last_step(self) -> int:
        """Last logged step of the series (where the run stopped)."""
        self._need("last_step")
        return self._last_step

    @property
    def window_start(self) -> int:
        """First step of the averaging window."""
        self._need("window_start")
        return self._window_start

    @property
    def steady(self) -> bool:
        """True if absorbed, or tau_r <= window_start and f_a is flat over the window
        (:func:`mpisim.core.steady.is_steady`): the window samples the steady state."""
        self._need("steady")
        return self._steady

    @property
    def steady_reason(self) -> str:
        """"absorbed", "flat", or why the run is not steady ("drift: ...", "relaxing: ...")."""
        self._need("steady_reason")
        return self._steady_reason


def measure_run(run: Run, **kwargs) -> SteadyState:
    """:class:`SteadyState` of one run, using its provenance for absorption."""
    steps, f = run.activity()
    absorbed = run.absorbed or bool(np.any(f <= 0.0))
    return SteadyState(**kwargs).compute(steps, f, absorbed=absorbed,
                                         absorbed_step=run.absorbed_step)


def seed_mean(values: Sequence[float], single_errors: Sequence[float] | None = None) -> tuple[float, float]:
    """Mean over seeds and its error (standard error if n >= 2, else the single run's error)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return math.nan, math.nan
    if v.size >= 2:
        return float(v.mean()), float(v.std(ddof=1) / math.sqrt(v.size))
    err = math.nan if single_errors is None else float(single_errors[0])
    return float(v[0]), err


#: columns of :attr:`ActivityTable.rows`
TABLE_COLUMNS = ("scheme", "dim", "n", "phi", "kick_size", "learning_rate", "batch_fraction",
                 "potential", "n_seeds", "n_absorbed", "f_inf", "f_inf_err", "tau_r", "tau_r_err",
                 "all_steady", "n_unsteady", "n_crystal", "excluded")


class ActivityTable(Computed):
    """f_inf and tau_r of every run, and their averages over the seeds of each parameter group.

    Parameters
    ----------
    window_fraction, n_blocks, min_points, threshold, n_sigma :
        As for :class:`SteadyState`.
    absorption_horizon : float
        A run that did not absorb is steady only if its last step is at least this multiple of the
        latest absorption step among the runs of its family (all parameters but seed, N, phi) and N
        at the same or a higher phi; otherwise its ``steady_reason`` is "short: ..." and it counts as
        unsteady. Default 1; 0 switches the rule off.
    include_unsteady : bool
        False (default): a group (one (N, phi) point of a family) with a seed that is neither steady
        nor absorbed gets f_inf = tau_r = NaN, so it enters no collapse, phi_c or figure; its
        ``excluded`` column says why, and :attr:`excluded` / :attr:`exclusion_note` list what was
        left out. True: average every seed as before (the rows still count ``n_unsteady``). The
        whole point is dropped, not only its unsteady seeds: keeping the seeds that happened to
        relax would select by outcome (near phi_c, the ones that absorbed).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from analysis.synthetic import write_run
    >>> from analysis.io import load_runs
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> for seed, level in [(1, 0.30), (2, 0.32)]:
    ...     _ = write_run(d / f"s{seed}.h5", seed=seed, activity=np.full(101, level))
    >>> t = ActivityTable().compute(load_runs(d))
    >>> row = t.rows[0]
    >>> row["n_seeds"], round(row["f_inf"], 3), round(row["f_inf_err"], 3), row["n_unsteady"]
    (2, 0.31, 0.01, 0)
    """

    def __init__(self, window_fraction: float = 0.5, n_blocks: int = 10,
                 min_points: int | None = None, threshold: float = 0.1, n_sigma: float = 3.0,
                 include_unsteady: bool = False, absorption_horizon: float = 1.0,
                 max_solid_fraction: float | None = None):
        self._kw = dict(window_fraction=window_fraction, n_blocks=n_blocks,
                        min_points=min_points, threshold=threshold, n_sigma=n_sigma)
        self.include_unsteady = bool(include_unsteady)
        if not absorption_horizon >= 0:
            raise AnalysisError(f"absorption_horizon must be >= 0, got {absorption_horizon}")
        self.absorption_horizon = float(absorption_horizon)
        if max_solid_fraction is not None and not 0.0 <= max_solid_fraction < 1.0:
            raise AnalysisError(f"max_solid_fraction must be in [0, 1) or None, got {max_solid_fraction}")
        self.max_solid_fraction = max_solid_fraction
        SteadyState(**self._kw)  # validate

    def compute(self, runs: Sequence[Run]) -> "ActivityTable":
        """Measure each run and average over seeds within each parameter group."""
        self._per_run = []
        self._excluded = []
        rows = []
        measured = []
        for key, members in group_runs(runs).items():
            meas = []
            for r in members:
                try:
                    meas.append(measure_run(r, **self._kw))
                except WindowError as err:
                    raise WindowError(f"{r.path}: {err}") from None
            measured.append((key, members, meas))
        solid = {r.path: self._solid_fraction(r) for _, members, _ in measured for r in members}
        crystal = {path: self.max_solid_fraction is not None and f > self.max_solid_fraction
                   for path, f in solid.items()}
        # latest absorption step per (family, N): [(phi, step), ...]
        absorptions: dict = {}
        for _, members, meas in measured:
            for r, m in zip(members, meas):
                if m.absorbed and not crystal[r.path]:
                    absorptions.setdefault((r.params.key(("seed", "n", "phi")), r.params.n), []).append(
                        (r.params.phi, m.tau_r))
        for key, members, meas in measured:
            verdicts = []
            for r, m in zip(members, meas):
                ok, why = m.steady, m.steady_reason
                if crystal[r.path]:
                    ok, why = False, (f"crystal: {solid[r.path]:.1%} of the particles solid-like in the last "
                                      f"snapshot (more than {self.max_solid_fraction:g})")
                elif ok and not m.absorbed and self.absorption_horizon > 0:
                    later = [(k, p) for p, k in absorptions.get((r.params.key(("seed", "n", "phi")), r.params.n), ())
                             if p >= r.params.phi - 1e-12]
                    if later:
                        k_abs, p_abs = max(later)
                        if m.last_step < self.absorption_horizon * k_abs:
                            ok, why = False, (f"short: active at its last step {m.last_step}, before the latest "
                                              f"absorption at this N and phi >= {r.params.phi:g} (step {k_abs} "
                                              f"at phi = {p_abs:g})")
                verdicts.append((ok, why))
                self._per_run.append({**r.params.as_dict(), "path": str(r.path),
                                      "f_inf": m.f_inf, "f_inf_err": m.f_inf_err,
                                      "tau_r": m.tau_r, "absorbed": m.absorbed,
                                      "steady": ok, "steady_reason": why, "last_step": m.last_step,
                                      "solid_fraction": solid[r.path]})
            unsteady = [(r, why) for r, (ok, why) in zip(members, verdicts) if not ok]
            crystals = [(r, why) for r, why in unsteady if crystal[r.path]]
            # a crystal is not a seed of the amorphous packing: n_seeds, n_absorbed (the absorption
            # bracket's counts) leave it out
            amorphous = [m for r, m in zip(members, meas) if not crystal[r.path]]
            row = {**key_dict(key), "n_seeds": len(amorphous), "n_absorbed": sum(m.absorbed for m in amorphous),
                   "all_steady": not unsteady, "n_unsteady": len(unsteady), "n_crystal": len(crystals),
                   "excluded": ""}
            # crystals measure another phase: out even with include_unsteady
            left_out = crystals if self.include_unsteady else unsteady
            if left_out:
                row.update(f_inf=math.nan, f_inf_err=math.nan, tau_r=math.nan, tau_r_err=math.nan,
                           excluded=f"{len(left_out)} of {len(meas)} seeds not steady"
                                    + (f" ({len(crystals)} crystal)" if crystals else ""))
                for r, why in left_out:
                    self._excluded.append({**r.params.as_dict(), "path": str(r.path), "reason": why})
            else:
                f, fe = seed_mean([m.f_inf for m in meas], [m.f_inf_err for m in meas])
                t, te = seed_mean([m.tau_r for m in meas])
                row.update(f_inf=f, f_inf_err=fe, tau_r=t, tau_r_err=te)
            rows.append(row)
        self._rows = rows
        self._computed = True
        return self

    def _solid_fraction(self, run: Run) -> float:
        if self.max_solid_fraction is None:
            return math.nan
        from .crystal import measure_run as crystallinity   # scipy's cKDTree: only when asked
        return crystallinity(run).solid_fraction

    @property
    def rows(self) -> list[dict]:
        """One dict per parameter group with :data:`TABLE_COLUMNS`."""
        self._need("rows")
        return self._rows

    @property
    def per_run(self) -> list[dict]:
        """One dict per run: its parameters, path, f_inf, f_inf_err, tau_r, absorbed, steady,
        steady_reason, last_step, solid_fraction (NaN unless ``max_solid_fraction`` is set)."""
        self._need("per_run")
        return self._per_run

    @property
    def excluded(self) -> list[dict]:
        """The unsteady (or crystal) runs whose groups were left out: parameters, path, reason (with
        ``include_unsteady`` only the crystals)."""
        self._need("excluded")
        return self._excluded

    @property
    def exclusion_note(self) -> str:
        """One line for logs: how many runs and (N, phi) points were left out as not steady (or as
        crystals), and why; empty if every run is steady or absorbed."""
        self._need("exclusion_note")
        unsteady = [p for p in self._per_run if not p["steady"]]
        if not unsteady:
            return ""
        reasons: dict = {}
        for p in unsteady:
            kind = p["steady_reason"].split(":")[0]
            reasons[kind] = reasons.get(kind, 0) + 1
        why = ", ".join(f"{k} {v}" for k, v in reasons.items())
        points = sum(1 for r in self._rows if r["excluded"])
        if self.include_unsteady:
            crystals = reasons.get("crystal", 0)
            if crystals:
                return (f"excluded {crystals} crystal run(s) of {len(self._per_run)}, and with them {points} "
                        f"(N, phi) points; included {len(unsteady) - crystals} unsteady run(s) "
                        f"(include_unsteady; {why})")
            return (f"included {len(unsteady)} unsteady run(s) of {len(self._per_run)} in f_inf and tau_r "
                    f"(include_unsteady; {why})")
        crystal = " or as crystals" if "crystal" in reasons else ""
        return (f"excluded {len(unsteady)} of {len(self._per_run)} runs as neither steady nor absorbed{crystal} "
                f"({why}), and with them {points} of {len(self._rows)} (N, phi) points from f_inf, tau_r, "
                f"the collapses and phi_c")


def activity_curves(runs: Sequence[Run]) -> dict:
    """Seed-averaged f_a(k) curves per parameter group: ``key -> (steps, mean, sem)``.

    Absorbed runs are padded with f_a = 0 after their last logged step; steps are those of the
    longest run of the group (runs are assumed to share ``log_every``).
    """
    out = {}
    for key, members in group_runs(runs).items():
        series = [r.activity() for r in members]
        longest = max(series, key=lambda s: s[0].size)[0]
        mat = np.zeros((len(series), longest.size))
        for i, (k, f) in enumerate(series):
            vals = np.interp(longest, k, f, right=0.0)
            vals[longest > k[-1]] = 0.0 if f[-1] <= 0 else f[-1]
            mat[i] = vals
        sem = mat.std(axis=0, ddof=1) / math.sqrt(len(series)) if len(series) > 1 else np.full(longest.size, np.nan)
        out[key] = (longest, mat.mean(axis=0), sem)
    return out
