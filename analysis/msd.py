r"""Mean square displacement MSD(k) and the diffusion exponent c of MSD ~ k^c.

Definition (paper, Appendix, before Fig. 5): MSD(k) = < (1/N) sum_i |x_i(k) - x_i(0)|^2 >, from
unwrapped positions (wrapped ``position`` + ``image`` * box edges), averaged over seeds. The
simulator also logs the same quantity as ``/observables/msd`` at every ``log_every`` step; by default
the source with more points is used.

Diffusion exponent (Kunin et al., paper 002, Fig. 1 and App. H): c is the slope of the least-squares
line through (log k, log MSD). **Fit range rule**: by default the last 2/3 of the saved trajectory
(k >= k_T / 3, k > 0), as in 002's App. H; any [k_min, k_max] can be given. The error is the
slope's standard error from the residuals; with several seeds, c is also fitted per seed and the
spread is reported (``c_seeds``, standard error over seeds).

Examples
--------
>>> import numpy as np
>>> k = np.arange(1, 1001)
>>> d = DiffusionExponent().compute(k, 3.0 * k ** 0.7)
>>> round(d.c, 6)
0.7
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from mpisim.io.format import observable_path

from .errors import AnalysisError, Computed, WindowError
from .io import Run
from .structure_factor import fit_power_law


def msd_from_positions(unwrapped: np.ndarray) -> np.ndarray:
    """MSD of each frame relative to frame 0: ``unwrapped`` [frames, N, d] -> [frames]."""
    x = np.asarray(unwrapped, dtype=np.float64)
    dx = x - x[0]
    return (dx * dx).sum(axis=2).mean(axis=1)


def run_msd(run: Run, source: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """``(steps, MSD)`` of one run.

    ``source``: "positions" (unwrapped snapshots), "observable" (``/observables/msd``) or "auto"
    (whichever has more points; the observable on a tie).
    """
    if source not in ("auto", "positions", "observable"):
        raise AnalysisError(f"unknown MSD source {source!r}")
    if source == "auto" and "msd" in run.observables and run.has_positions:
        # the simulator logs /observables/msd (same definition) more often than it stores snapshots
        if run.observable("msd")[0].size >= run.frame_steps.size:
            return run.observable("msd")
    if source in ("auto", "positions") and run.has_positions:
        try:
            steps, x = run.unwrapped_trajectory()
        except AnalysisError:
            if source == "positions":
                raise
        else:
            if steps.size >= 2 or source == "positions":
                return steps, msd_from_positions(x)
    if "msd" not in run.observables:
        raise AnalysisError(f"{run.path}: no snapshots or /{observable_path('msd')} to compute the MSD from")
    return run.observable("msd")


def msd_at(steps, msd, k: int) -> float:
    """MSD at step ``k``; linear interpolation between logged steps. Error if k is beyond the run."""
    steps = np.asarray(steps)
    if k > steps[-1] or k < steps[0]:
        raise WindowError(f"run too short: MSD requested at step {k}, run logged {steps[0]}..{steps[-1]}")
    return float(np.interp(k, steps, msd))


class DiffusionExponent(Computed):
    """c of MSD ~ k^c over a fit range (default: last 2/3 of the trajectory).

    Parameters
    ----------
    k_min, k_max : float, optional
        Fit range in steps. ``k_min`` defaults to k_T / 3, ``k_max`` to k_T.
    """

    def __init__(self, k_min: float | None = None, k_max: float | None = None):
        self.k_min, self.k_max = k_min, k_max
        self._computed = False

    def compute(self, steps, msd) -> "DiffusionExponent":
        k = np.asarray(steps, dtype=np.float64)
        y = np.asarray(msd, dtype=np.float64)
        if k.size < 3:
            raise WindowError(f"need >= 3 MSD points for an exponent, have {k.size}")
        kmin = k[-1] / 3.0 if self.k_min is None else float(self.k_min)
        kmax = k[-1] if self.k_max is None else float(self.k_max)
        if kmax > k[-1] * (1 + 1e-12):
            raise WindowError(f"run too short: fit range ends at {kmax:g}, run at {k[-1]:g}")
        try:
            self._c, self._c_err, self._amp, self._npts = fit_power_law(k, y, max(kmin, 1e-300), kmax)
        except AnalysisError as err:
            raise WindowError(f"MSD exponent fit: {err}") from None
        self._range = (kmin, kmax)
        self._computed = True
        return self

    @property
    def c(self) -> float:
        """Diffusion exponent (1: normal diffusion; < 1 sub-, > 1 super-diffusive)."""
        self._need("c")
        return self._c

    @property
    def c_err(self) -> float:
        """Standard error of c from the fit residuals."""
        self._need("c_err")
        return self._c_err

    @property
    def amplitude(self) -> float:
        """A in MSD = A k^c."""
        self._need("amplitude")
        return self._amp

    @property
    def fit_range(self) -> tuple[float, float]:
        self._need("fit_range")
        return self._range


class MSD(Computed):
    """Seed-averaged MSD(k) of a group of runs (same parameters), and its exponent.

    Runs that reached an absorbing state stop early and stay still: their MSD is continued with its
    last value. The step grid is that of the shortest run that did not absorb (else the longest).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from analysis.synthetic import write_run
    >>> from analysis.io import load_runs
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> rng = np.random.default_rng(0)
    >>> for s in range(2):
    ...     walk = np.cumsum(rng.normal(0, 0.1, (201, 50, 3)), axis=0)   # a random walk
    ...     _ = write_run(d / f"w{s}.h5", seed=s, n=50, positions=walk, frame_steps=np.arange(201) * 10,
    ...                   activity=np.full(201, 0.1))
    >>> m = MSD().compute(load_runs(d))
    >>> bool(abs(m.exponent.c - 1.0) < 0.1)
    True
    """

    def __init__(self, source: str = "auto", k_min: float | None = None, k_max: float | None = None):
        self.source, self.k_min, self.k_max = source, k_min, k_max
        self._computed = False

    def compute(self, runs: Sequence[Run]) -> "MSD":
        curves = [run_msd(r, self.source) for r in runs]
        if not curves:
            raise AnalysisError("no runs for the MSD")
        # absorbed runs stop early and do not move afterwards: their MSD is padded with its last
        # value; the common grid ends at the shortest run that did not absorb
        live = [c for c, r in zip(curves, runs) if not r.absorbed]
        ref = min(live, key=lambda c: c[0][-1]) if live else max(curves, key=lambda c: c[0][-1])
        steps = ref[0]
        self._all_absorbed = not live
        mat = []
        for (s, v), r in zip(curves, runs):
            row = np.interp(steps, s, v)
            row[steps > s[-1]] = v[-1]
            mat.append(row)
        mat = np.array(mat)
        self._steps = steps
        self._mean = mat.mean(axis=0)
        self._sem = (mat.std(axis=0, ddof=1) / math.sqrt(len(mat))) if len(mat) > 1 else np.full(steps.size, np.nan)
        self._exponent = DiffusionExponent(self.k_min, self.k_max).compute(steps, self._mean)
        cs = [DiffusionExponent(self.k_min, self.k_max).compute(steps, row).c for row in mat]
        self._c_seeds = np.array(cs)
        self._computed = True
        return self

    @property
    def steps(self) -> np.ndarray:
        self._need("steps")
        return self._steps

    @property
    def msd(self) -> np.ndarray:
        """Seed-mean MSD (diameters^2)."""
        self._need("msd")
        return self._mean

    @property
    def msd_err(self) -> np.ndarray:
        """Standard error over seeds (NaN for one seed)."""
        self._need("msd_err")
        return self._sem

    @property
    def exponent(self) -> DiffusionExponent:
        """Fit of the seed-mean curve."""
        self._need("exponent")
        return self._exponent

    @property
    def c_seeds(self) -> np.ndarray:
        """c fitted to each seed's curve."""
        self._need("c_seeds")
        return self._c_seeds

    def at(self, k: int) -> tuple[float, float]:
        """``(MSD(k), error)`` of the seed mean at step k (interpolated).

        If every run of the group absorbed before k, the particles no longer move and MSD(k) is the
        final value.
        """
        self._need("at")
        if self._all_absorbed and k > self._steps[-1]:
            return float(self._mean[-1]), float(self._sem[-1])
        v = msd_at(self._steps, self._mean, k)
        e = float(np.interp(k, self._steps, self._sem))
        return v, e
