r"""Distributed static structure factor S(k) (paper Fig. S2; docs/structure-factor.md).

    S(k) = |sum_j exp(-i k . x_j)|^2 / N,   k = 2 pi n / L,  0 < |k| <= k_max,

averaged over the k in each bin of |k|. Every rank works on the particles it holds (rank-local rows);
results are global and identical on all ranks:

* ``method="direct"``: each rank sums exp(i k . x_j) over its particles with the exact kernel
  (``mpisim.core.sofk.sofk_sums_fixed``), every term rounded to 2^-52 and added in int64 limbs; one
  integer ``Allreduce`` gives the exact global sums: the same bits on any number of ranks.
* ``method="nufft"``: each rank computes its particles' amplitudes by one type-1 NUFFT
  (``mpisim.core.sofk.nufft_amplitudes``, finufft) and a float ``Allreduce`` adds them: within the
  tolerance of the exact sums; on different rank counts equal to rounding, not bit for bit.
* ``method="auto"`` (default): direct for small k sets, nufft for large (``mpisim.core.sofk.resolve_method``).

All sample the same half space of k (every +-k pair once) and share the bins of
``analysis.structure_factor.StructureFactor`` (``mpisim.core.sofk.bin_structure_factor``).
"""
from dataclasses import dataclass

import numpy as np

from ..core.box import BALL_VOLUME
from ..core.memory import BYTES_PER_MODE, machine_memory, too_large
from ..core.sofk import (METHODS, NUFFT_TOLERANCE, TWO_PI, bin_structure_factor, default_k_max, fixed_to_float,
                         nufft_amplitudes, resolve_method, sofk_sums_fixed, wave_vectors)
from .comm import sum_floats, sum_int


@dataclass(frozen=True)
class SofkResult:
    """One measurement (global, on every rank).

    k: bin centres [bins]; k_mean: mean |k| of the wave vectors in each bin (NaN if empty); S: bin
    average of S(k) [bins] (NaN if empty); counts: wave vectors per bin [bins], int64.
    """
    step: int
    k: np.ndarray
    k_mean: np.ndarray
    S: np.ndarray
    counts: np.ndarray


class StructureFactorMeasurement:
    """S(k) of a configuration whose particles are spread over the ranks of ``comm``. Collective.

    Parameters
    ----------
    box : array [>= dim]; dim : 2 to 6 (d > 3: direct sums only); n_total : N (global)
    k_max : float (inverse diameters; 0 = 2 pi 8 / min L); bins : int; k_min : float
    method : "auto", "direct" or "nufft" (``self.method`` is what "auto" resolved to); tolerance : nufft:
    finufft's relative tolerance; octant : sample only n_a >= 0 (freud's set) instead of the half space.
    A k range [k_min, k_max] without any wave vector of the box raises ValueError naming 2*pi/L.
    """

    def __init__(self, box, dim, n_total, k_max=0.0, bins=32, k_min=0.0, method="auto",
                 tolerance=NUFFT_TOLERANCE, octant=False, comm=None):
        from .comm import world
        self.comm = comm if comm is not None else world()
        self.dim = int(dim)
        self.box = np.ascontiguousarray(np.asarray(box, dtype=np.float64)[:self.dim])
        self.n_total = int(n_total)
        self.k_max = float(k_max) if k_max else default_k_max(self.box, self.dim)
        self.k_min, self.bins = float(k_min), int(bins)
        if method not in METHODS:
            raise ValueError(f"method: must be one of {', '.join(METHODS)}, got {method!r}")
        if not 0 < tolerance < 1:
            raise ValueError(f"tolerance: must be in (0, 1), got {tolerance!r}")
        if not 0 <= self.k_min < self.k_max:
            raise ValueError(f"k_min, k_max: need 0 <= k_min < k_max, got {self.k_min}, {self.k_max}")
        self.octant, self.tolerance = bool(octant), float(tolerance)
        self.edges = np.linspace(self.k_min, self.k_max, self.bins + 1)
        # d <= 3: the NUFFT's grid of modes bounds the memory; d > 3 (direct sums only): the half ball of
        # wave vectors, v_d prod(k_max L_a / 2 pi) / 2, each with its sums
        modes = (float(np.prod(2 * np.floor(self.k_max * self.box / TWO_PI) + 1)) if self.dim <= 3 else
                 BALL_VOLUME[self.dim] * float(np.prod(self.k_max * self.box / TWO_PI)) / 2)
        if too_large(modes * BYTES_PER_MODE):
            raise ValueError(f"k_max: {self.k_max:g} spans {modes:.3g} Fourier modes of this box, about "
                             f"{modes * BYTES_PER_MODE / 1e9:.3g} GB ({BYTES_PER_MODE} bytes per mode), more "
                             f"than this machine's {machine_memory() / 1e9:.3g} GB; lower k_max")
        self.kvecs, self.nvecs = wave_vectors(self.box, self.k_max, self.octant)
        self.method = resolve_method(method, len(self.kvecs), self.dim)
        kmag = np.linalg.norm(self.kvecs, axis=1)
        self.k_mean, self.counts = bin_structure_factor(self.kvecs, kmag, self.edges)
        self.k_centres = 0.5 * (self.edges[1:] + self.edges[:-1])
        if not self.counts.any():
            raise ValueError(f"k_max: no wave vector has {self.k_min:g} <= |k| <= {self.k_max:g} in this box: "
                             f"|k| = 2*pi*|n/L|, the smallest 2*pi/L = {TWO_PI / self.box.max():.4g} "
                             f"(L = {self.box.max():.4g}); raise k_max")

    def attrs(self):
        """Parameters stored with the results (docs/file-format.md)."""
        return {"method": self.method, "k_max": self.k_max, "k_min": self.k_min, "bins": self.bins,
                "tolerance": self.tolerance if self.method == "nufft" else 0.0,
                "octant": self.octant, "n_total": self.n_total, "box": self.box}

    def compute(self, positions, step=0):
        """S(k) of the configuration; ``positions`` [n_local, >= dim]: this rank's particles (wrapped
        or not). Collective; returns a global :class:`SofkResult`."""
        s_bin, _ = bin_structure_factor(self.kvecs, self.values(positions), self.edges)
        return SofkResult(int(step), self.k_centres, self.k_mean, s_bin, self.counts)

    def values(self, positions):
        """S at every wave vector ``kvecs`` [nk] (global, on every rank); ``positions`` as in compute().
        Collective."""
        pos = np.ascontiguousarray(np.asarray(positions, dtype=np.float64)[:, :self.dim])
        return self._direct(pos) if self.method == "direct" else self._nufft(pos)

    # --------------------------------------------------------------------------------------- direct
    def _direct(self, pos):
        _, acc = sofk_sums_fixed(pos, self.box, self.k_max, self.octant)
        re, im = fixed_to_float(sum_int(self.comm, acc))
        return (re * re + im * im) / self.n_total

    # ---------------------------------------------------------------------------------------- nufft
    def _nufft(self, pos):
        """Each rank's amplitudes by one type-1 NUFFT of its particles, summed over ranks (float sum in
        MPI's order for this rank count: equal across rank counts to rounding, not bit for bit)."""
        f = nufft_amplitudes(pos, self.box, self.nvecs, self.tolerance)
        f = sum_floats(self.comm, f.view(np.float64)).view(np.complex128)
        return (f.real * f.real + f.imag * f.imag) / self.n_total


# ---------------------------------------------------------------------------------------- config
def from_config(section, box, dim, n_total, comm=None):
    """A measurement from a [structure_factor] config section (mpisim.config.StructureFactor)."""
    return StructureFactorMeasurement(box, dim, n_total, k_max=section.k_max, bins=section.bins,
                                      k_min=section.k_min, method=section.method,
                                      tolerance=section.tolerance, comm=comm)

