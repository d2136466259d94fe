r"""Flatness of a minimum: energy fluctuations under Gaussian perturbations (paper Fig. 4, S9-S12).

Definition (paper, "Flatness of minima"; Supplementary Eq. S9):

    Delta V = < V(X_T + dX) - V(X_T) >_{dX},   dX ~ N(0, sigma^2 I),   sigma = sigma_t * R,

averaged over M independent perturbations of the final configuration X_T, with V the total pair
energy of the run's potential. For a second-order smooth V, Delta V ~ (sigma^2 / 2) Tr H (S12).

Normalisation. The paper reports Delta V~ = Delta V / U_0 with "U_0 = U(r = 0)", the energy of a
fully overlapping pair (for the linear potential U_0 = (1/2) * 2R = R, i.e. 1/2 in diameters). We use
exactly that definition (not V(X_T)/N), with sigma_ij = the mean diameter. Since Delta V is a sum over
the whole system it grows with N; we also report Delta V / (N U_0) (``delta_v_tilde_per_particle``),
which is what :mod:`analysis.figures` plots so that sizes can be compared. V(X_T)/N is reported as
``energy_per_particle`` for anyone who prefers that scale.

Defaults as the paper: sigma_t = 0.03, M = 4000.

Energies come from the simulator's serial ``mpisim.core.energy.total_energy``. For speed the perturbed energies use a neighbour-pair list of X_T built once with a skin
(default 14 sigma); a perturbation whose largest displacement exceeds skin / 2, so that a pair outside
the list could overlap, is evaluated with the full cell-list energy instead, so the result is exact
either way (``method="direct"`` always uses the full energy).

Examples
--------
>>> import numpy as np
>>> # harmonic well V = (1/2) sum x^2: Delta V = sigma^2 N d / 2 exactly
>>> x = np.zeros((100, 3))
>>> fl = Flatness(sigma_t=0.2, m=400, seed=1, energy=lambda p: 0.5 * float((p ** 2).sum()))
>>> fl = fl.compute(x, np.full(100, 0.5), np.full(3, 50.0))
>>> bool(abs(fl.delta_v - 0.1 ** 2 * 300 / 2) < 4 * fl.delta_v_err)
True
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from . import _energy
from .errors import AnalysisError, Computed

from mpisim.core.energy import total_energy as _total_energy


def total_energy(positions, radii, box, potential: str) -> float:
    """V(X) of a periodic configuration (``mpisim.core.energy.total_energy``)."""
    return float(_total_energy(positions, radii, box, potential))


class Flatness(Computed):
    """Delta V of a configuration under M Gaussian perturbations of size sigma = sigma_t * R.

    Parameters
    ----------
    sigma_t : float
        Perturbation size in units of the (mean) particle radius R (paper: 0.03).
    m : int
        Number of perturbations (paper: 4000).
    seed : int, optional
        Seed of the perturbations (numpy ``default_rng``).
    potential : str
        Pair potential, normally the run's (linear, harmonic, hertzian).
    method : {"auto", "direct"}
        "auto": pair list with exact fallback (see module doc); "direct": full energy every time.
    skin : float, optional
        Pair-list skin in diameters (default ``14 * sigma``).
    energy : callable, optional
        ``energy(positions) -> float`` replacing the pair energy (for tests and other landscapes).
    """

    def __init__(self, sigma_t: float = 0.03, m: int = 4000, seed: int | None = None,
                 potential: str = "linear", method: str = "auto", skin: float | None = None,
                 energy: Callable[[np.ndarray], float] | None = None):
        if not sigma_t > 0:
            raise AnalysisError(f"sigma_t must be positive, got {sigma_t}")
        if m < 2:
            raise AnalysisError(f"need at least 2 perturbations, got {m}")
        if method not in ("auto", "direct"):
            raise AnalysisError(f"method must be 'auto' or 'direct', got {method!r}")
        _energy.potential_code(potential)
        self.sigma_t, self.m, self.seed = float(sigma_t), int(m), seed
        self.potential, self.method, self.skin, self.energy = potential, method, skin, energy
        self._computed = False

    def compute(self, positions, radii, box) -> "Flatness":
        """Measure Delta V at ``positions`` [N, d] (diameters), ``radii`` [N], ``box`` [d]."""
        pos = np.ascontiguousarray(positions, dtype=np.float64)
        rad = np.ascontiguousarray(radii, dtype=np.float64)
        box = np.ascontiguousarray(box, dtype=np.float64)
        n, d = pos.shape
        r_mean = float(rad.mean())
        sigma = self.sigma_t * r_mean
        rng = np.random.default_rng(self.seed)
        code = _energy.potential_code(self.potential)
        if self.energy is not None:
            def full(p):
                return float(self.energy(p))
        else:
            def full(p):
                return total_energy(p - np.floor(p / box) * box, rad, box, self.potential)
        v0 = full(pos)
        pairs = None
        skin = 14.0 * sigma if self.skin is None else float(self.skin)
        if self.energy is None and self.method == "auto":
            try:
                pairs = _energy.pair_list(pos, rad, box, skin)
            except AnalysisError:
                pairs = None  # box too small for a pair list: direct evaluation
            if pairs is not None:
                v0_list = _energy.pair_list_energy(pos, np.zeros_like(pos), rad, box, pairs, code)
                if not math.isclose(v0_list, v0, rel_tol=1e-9, abs_tol=1e-12):
                    raise RuntimeError(f"pair-list energy {v0_list} != total energy {v0}")
        dv = np.empty(self.m)
        n_direct = 0
        for q in range(self.m):
            disp = rng.normal(0.0, sigma, size=(n, d))
            if pairs is not None and 2.0 * math.sqrt(float((disp * disp).sum(axis=1).max())) < skin:
                v = _energy.pair_list_energy(pos, disp, rad, box, pairs, code)
            else:
                v = full(pos + disp)
                n_direct += 1
            dv[q] = v - v0
        self._n, self._sigma, self._v0, self._dv = n, sigma, v0, dv
        self._u0 = _energy.pair_u0(self.potential, 2.0 * r_mean)
        self._n_direct = n_direct
        self._computed = True
        return self

    @property
    def sigma(self) -> float:
        """Perturbation standard deviation per coordinate, sigma_t * R (diameters)."""
        self._need("sigma")
        return self._sigma

    @property
    def energy_before(self) -> float:
        """V(X_T)."""
        self._need("energy_before")
        return self._v0

    @property
    def energy_per_particle(self) -> float:
        """V(X_T) / N."""
        self._need("energy_per_particle")
        return self._v0 / self._n

    @property
    def samples(self) -> np.ndarray:
        """The M values V(X_T + dX) - V(X_T)."""
        self._need("samples")
        return self._dv

    @property
    def delta_v(self) -> float:
        """Delta V = mean of :attr:`samples`."""
        self._need("delta_v")
        return float(self._dv.mean())

    @property
    def delta_v_err(self) -> float:
        """Standard error of Delta V over the M perturbations."""
        self._need("delta_v_err")
        return float(self._dv.std(ddof=1) / math.sqrt(self._dv.size))

    @property
    def u0(self) -> float:
        """U_0 = U(r = 0) of the pair potential at the mean contact distance (paper's energy scale)."""
        self._need("u0")
        return self._u0

    @property
    def delta_v_tilde(self) -> float:
        """Delta V / U_0 (paper Fig. 4b)."""
        self._need("delta_v_tilde")
        return self.delta_v / self._u0

    @property
    def delta_v_tilde_per_particle(self) -> float:
        """Delta V / (N U_0)."""
        self._need("delta_v_tilde_per_particle")
        return self.delta_v / self._u0 / self._n

    @property
    def n_direct(self) -> int:
        """How many perturbations needed the full energy (pair list not safe, or method direct)."""
        self._need("n_direct")
        return self._n_direct


def measure_run(run, frame: int = -1, **kwargs) -> Flatness:
    """:class:`Flatness` of snapshot ``frame`` of a :class:`~analysis.io.Run` with its potential."""
    kwargs.setdefault("potential", run.params.potential)
    return Flatness(**kwargs).compute(run.positions(frame), run.radii, run.box)
